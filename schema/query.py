"""The Query root: the signed-in user, their organizations, and any object by global id."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError

from resolvers.identity import logins as identity_resolvers
from resolvers.common import nodes as node_resolvers
from resolvers.organizations import reads as resolvers
from foundation.ids import from_global_id, pk_of
from schema.batching import expand, selected
from schema.nodes import node_types
from schema.identity import User
from schema.organizations import Organization
from schema.notifications import NotificationQueries
from schema.registration import RegistrationQueries
from schema.staff_desk import StaffDeskQueries
from schema.tickets import TicketQueries
from schema.update_extras import ReleaseQueries
from schema.relay import After, Connection, First, Node, connection_of
from schema.strawberry_internals import raw_info

@strawberry.type(description="Everything a cabinet user can read.")
class Query(RegistrationQueries, StaffDeskQueries, NotificationQueries, TicketQueries, ReleaseQueries):
    @strawberry.field(description="Any object by its global id; null when it does not exist or is not yours to see.")
    async def node(self, info: strawberry.Info, id: Annotated[strawberry.ID, strawberry.argument(description="The global id of any object.")]) -> Node | None:
        ctx = info.context
        ctx.require_viewer()
        decoded = from_global_id(id)
        node_type = node_types(raw_info(info).schema).get(decoded[0]) if decoded else None
        if node_type is None:
            return None
        row = await node_resolvers.node_by_id(ctx, node_type.model, decoded[1])
        if row is None:
            return None
        value = await expand(info, node_type.convert(row))
        return None if isinstance(value, GraphQLError) else value  # refused is as absent as unknown

    @strawberry.field(description="The signed-in user.")
    async def me(self, info: strawberry.Info) -> User:
        await info.context.memberships()
        return await expand(info, User.from_model(await identity_resolvers.viewer_user(info.context)))

    @strawberry.field(description="Organizations the signed-in user belongs to, by name.")
    async def organizations(
        self, info: strawberry.Info, first: First = None, after: After = None
    ) -> Connection[Organization]:
        args = {"first": first, "after": after, **selected(info)}
        page = await resolvers.organizations_of_viewer(info.context, args)
        return await expand(info, connection_of(Organization.from_model)(page))

    @strawberry.field(description="One organization of the signed-in user; null for any other id.")
    async def organization(self, info: strawberry.Info, id: Annotated[strawberry.ID, strawberry.argument(description="The organization's global id.")]) -> Organization | None:
        row = await resolvers.organization_by_id(info.context, pk_of(id, "Organization"))
        return await expand(info, Organization.from_model(row)) if row else None

