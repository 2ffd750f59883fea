"""The cloud subscription, databases and sessions, each as the viewer's role allows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from tortoise.expressions import Q

from kabinet.auth import utcnow
from kabinet.context import RequestContext
from kabinet.errors import forbidden
from kabinet.permissions import Permission
from models.cloud import CloudSubscription, Database, Session, SubscriptionExtension
from models.identity import User
from models.organizations import Organization
from resolvers.ids import NO_SUCH_ID, pk_of
from resolvers.common import page_request, related_one, wants_total
from resolvers.pagination import Ordering, Page, load_pages

DATABASE_ORDER = Ordering(("name",))
SESSION_ORDER = Ordering(("-started_at",))


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


def database_scope(ctx: RequestContext, organization_id: uuid.UUID) -> Q | GraphQLError | None:
    """Which of an organization's databases the viewer sees: all (None), the granted ones, or none."""
    if ctx.may(organization_id, Permission.SEE_ALL_DATABASES):
        return None
    if ctx.may(organization_id, Permission.SEE_GRANTED_DATABASES):
        return Q(id__in=list(ctx.granted_databases(organization_id)))
    return forbidden("databases")


def session_scope(ctx: RequestContext, organization_id: uuid.UUID) -> Q | GraphQLError | None:
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
    scope: Callable[[RequestContext, uuid.UUID], Q | GraphQLError | None],
    ordering: Ordering,
    args: dict[str, Any],
    extra: Q | None = None,
) -> list[Page | GraphQLError]:
    """Pages per (parent id, organization id), each parent's organization deciding the scope.

    All parents the viewer sees everything under share one query; a narrowed scope (a USER's
    grants or own sessions) is one query per organization.
    """
    request = page_request(ctx, args)
    result: dict[Any, Page | GraphQLError] = {}
    groups: dict[uuid.UUID | None, tuple[Q | None, list[Any]]] = {}
    for parent_id, org_id in parents:
        narrowing = scope(ctx, org_id)
        if isinstance(narrowing, GraphQLError):
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
    if args.get("databaseId") is not None:
        conditions["database_id"] = pk_of(args["databaseId"], "Database") or NO_SUCH_ID
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


async def user_of_session(ctx: RequestContext, sessions: list[Session], args: dict[str, Any]) -> list:
    return await related_one(User, sessions, "user_id")
