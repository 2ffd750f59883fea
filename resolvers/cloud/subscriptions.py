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
from resolvers.common.gates import check_member_of, check_permission


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


async def subscription_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    subscriptions = {s.organization_id: s for s in await CloudSubscription.filter(organization_id__in=[o.id for o in orgs])}
    extensions = await SubscriptionExtension.filter(subscription_id__in=[s.id for s in subscriptions.values()])
    now = utcnow()
    result = []
    for org in orgs:
        sub = subscriptions.get(org.id)
        if sub is None:
            result.append(None)
            continue
        own = sorted((e for e in extensions if e.subscription_id == sub.id), key=lambda e: e.starts_at, reverse=True)
        period_starts_on, _ = current_period(sub.starts_on, sub.ends_on, now.date())
        used_this_period = any(e.period_starts_on == period_starts_on for e in own)
        in_force = next((e for e in own if e.starts_at <= now < e.ends_at), None)
        can_extend = ctx.may(org.id, Permission.EXTEND_SUBSCRIPTION) and not used_this_period
        result.append(SubscriptionView(sub, in_force, can_extend, own))
    return result


@dataclass(frozen=True)
class Limits:
    sessions: int
    databases: int


async def limits_of(organization_ids: list[uuid.UUID], now: dt.datetime) -> dict[uuid.UUID, Limits]:
    """The limits in force for each organization with a cloud subscription (the extension included
    while it lasts): what the cluster agent is told and what admitting a session checks."""
    subscriptions = list(await CloudSubscription.filter(organization_id__in=organization_ids))
    extensions = await SubscriptionExtension.filter(
        subscription_id__in=[s.id for s in subscriptions], starts_at__lte=now, ends_at__gt=now
    )
    extra = {e.subscription_id: e for e in extensions}
    return {
        s.organization_id: Limits(
            s.sessions_limit + (extra[s.id].extra_sessions if s.id in extra else 0),
            s.databases_limit + (extra[s.id].extra_databases if s.id in extra else 0),
        )
        for s in subscriptions
    }


# ---------------------------------------------------------------------------------------- changes

SUBSCRIPTION_EXTENSION_SESSIONS = 2
SUBSCRIPTION_EXTENSION_DATABASES = 8
SUBSCRIPTION_EXTENSION_DAYS = 7


async def extend_subscription(ctx: RequestContext, organization_id: uuid.UUID) -> SubscriptionView:
    """The owner's one temporary extension per subscription period: +2 sessions, +8 databases, 7 days.
    The only change of a subscription's extension state; audited here."""
    await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, organization_id, Permission.EXTEND_SUBSCRIPTION, "Only the owner of the organization may extend the subscription.")
    subscription = await CloudSubscription.filter(organization_id=organization_id).select_for_update().first()
    if subscription is None:
        raise UserFacingError(ErrorCode.INVALID, "The organization has no cloud subscription to extend.", "organization_id")
    now = utcnow()
    await roll_over(ctx, subscription, now.date())
    already = UserFacingError(
        ErrorCode.LIMIT_EXCEEDED,
        "The subscription has already been extended in this period: one extension per period. "
        "For longer, ask your provider for more sessions or databases, or another tariff.",
        "organization_id",
    )
    if await SubscriptionExtension.exists(subscription_id=subscription.id, period_starts_on=subscription.starts_on):
        raise already
    try:
        extension = await SubscriptionExtension.create(
            subscription=subscription, period_starts_on=subscription.starts_on,
            extra_sessions=SUBSCRIPTION_EXTENSION_SESSIONS, extra_databases=SUBSCRIPTION_EXTENSION_DATABASES,
            starts_at=now, ends_at=now + dt.timedelta(days=SUBSCRIPTION_EXTENSION_DAYS),
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
    history = list(await SubscriptionExtension.filter(subscription_id=subscription.id).order_by("-starts_at"))
    return SubscriptionView(subscription, extension, can_extend=False, history=history)


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
