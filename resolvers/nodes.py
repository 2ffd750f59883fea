"""`node(id)`: any object by its global id. The row is read here; whether the viewer sees it is the
role table's decision on the object (`schema.authorization`), as on every other path."""

from __future__ import annotations

import uuid
from typing import Any

from resolvers.context import RequestContext
from models.audit import AuditEntry
from models.billing import BalanceTransaction, Charge, Document
from models.cloud import CloudSubscription, Database, Session
from models.identity import User
from models.organizations import Invite, JoinRequest, Membership, Organization
from models.products import Contract, Product
from models.select import select_by_ids
from models.updates import Release, UpdateRun
from resolvers.cloud_subscriptions import subscription_of

NODE_MODELS: dict[str, type] = {
    "Organization": Organization,
    "Membership": Membership,
    "Invite": Invite,
    "User": User,
    "Product": Product,
    "Contract": Contract,
    "BalanceTransaction": BalanceTransaction,
    "Charge": Charge,
    "Document": Document,
    "CloudSubscription": CloudSubscription,
    "Database": Database,
    "Session": Session,
    "UpdateRun": UpdateRun,
    "Release": Release,
    "AuditEntry": AuditEntry,
    "JoinRequest": JoinRequest,
}


async def node_by_id(ctx: RequestContext, type_name: str, pk: uuid.UUID) -> Any | None:
    """The row a global id names, or None when there is none; not yet checked against the viewer."""
    ctx.require_viewer()
    model = NODE_MODELS.get(type_name)
    if model is None:
        return None
    row = (await select_by_ids(model, [pk])).get(pk)
    if row is None:
        return None
    if isinstance(row, CloudSubscription):
        await ctx.memberships()
        organization = (await select_by_ids(Organization, [row.organization_id]))[row.organization_id]
        return (await subscription_of(ctx, [organization], {}))[0]
    return row
