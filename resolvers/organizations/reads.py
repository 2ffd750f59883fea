"""Organizations the viewer belongs to, their members and invites, and their audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tortoise.expressions import Q

from resolvers.common.context import RequestContext
from resolvers.common.errors import bad_user_input
from models.audit import AuditEntry
from models.identity import User
from models.organizations import DatabaseGrant, Invite, InviteDatabase, InviteStatus, Membership, Organization
from models.select import select, select_by_ids
from models.cloud import Database
from resolvers.organizations import invite_status
from resolvers.common.gates import page_request, related_one, wants_total
from resolvers.common.pagination import Ordering, Page, load_pages

ORGANIZATION_ORDER = Ordering(("name",))
MEMBER_ORDER = Ordering(("created_at",))
INVITE_ORDER = Ordering(("-created_at",))
AUDIT_ORDER = Ordering(("-created_at",))


async def organizations_of_viewer(ctx: RequestContext, args: dict[str, Any]) -> Page[Organization]:
    memberships = await ctx.memberships()
    pages = await load_pages(
        Organization, None, (), ORGANIZATION_ORDER, page_request(ctx, args),
        filters=Q(id__in=list(memberships)), with_total=wants_total(args),
    )
    return pages[None]


async def organization_by_id(ctx: RequestContext, organization_id: uuid.UUID | None) -> Organization | None:
    """The organization, if the viewer belongs to it; otherwise None, as if it did not exist."""
    memberships = await ctx.memberships()
    if organization_id is None or organization_id not in memberships:
        return None
    rows = await select(Organization, Q(id=organization_id))
    return rows[0] if rows else None


async def members_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    pages = await load_pages(
        Membership, "organization_id", [o.id for o in orgs], MEMBER_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def invites_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    status = args.get("status")
    pages = await load_pages(
        Invite, "organization_id", [o.id for o in orgs], INVITE_ORDER, page_request(ctx, args),
        filters=invite_status.status_filter(InviteStatus(status) if status else None), with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def user_of_membership(ctx: RequestContext, memberships: list[Membership], args: dict[str, Any]) -> list:
    return await related_one(User, memberships, "user_id")


async def organization_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    """The organization of rows that carry `organization_id` (visible, since the row was)."""
    return await related_one(Organization, rows, "organization_id")


async def memberships_of_user(ctx: RequestContext, users: list[User], args: dict[str, Any]) -> list:
    """A user's memberships, oldest first (the viewer sees those the Membership rule lets them:
    their own, and those of organizations where they see members)."""
    rows = await Membership.filter(user_id__in=[u.id for u in users]).order_by("created_at", "id")
    result: dict[uuid.UUID, list[Membership]] = {u.id: [] for u in users}
    for row in rows:
        result[row.user_id].append(row)
    return [result[u.id] for u in users]


async def inviter_of(ctx: RequestContext, invites: list[Invite], args: dict[str, Any]) -> list:
    return await related_one(User, invites, "invited_by_id")


async def databases_of_invite(ctx: RequestContext, invites: list[Invite], args: dict[str, Any]) -> list:
    links = await InviteDatabase.filter(invite_id__in=[i.id for i in invites]).order_by("created_at")
    databases = await select_by_ids(Database, (link.database_id for link in links))
    result: dict[uuid.UUID, list[Database]] = {i.id: [] for i in invites}
    for link in links:
        if link.database_id in databases:
            result[link.invite_id].append(databases[link.database_id])
    return [result[i.id] for i in invites]


async def databases_of_membership(ctx: RequestContext, memberships: list[Membership], args: dict[str, Any]) -> list:
    """The databases granted to each member (what a USER may open), by name."""
    grants = await DatabaseGrant.filter(membership_id__in=[m.id for m in memberships])
    databases = await select_by_ids(Database, (g.database_id for g in grants))
    result: dict[uuid.UUID, list[Database]] = {m.id: [] for m in memberships}
    for grant in grants:
        if grant.database_id in databases:
            result[grant.membership_id].append(databases[grant.database_id])
    return [sorted(result[m.id], key=lambda d: (d.name, str(d.id))) for m in memberships]


def audit_filters(action: str | None, start: dt.date | None, end: dt.date | None) -> Q | None:
    """`action` is one action ("member.remove") or a group ("member": every "member.…");
    `from`/`to` are inclusive UTC days."""
    if start and end and start > end:
        raise bad_user_input("`from` must not be after `to`.")
    conditions = []
    if action:
        conditions.append(Q(action=action) | Q(action__startswith=f"{action}."))
    if start:
        conditions.append(Q(created_at__gte=dt.datetime.combine(start, dt.time(), dt.timezone.utc)))
    if end:
        conditions.append(Q(created_at__lt=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)))
    return Q(*conditions) if conditions else None


async def audit_log_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    pages = await load_pages(
        AuditEntry, "organization_id", [o.id for o in orgs], AUDIT_ORDER, page_request(ctx, args),
        filters=audit_filters(args.get("action"), args.get("from"), args.get("to")), with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def actor_of(ctx: RequestContext, entries: list[AuditEntry], args: dict[str, Any]) -> list:
    return await related_one(User, entries, "actor_id")
