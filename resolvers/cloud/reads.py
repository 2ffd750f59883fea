"""Cloud databases and sessions, as lists narrowed to what the viewer's role shows (the role table's
rules, as query filters), and the mutations' way to ending sessions (resolvers/cloud/sessions.py ends them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tortoise.expressions import Q

from resolvers.common.context import RequestContext
from resolvers.common.errors import Refusal
from resolvers.common.permissions import database_scope, session_scope
from models.cloud import Database, Session
from models.identity import User
from models.organizations import Organization
from resolvers.cloud import sessions
from resolvers.common.gates import page_request, related_one, wants_total
from resolvers.common.pagination import Ordering, Page, load_pages

DATABASE_ORDER = Ordering(("name",))
SESSION_ORDER = Ordering(sessions.SESSION_ORDER)


async def _scoped_pages(
    ctx: RequestContext,
    model: type[Any],
    parent_field: str,
    parents: list[tuple[Any, uuid.UUID]],
    narrowed: Callable[[RequestContext, uuid.UUID], Q | Refusal | None],
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
        narrowing = narrowed(ctx, org_id)
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


def session_filters(args: dict[str, Any]) -> Q | None:
    """The sessions lists' arguments as a filter (also read by schema/sql_json.py)."""
    conditions: dict[str, Any] = {}
    if args.get("status"):
        conditions["status"] = args["status"]
    if args.get("database_id") is not None:  # decoded by the schema
        conditions["database_id"] = args["database_id"]
    return Q(**conditions) if conditions else None


async def sessions_of_organizations(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    return await _scoped_pages(
        ctx, Session, "organization_id", [(o.id, o.id) for o in orgs], session_scope, SESSION_ORDER, args,
        extra=session_filters(args),
    )


async def sessions_of_databases(ctx: RequestContext, databases: list[Database], args: dict[str, Any]) -> list:
    return await _scoped_pages(
        ctx, Session, "database_id", [(d.id, d.organization_id) for d in databases], session_scope, SESSION_ORDER,
        args, extra=session_filters(args),
    )


async def database_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    return await related_one(Database, rows, "database_id")


async def user_of_session(ctx: RequestContext, rows: list[Session], args: dict[str, Any]) -> list:
    return await related_one(User, rows, "user_id")
