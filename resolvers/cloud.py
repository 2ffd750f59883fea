"""The cloud subscription, databases and sessions, each as the viewer's role allows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from kabinet.clock import utcnow
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, Refusal, UserFacingError, forbidden
from resolvers.permissions import Permission
from models.cloud import CloudSubscription, Database, Session, SubscriptionExtension
from models.identity import User
from models.organizations import Organization
from resolvers import audit, sessions
from kabinet.ids import NO_SUCH_ID, pk_of
from resolvers.common import member_organization, organization_row, page_request, related_one, require, wants_total
from resolvers.validation import invalid
from resolvers.pagination import Ordering, Page, load_pages

DATABASE_ORDER = Ordering(("name",))
SESSION_ORDER = Ordering(sessions.SESSION_ORDER)


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


def database_scope(ctx: RequestContext, organization_id: uuid.UUID) -> Q | Refusal | None:
    """Which of an organization's databases the viewer sees: all (None), the granted ones, or none."""
    if ctx.may(organization_id, Permission.SEE_ALL_DATABASES):
        return None
    if ctx.may(organization_id, Permission.SEE_GRANTED_DATABASES):
        return Q(id__in=list(ctx.granted_databases(organization_id)))
    return forbidden("databases")


def session_scope(ctx: RequestContext, organization_id: uuid.UUID) -> Q | Refusal | None:
    """Which sessions the viewer sees: all (owner, admin: None), their own (user), or none."""
    if ctx.may(organization_id, Permission.SEE_ALL_SESSIONS):
        return None
    if ctx.may(organization_id, Permission.SEE_OWN_SESSIONS):
        return Q(user_id=ctx.require_viewer().user_id)
    return forbidden("sessions")


async def _scoped_pages(
    ctx: RequestContext,
    model: type[Any],
    parent_field: str,
    parents: list[tuple[Any, uuid.UUID]],
    scope: Callable[[RequestContext, uuid.UUID], Q | Refusal | None],
    ordering: Ordering,
    args: dict[str, Any],
    extra: Q | None = None,
) -> list[Page | Refusal]:
    """Pages per (parent id, organization id), each parent's organization deciding the scope.

    All parents the viewer sees everything under share one query; a narrowed scope (a USER's
    grants or own sessions) is one query per organization.
    """
    request = page_request(ctx, args)
    result: dict[Any, Page | Refusal] = {}
    groups: dict[uuid.UUID | None, tuple[Q | None, list[Any]]] = {}
    for parent_id, org_id in parents:
        narrowing = scope(ctx, org_id)
        if isinstance(narrowing, Refusal):
            result[parent_id] = narrowing
            continue
        groups.setdefault(None if narrowing is None else org_id, (narrowing, []))[1].append(parent_id)
    for narrowing, ids in groups.values():
        filters = narrowing & extra if narrowing is not None and extra is not None else narrowing or extra
        pages = await load_pages(model, parent_field, ids, ordering, request, filters=filters, with_total=wants_total(args))
        result.update(pages)
    return [result[parent_id] for parent_id, _ in parents]


async def databases_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    return await _scoped_pages(
        ctx, Database, "organization_id", [(o.id, o.id) for o in orgs], database_scope, DATABASE_ORDER, args
    )


def _session_filters(args: dict[str, Any]) -> Q | None:
    conditions: dict[str, Any] = {}
    if args.get("status"):
        conditions["status"] = args["status"]
    if args.get("database_id") is not None:  # decoded by the schema
        conditions["database_id"] = args["database_id"]
    return Q(**conditions) if conditions else None


async def sessions_of_organizations(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    return await _scoped_pages(
        ctx, Session, "organization_id", [(o.id, o.id) for o in orgs], session_scope, SESSION_ORDER, args,
        extra=_session_filters(args),
    )


async def sessions_of_databases(ctx: RequestContext, databases: list[Database], args: dict[str, Any]) -> list:
    return await _scoped_pages(
        ctx, Session, "database_id", [(d.id, d.organization_id) for d in databases], session_scope, SESSION_ORDER,
        args, extra=_session_filters(args),
    )


async def database_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    return await related_one(Database, rows, "database_id")


async def user_of_session(ctx: RequestContext, rows: list[Session], args: dict[str, Any]) -> list:
    return await related_one(User, rows, "user_id")


# ---------------------------------------------------------------------------------------- changes

SUBSCRIPTION_EXTENSION_SESSIONS = 2
SUBSCRIPTION_EXTENSION_DATABASES = 8
SUBSCRIPTION_EXTENSION_DAYS = 7


async def terminate_session(ctx: RequestContext, session_global_id: str) -> Session:
    """Ask the cluster to end one session of the viewer's organizations (resolvers/sessions.py decides who may)."""
    ctx.require_viewer()
    field = ["sessionId"]
    session = await organization_row(ctx, Session, session_global_id, field, "session")
    return await sessions.terminate(ctx, session, field=field)


async def terminate_all_sessions(
    ctx: RequestContext, organization_global_id: str, database_global_id: str | None
) -> list[Session]:
    """Ask the cluster to end every ACTIVE session the viewer may end in the organization, or in one database."""
    ctx.require_viewer()
    org_id = await member_organization(ctx, organization_global_id, ["organizationId"])
    database_id = None if database_global_id is None else pk_of(database_global_id, "Database") or NO_SUCH_ID
    return await sessions.terminate_all(ctx, org_id, database_id, database_field=["databaseId"])


async def extend_subscription(ctx: RequestContext, organization_global_id: str) -> SubscriptionView:
    """The owner's one temporary extension per subscription period: +2 sessions, +8 databases, 7 days."""
    org_id = await member_organization(ctx, organization_global_id, ["organizationId"])
    require(ctx, org_id, Permission.EXTEND_SUBSCRIPTION, "Only the owner of the organization may extend the subscription.")
    subscription = await CloudSubscription.filter(organization_id=org_id).select_for_update().first()
    if subscription is None:
        raise invalid(["organizationId"], "The organization has no cloud subscription to extend.")
    now = utcnow()
    if subscription.ends_on < now.date():
        raise invalid(["organizationId"], "The subscription period has ended: renew the subscription first.")
    already = UserFacingError(
        ErrorCode.LIMIT_EXCEEDED,
        "The subscription has already been extended in this period: one extension per period. "
        "For longer, ask your provider for more sessions or databases, or another tariff.",
        ["organizationId"],
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
        ctx, "subscription.extend", organization_id=org_id, object_type="CloudSubscription", object_id=subscription.id,
        details={
            "extraSessions": extension.extra_sessions, "extraDatabases": extension.extra_databases,
            "endsAt": extension.ends_at.isoformat(), "periodStartsOn": subscription.starts_on.isoformat(),
        },
    )
    return SubscriptionView(subscription, extension, can_extend=False)
