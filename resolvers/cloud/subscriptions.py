"""The organization's cloud subscription: its limits as they stand, its billing period, and its one
extension per period.

The period is the provider's (its records set `starts_on`/`ends_on`); when it has passed and the
provider sent no new one, it rolls over by itself, month by month (`roll_over_due`, run by a
worker, and by `extend_subscription` on the row it locks), so the extension is offered again each
period. Extensions stay as the period's history. `extend_subscription` is the only thing that
changes the extension state, `roll_over` the only thing that moves a period by itself, and
`open_subscription` / `set_period` the only writers of a period (tests/test_subscription_period.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from resolvers.common.context import Actor, RequestContext
from events.log import DATA
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.common.permissions import Permission
from models.cloud import CloudSubscription, SubscriptionExtension
from models.organizations import Organization
from resolvers.common import audit
from resolvers.common.errors import not_found
from resolvers.common.gates import check_member_of, page_request, wants_total
from resolvers.common.pagination import Ordering, load_pages
from resolvers.cloud.subscription_terms import (
    BLOCKED_MESSAGES, ExtendBlockedReason, ExtensionTerms, Standing, standing, terms as extension_terms,
)

SUBSCRIPTION_ORDER = Ordering(("created_at",))


def _months_later(day: dt.date, months: int = 1) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def current_period(starts_on: dt.date, ends_on: dt.date, today: dt.date) -> tuple[dt.date, dt.date]:
    """The period that holds `today`: the stored one, or, once it has passed, the months that follow
    it (each from the day after the previous one ends, one calendar month long)."""
    while ends_on < today:
        starts_on = ends_on + dt.timedelta(days=1)
        ends_on = _months_later(starts_on) - dt.timedelta(days=1)
    return starts_on, ends_on


@dataclass
class SubscriptionView:
    subscription: CloudSubscription
    extension: SubscriptionExtension | None  # the one in force now
    can_extend: bool
    history: list[SubscriptionExtension] = field(default_factory=list)  # every extension, newest first
    standing: Standing | None = None  # the extension rule's answer for the viewer (resolvers/cloud/subscription_terms.py)

    @property
    def id(self) -> Any:  # a connection's cursor reads the row's keys
        return self.subscription.id

    @property
    def created_at(self) -> dt.datetime:
        return self.subscription.created_at

    @property
    def period(self) -> tuple[dt.date, dt.date]:
        """The current period, rolled over already should the worker not have stored it yet."""
        return current_period(self.subscription.starts_on, self.subscription.ends_on, utcnow().date())

    @property
    def sessions_limit(self) -> int:
        return self.subscription.sessions_limit + (self.extension.extra_sessions if self.extension else 0)

    @property
    def databases_limit(self) -> int:
        return self.subscription.databases_limit + (self.extension.extra_databases if self.extension else 0)

    def terms(self) -> ExtensionTerms:
        """What extending it now would give (the same `terms` extend_subscription takes)."""
        return extension_terms(self.subscription, utcnow())


def primary(subscriptions: list[CloudSubscription]) -> CloudSubscription | None:
    """The organization's subscription `cloudSubscription` answers with: the main tariff, i.e. the one
    opened first (then by id); later ones are additions beside it."""
    return min(subscriptions, key=lambda s: (s.created_at, str(s.id)), default=None)


async def views_of(ctx: RequestContext, subscriptions: list[CloudSubscription]) -> list[SubscriptionView]:
    """Each subscription with its extension in force, its history and the extension rule's answer for
    the viewer: one query for any number."""
    extensions = (
        await SubscriptionExtension.filter(subscription_id__in=[s.id for s in subscriptions]) if subscriptions else []
    )
    by_subscription: dict[Any, list[SubscriptionExtension]] = {}
    for extension in sorted(extensions, key=lambda e: e.starts_at, reverse=True):
        by_subscription.setdefault(extension.subscription_id, []).append(extension)
    now = utcnow()
    views = []
    for sub in subscriptions:
        own = by_subscription.get(sub.id, [])
        period = current_period(sub.starts_on, sub.ends_on, now.date())
        rule = standing(ctx.may(sub.organization_id, Permission.EXTEND_SUBSCRIPTION), period, own)
        in_force = next((e for e in own if e.starts_at <= now < e.ends_at), None)
        views.append(SubscriptionView(sub, in_force, rule.can_extend, own, rule))
    return views


async def subscription_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    """`Organization.cloudSubscription`: each organization's `primary` subscription (or None)."""
    by_organization: dict[Any, list[CloudSubscription]] = {}
    for sub in await CloudSubscription.filter(organization_id__in=[o.id for o in orgs]):
        by_organization.setdefault(sub.organization_id, []).append(sub)
    chosen = {org_id: primary(subs) for org_id, subs in by_organization.items()}
    views = {view.subscription.organization_id: view for view in await views_of(ctx, list(chosen.values()))}
    return [views.get(org.id) for org in orgs]


async def subscriptions_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    """`Organization.cloudSubscriptions`: a page of each organization's subscriptions, the main one first
    (opened first); one statement for the pages (two with totalCount), one for their extensions."""
    pages = await load_pages(
        CloudSubscription, "organization_id", [o.id for o in orgs], SUBSCRIPTION_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    views = iter(await views_of(ctx, [row for org in orgs for row in pages[org.id].items]))
    for org in orgs:
        page = pages[org.id]
        page.items = [next(views) for _ in page.items]
    return [pages[o.id] for o in orgs]


@dataclass(frozen=True)
class Limits:
    sessions: int
    databases: int


async def limits_of(organization_ids: list[uuid.UUID], now: dt.datetime) -> dict[uuid.UUID, Limits]:
    """The limits in force for each organization with a cloud subscription: the sum over its
    subscriptions, each with its extension while it lasts. What the cluster agent is told and what
    admitting a session checks."""
    subscriptions = list(await CloudSubscription.filter(organization_id__in=organization_ids))
    extensions = await SubscriptionExtension.filter(
        subscription_id__in=[s.id for s in subscriptions], starts_at__lte=now, ends_at__gt=now
    )
    extra = {e.subscription_id: e for e in extensions}
    limits: dict[uuid.UUID, Limits] = {}
    for s in subscriptions:
        before = limits.get(s.organization_id, Limits(0, 0))
        limits[s.organization_id] = Limits(
            before.sessions + s.sessions_limit + (extra[s.id].extra_sessions if s.id in extra else 0),
            before.databases + s.databases_limit + (extra[s.id].extra_databases if s.id in extra else 0),
        )
    return limits


# ---------------------------------------------------------------------------------------- changes


async def extend_subscription(
    ctx: RequestContext, organization_id: uuid.UUID, subscription_id: uuid.UUID | None = None
) -> SubscriptionView:
    """The owner's one temporary extension per subscription period of one subscription (the organization's
    main one, `primary`, unless `subscription_id` names another): what `terms` says, by the rule `standing`
    says (resolvers/cloud/subscription_terms.py). The only change of a subscription's extension state; audited here."""
    await check_member_of(ctx, organization_id, "organization_id")
    query = CloudSubscription.filter(organization_id=organization_id)
    if subscription_id is not None:
        query = query.filter(id=subscription_id)
    rows = list(await query.select_for_update())
    subscription = primary(rows)
    if subscription is None:
        if subscription_id is not None:
            raise not_found("cloud subscription", "cloud_subscription_id")
        raise UserFacingError(ErrorCode.INVALID, "The organization has no cloud subscription to extend.", "organization_id")
    now = utcnow()
    await roll_over(ctx, subscription, now.date())
    history = list(await SubscriptionExtension.filter(subscription_id=subscription.id).order_by("-starts_at"))
    rule = standing(
        ctx.may(organization_id, Permission.EXTEND_SUBSCRIPTION), (subscription.starts_on, subscription.ends_on), history
    )
    if rule.blocked == ExtendBlockedReason.NOT_OWNER:
        raise UserFacingError(ErrorCode.FORBIDDEN, rule.message)
    already = UserFacingError(ErrorCode.LIMIT_EXCEEDED, BLOCKED_MESSAGES[ExtendBlockedReason.ALREADY_EXTENDED], "organization_id")
    if rule.blocked is not None:
        raise already
    offered = extension_terms(subscription, now)
    try:
        extension = await SubscriptionExtension.create(
            subscription=subscription, period_starts_on=subscription.starts_on,
            extra_sessions=offered.extra_sessions, extra_databases=offered.extra_databases,
            starts_at=offered.starts_at, ends_at=offered.ends_at,
        )
    except IntegrityError:  # the unique (subscription, period) row, should the row lock not have serialized us
        raise already from None
    await audit.record(
        ctx, "subscription.extend", organization_id=organization_id, object_type="CloudSubscription", object_id=subscription.id,
        details={
            "extraSessions": extension.extra_sessions, "extraDatabases": extension.extra_databases,
            "endsAt": extension.ends_at.isoformat(), "periodStartsOn": subscription.starts_on.isoformat(),
        },
    )
    history.insert(0, extension)
    after = standing(True, (subscription.starts_on, subscription.ends_on), history)
    return SubscriptionView(subscription, extension, can_extend=False, history=history, standing=after)


async def open_subscription(
    organization_id: uuid.UUID, *, starts_on: dt.date, ends_on: dt.date, **terms: Any
) -> CloudSubscription:
    """A new subscription (`terms`: tariff, limits, external_id) with its first period: the provider's
    records and the demo and bulk seeding."""
    return await CloudSubscription.create(organization_id=organization_id, starts_on=starts_on, ends_on=ends_on, **terms)


async def set_period(subscription: CloudSubscription, starts_on: dt.date, ends_on: dt.date) -> bool:
    """The one writer of a stored subscription's period (the provider's records, `roll_over`); False
    when it is that period already. The caller audits and tells the dashboards as its change needs."""
    if (subscription.starts_on, subscription.ends_on) == (starts_on, ends_on):
        return False
    subscription.starts_on, subscription.ends_on = starts_on, ends_on
    await subscription.save(update_fields=["starts_on", "ends_on"])
    return True


async def roll_over(actor: Actor, subscription: CloudSubscription, today: dt.date) -> bool:
    """Move a passed period on to the one holding `today` (the row locked by the caller); audited,
    and the organization's dashboards told. False when the period has not passed."""
    starts_on, ends_on = current_period(subscription.starts_on, subscription.ends_on, today)
    if starts_on == subscription.starts_on:
        return False
    previous = (subscription.starts_on, subscription.ends_on)
    await set_period(subscription, starts_on, ends_on)
    await audit.record(
        actor, "subscription.period", organization_id=subscription.organization_id, object_type="CloudSubscription",
        object_id=subscription.id,
        details={"from": [d.isoformat() for d in previous], "to": [starts_on.isoformat(), ends_on.isoformat()]},
    )
    await actor.record_event(subscription.organization_id, DATA, "CHANGED", {"areas": ["cloud"]})
    return True


async def roll_over_due(actor: Actor, today: dt.date) -> int:
    """Every subscription whose period has passed, rolled over, each in its own transaction: how many.
    Safe beside another worker doing the same (the row is locked and the condition read again)."""
    rolled = 0
    for subscription_id in await CloudSubscription.filter(ends_on__lt=today).values_list("id", flat=True):
        async with in_transaction():
            subscription = await CloudSubscription.filter(id=subscription_id, ends_on__lt=today).select_for_update().first()
            if subscription is not None and await roll_over(actor, subscription, today):
                rolled += 1
    return rolled
