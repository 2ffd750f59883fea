"""The organization's cloud subscription: its limits as they stand, and its one extension per period
(`extend_subscription`, the only thing that changes it)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from kabinet.clock import utcnow
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, UserFacingError
from resolvers.permissions import Permission
from models.cloud import CloudSubscription, SubscriptionExtension
from models.organizations import Organization
from resolvers import audit
from resolvers.common import member_organization, require


@dataclass
class SubscriptionView:
    subscription: CloudSubscription
    extension: SubscriptionExtension | None  # the one in force now
    can_extend: bool

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
        own = [e for e in extensions if e.subscription_id == sub.id]
        used_this_period = any(e.period_starts_on == sub.starts_on for e in own)
        in_force = next((e for e in own if e.starts_at <= now < e.ends_at), None)
        can_extend = ctx.may(org.id, Permission.EXTEND_SUBSCRIPTION) and not used_this_period
        result.append(SubscriptionView(sub, in_force, can_extend))
    return result


# ---------------------------------------------------------------------------------------- changes

SUBSCRIPTION_EXTENSION_SESSIONS = 2
SUBSCRIPTION_EXTENSION_DATABASES = 8
SUBSCRIPTION_EXTENSION_DAYS = 7


async def extend_subscription(ctx: RequestContext, organization_id: uuid.UUID) -> SubscriptionView:
    """The owner's one temporary extension per subscription period: +2 sessions, +8 databases, 7 days.
    The only change of a subscription's extension state; audited here."""
    await member_organization(ctx, organization_id, "organization_id")
    require(ctx, organization_id, Permission.EXTEND_SUBSCRIPTION, "Only the owner of the organization may extend the subscription.")
    subscription = await CloudSubscription.filter(organization_id=organization_id).select_for_update().first()
    if subscription is None:
        raise UserFacingError(ErrorCode.INVALID, "The organization has no cloud subscription to extend.", "organization_id")
    now = utcnow()
    if subscription.ends_on < now.date():
        raise UserFacingError(
            ErrorCode.INVALID, "The subscription period has ended: renew the subscription first.", "organization_id"
        )
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
    return SubscriptionView(subscription, extension, can_extend=False)
