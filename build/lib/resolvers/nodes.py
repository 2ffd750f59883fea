"""`node(id)`: any object by its global id, if and only if the viewer may see it."""

from __future__ import annotations

import uuid
from typing import Any

from graphql import GraphQLError

from kabinet.context import RequestContext
from kabinet.permissions import Permission
from models.audit import AuditEntry
from models.billing import BalanceTransaction, Charge, Document
from models.cloud import CloudSubscription, Database, Session
from models.identity import User
from models.organizations import Invite, Membership, Organization
from models.products import Contract, Product
from models.updates import Release, UpdateRun
from resolvers.billing import today
from resolvers.registration import join_request_by_id
from resolvers.cloud import database_scope, session_scope, subscription_of

# Objects any member sees, and those that need a permission in their organization.
_BY_PERMISSION: dict[str, tuple[type, Permission]] = {
    "Organization": (Organization, Permission.SEE_ORGANIZATION),
    "Product": (Product, Permission.SEE_ORGANIZATION),
    "Contract": (Contract, Permission.SEE_ORGANIZATION),
    "Invite": (Invite, Permission.SEE_MEMBERS),
    "BalanceTransaction": (BalanceTransaction, Permission.SEE_FINANCE),
    "Charge": (Charge, Permission.SEE_FINANCE),
    "Document": (Document, Permission.SEE_FINANCE),
    "AuditEntry": (AuditEntry, Permission.SEE_AUDIT_LOG),
}


async def node_by_id(ctx: RequestContext, type_name: str, pk: uuid.UUID) -> Any | None:
    viewer = ctx.require_viewer()
    memberships = await ctx.memberships()
    if type_name in _BY_PERMISSION:
        model, permission = _BY_PERMISSION[type_name]
        row = await model.get_or_none(id=pk)
        org_id = row.id if isinstance(row, Organization) else getattr(row, "organization_id", None)
        if row is None or not ctx.may(org_id, permission):
            return None
        if isinstance(row, Document) and row.visible_from > today():
            return None
        return row
    if type_name == "User":
        if pk == viewer.user_id:
            return await User.get_or_none(id=pk)
        shared = await Membership.filter(user_id=pk, organization_id__in=list(memberships)).values_list("organization_id", flat=True)
        if any(ctx.may(org_id, Permission.SEE_MEMBERS) for org_id in shared):
            return await User.get_or_none(id=pk)
        return None
    if type_name == "Membership":
        row = await Membership.get_or_none(id=pk)
        if row and (row.user_id == viewer.user_id or ctx.may(row.organization_id, Permission.SEE_MEMBERS)):
            return row
        return None
    if type_name == "CloudSubscription":
        row = await CloudSubscription.get_or_none(id=pk)
        if row is None or row.organization_id not in memberships:
            return None
        organization = await Organization.get(id=row.organization_id)
        return (await subscription_of(ctx, [organization], {}))[0]
    if type_name in ("Database", "UpdateRun"):
        row = await (Database if type_name == "Database" else UpdateRun).get_or_none(id=pk)
        database_id = row.id if isinstance(row, Database) else getattr(row, "database_id", None)
        if row is None or not await _database_visible(ctx, row.organization_id, database_id):
            return None
        return row
    if type_name == "JoinRequest":
        return await join_request_by_id(ctx, pk)
    if type_name == "Release":  # what the provider published is no secret to a signed-in user
        return await Release.get_or_none(id=pk)
    if type_name == "Session":
        row = await Session.get_or_none(id=pk)
        if row is None:
            return None
        scope = session_scope(ctx, row.organization_id)
        if isinstance(scope, GraphQLError):
            return None
        return row if scope is None or row.user_id == viewer.user_id else None
    return None


async def _database_visible(ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID) -> bool:
    scope = database_scope(ctx, organization_id)
    if isinstance(scope, GraphQLError):
        return False
    return scope is None or database_id in ctx.granted_databases(organization_id)
