"""The gate every object passes on its way to a client: the role table decides on the object.

`schema.batching` calls `admit` on whatever a field loaded and on whatever a root field, a mutation
payload or a subscription event holds, and `field_refusals` before a field of a visible object
loads. So the same rule (resolvers.common.permissions) decides whether an object is seen, whatever path
reached it: a list, `node(id:)`, a link from another object, a payload, a shared subscription
result. Resolvers still narrow their SQL to what the viewer sees (for paging); the gate is what
makes a mistake there a missing item rather than a leak.
"""

from __future__ import annotations

import uuid
from typing import Any

from graphql import GraphQLError

from schema.errors import forbidden
from resolvers.common.permissions import FIELD_RULES, NEEDS_STAFF_FLAG, NEEDS_USERS_IN_SIGHT, TYPE_RULES, FieldRule, Sight
from schema.relay import Connection

_type_names: dict[type, str | None] = {}


def type_name_of(obj: Any) -> str | None:
    """The GraphQL type of a schema object; None for anything else."""
    cls = obj.__class__
    try:
        return _type_names[cls]
    except KeyError:
        definition = getattr(cls, "__strawberry_definition__", None)
        name = _type_names[cls] = definition.name if definition is not None else None
        return name


def _objects(value: Any, into: list) -> None:
    if isinstance(value, list):
        for item in value:
            _objects(item, into)
    elif isinstance(value, Connection):
        into.extend(edge.node for edge in value.edges)
    elif value is not None and not isinstance(value, GraphQLError) and type_name_of(value) in TYPE_RULES:
        into.append(value)


async def _prepare(ctx: Any, objs: list[Any]) -> None:
    """Load, once per batch, the facts the rules of these objects' types need."""
    if ctx.viewer is None:
        return
    await ctx.memberships()
    users: set[uuid.UUID] = set()
    staff = False
    for obj in objs:
        name = type_name_of(obj)
        if name in NEEDS_USERS_IN_SIGHT:
            users.add(obj.model.id)
        staff = staff or name in NEEDS_STAFF_FLAG
    if staff:  # read once per request (a User in the batch needs it too, for staff see anyone)
        await ctx.prepare_staff_flag()
    if users:
        await ctx.prepare_users_in_sight(users)


def sight(ctx: Any, obj: Any) -> Sight:
    """What the viewer may do with one schema object of a ruled type (rules prepared)."""
    if ctx.viewer is None:
        return Sight.HIDDEN
    return TYPE_RULES[type_name_of(obj)](ctx, obj.model)


async def admit(ctx: Any, values: list[Any]) -> list[Any]:
    """Each of `values` as the viewer may have it: objects they may not see are left out of lists
    and connections; a single object is null, or a FORBIDDEN error where the viewer's role in its
    organization is refused such objects (a link from a visible object: Charge.database)."""
    objs: list[Any] = []
    for value in values:
        _objects(value, objs)
    if not objs:
        return values
    await _prepare(ctx, objs)
    return [_admitted(ctx, value) for value in values]


def _admitted(ctx: Any, value: Any) -> Any:
    if isinstance(value, list):  # a list holds what the viewer sees: refused items are left out too
        kept = [item for item in value if type_name_of(item) not in TYPE_RULES or sight(ctx, item) is Sight.SEE]
        return kept if len(kept) != len(value) else value
    if isinstance(value, Connection):
        edges = [edge for edge in value.edges if sight(ctx, edge.node) is Sight.SEE]
        if len(edges) != len(value.edges):
            value.edges = edges
        return value
    if value is None or isinstance(value, GraphQLError) or type_name_of(value) not in TYPE_RULES:
        return value
    seen = sight(ctx, value)
    if seen is Sight.SEE:
        return value
    if seen is Sight.FORBIDDEN:
        return forbidden(f"this {type_name_of(value)}")
    return None


async def field_refusals(ctx: Any, type_name: str, field_name: str, objs: list[Any]) -> list[GraphQLError | None] | None:
    """For a field the role table rules (FIELD_RULES): per object, the FORBIDDEN error of a viewer
    who may not read it there, or None; None altogether for a field with no rule."""
    rule: FieldRule | None = FIELD_RULES.get((type_name, field_name))
    if rule is None:
        return None
    await ctx.memberships()
    refusals: list[GraphQLError | None] = []
    refused: GraphQLError | None = None
    for obj in objs:
        row = obj.model
        organization_id = row.id if type_name == "Organization" else row.organization_id
        if rule.allows(ctx, organization_id, row):
            refusals.append(None)
        else:
            refused = refused or forbidden(rule.what)
            refusals.append(refused)
    return refusals
