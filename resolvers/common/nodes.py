"""`node(id)`: any object by its global id. The row is read here; whether the viewer sees it is the
role table's decision on the object (`schema.authorization`), as on every other path."""

from __future__ import annotations

import uuid
from typing import Any

from resolvers.common.context import RequestContext
from models.cloud import CloudSubscription
from models.select import select_by_ids
from resolvers.cloud.subscriptions import views_of

async def node_by_id(ctx: RequestContext, model: type, pk: uuid.UUID) -> Any | None:
    """The `model` row with this key, or None when there is none; not yet checked against the viewer.
    (Which model a global id names is the schema's node registry, `schema/nodes.py`.)"""
    ctx.require_viewer()
    row = (await select_by_ids(model, [pk])).get(pk)
    if row is None:
        return None
    if isinstance(row, CloudSubscription):
        await ctx.memberships()
        return (await views_of(ctx, [row]))[0]
    return row
