"""The Subscription root: live session lists, session events and update-run progress."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from kabinet.errors import graphql_error
from schema.cloud import SessionEvent, SessionListUpdate
from schema.updates import UpdateRun


def _not_yet() -> Exception:
    return graphql_error("NOT_IMPLEMENTED", "Live subscriptions are not served yet by this version of kabinet.")


@strawberry.type(description="Live views over WebSocket (graphql-transport-ws or graphql-ws).")
class Subscription:
    @strawberry.subscription(
        description="The organization's ACTIVE and TERMINATING sessions: the whole list first, then again after "
        "every change. The first message is sent only once the subscription is live: every change committed "
        "after it arrives."
    )
    async def sessions(
        self, info: strawberry.Info, organization_id: strawberry.ID, database_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SessionListUpdate, None]:
        raise _not_yet()
        yield  # pragma: no cover

    @strawberry.subscription(description="Every session change in the organization, one event each, in order.")
    async def session_events(
        self, info: strawberry.Info, organization_id: strawberry.ID, database_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SessionEvent, None]:
        raise _not_yet()
        yield  # pragma: no cover

    @strawberry.subscription(description="Every change of an update run in the organization: status and progress.")
    async def update_runs(
        self, info: strawberry.Info, organization_id: strawberry.ID, database_id: strawberry.ID | None = None
    ) -> AsyncGenerator[UpdateRun, None]:
        raise _not_yet()
        yield  # pragma: no cover
