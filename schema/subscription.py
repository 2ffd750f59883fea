"""The Subscription root: live session lists, session events, update-run progress and ticket changes.

Each subscription first joins this process's event hub, then reads its snapshot with the event
number it stands at, and streams the events after that number: nothing committed after the
first message is missed, nothing is seen twice. It ends when the access token expires, when
the viewer's membership is revoked, or when the subscriber falls too far behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import strawberry

from foundation.ids import NO_SUCH_ID, pk_of
from schema.errors import graphql_error, signed_out
from models.events import OrganizationEvent
from resolvers.cloud import live
from resolvers.common.errors import not_found, refusal
from resolvers.organizations import reads as organization_resolvers
from events.log import ACCESS, DATA, SESSIONS, UPDATES, StreamExpired, SubscriberTooSlow, run_from_payload, session_of
from resolvers.cloud.sessions import newest_first
from resolvers.common.permissions import PERSONAL_FIELDS, Permission
from resolvers.provider.records import Area
from schema.batching import expand, selection_touches
from schema.execution import share_completions
from schema.strawberry_internals import raw_info

if TYPE_CHECKING:
    from events.hub import EventStream  # the hub's stream the context brings
from schema.cloud import Session, SessionEvent, SessionEventKind, SessionListUpdate
from schema.enums import described_enum
from schema.organizations import Organization
from schema.updates import UpdateRun
from schema.tickets import Ticket, TicketChange, TicketChangeKind
from resolvers.support import live as ticket_live
from resolvers.support import tickets as ticket_resolvers

described_enum(Area, "A part of an organization's data that the provider's records change.", {
    "ORGANIZATION": "Its name and requisites.",
    "PRODUCTS": "Its products and contracts.",
    "BALANCE": "Its deposit: ledger entries and prepaid services.",
    "CHARGES": "Its charges.",
    "DOCUMENTS": "Its invoices, acts and other documents.",
    "CLOUD": "Its cloud subscription and databases.",
    "RELEASES": "A new release of a configuration its databases run: their update plans.",
})


@strawberry.type(description="The provider changed an organization's data: which parts, and the organization as it is now.")
class OrganizationDataChange:
    areas: list[Area] = strawberry.field(description="What changed: re-read these parts (the organization below selects them).")
    organization: Organization = strawberry.field(description="The organization after the change, read through the same role rules as a query.")
    at: dt.datetime = strawberry.field(description="When the change was committed.")


async def _events(stream: EventStream, ctx, organization_id: uuid.UUID) -> AsyncIterator[OrganizationEvent]:
    """The stream's events until the token expires or the viewer's access to the organization ends."""
    viewer = ctx.require_viewer()
    if viewer.expires_at is not None:
        stream.end_at(viewer.expires_at)
    try:
        async for event in stream:
            if event.topic == ACCESS and event.payload.get("user_id") == str(viewer.user_id):
                # removed, another role, fewer databases: what it shows was chosen by the old rights
                raise graphql_error("FORBIDDEN", "Your access to this organization changed: subscribe again.")
            if viewer.login_id in ctx.ended_logins:  # signed out: the socket is being closed, nothing more meanwhile
                raise signed_out()
            yield event
    except StreamExpired:
        raise graphql_error("UNAUTHENTICATED", "The access token has expired: subscribe again with a fresh one.") from None
    except SubscriberTooSlow:
        raise graphql_error("SLOW_CONSUMER", "You fell too far behind the stream; subscribe again to resync.") from None


class SharedResults:
    """One expanded result per group of identical subscribers and event.

    Subscribers of one organization that sent the same query text (the parser cache gives them the
    same document), see with the same scope and hold the same state get the very same object for an
    event: the batched loads below it (SQL) run once for the group, not once per subscriber, and so
    do its completion and its JSON (`schema.execution.share_completions`).
    """

    _REBUILD = object()

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.results: OrderedDict[Hashable, asyncio.Future] = OrderedDict()

    async def get(self, key: Hashable, build: Callable[[], Awaitable[Any]]) -> Any:
        while True:
            future = self.results.get(key)
            if future is None:
                break
            value = await asyncio.shield(future)
            if value is not self._REBUILD:
                return value
        future = asyncio.get_running_loop().create_future()
        self.results[key] = future
        while len(self.results) > self.size:
            self.results.popitem(last=False)
        try:
            value = share_completions(await build())
        except BaseException:
            self.results.pop(key, None)
            future.set_result(self._REBUILD)  # whoever waits builds it themselves
            raise
        future.set_result(value)
        return value


shared_results = SharedResults()


def _database(database_id: str | None) -> uuid.UUID | None:
    """The database a subscription watches; NOT_FOUND for an id that is not a database's."""
    if database_id is None:
        return None
    pk = pk_of(database_id, "Database")
    if pk is None:
        raise refusal(not_found("database"))
    return pk


OrganizationToWatch = Annotated[strawberry.ID, strawberry.argument(description="The organization to watch.")]
OnlyDatabase = Annotated[strawberry.ID | None, strawberry.argument(description="Only what happens in this database.")]


class _Same:
    """A key part equal only to itself, holding its object: while a key names a parsed operation, no
    other operation can come to live at its address (an `id()` alone could be reused after it is freed)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


class Group:
    """What makes subscribers' results interchangeable, and whose rights work them out.

    Shared only between equals: the same parsed operation and variables, the same organization,
    and the same rights in it. The shared result is worked out with a context that knows nothing of
    the viewer but their membership there (`RequestContext.narrowed_to`), so it cannot carry what
    one member of the group may see and another may not. A selection that reaches what depends on
    the person (`resolvers.common.permissions.PERSONAL_FIELDS`, e.g. `User.memberships` leading into their
    other organizations) and a role that sees only some of the cloud (a USER: own sessions, granted
    databases) make the group one person's.
    """

    def __init__(self, info: strawberry.Info, organization_id: uuid.UUID, *scope: Hashable) -> None:
        ctx = info.context
        raw = raw_info(info)
        role = ctx.role_in(organization_id)
        personal = selection_touches(info, PERSONAL_FIELDS)
        rights = ctx.permissions_in(organization_id)  # the role's, cut down by an API token's scopes
        sees_all = Permission.SEE_ALL_SESSIONS in rights and Permission.SEE_ALL_DATABASES in rights
        person = ctx.require_viewer().user_id if personal or not sees_all else None
        # as text: orjson's bytes keep a 4 KB buffer behind a few bytes, and every subscriber keeps its key
        variables = orjson.dumps(raw.variable_values or {}, option=orjson.OPT_SORT_KEYS, default=str).decode()
        self.key = (_Same(raw.operation), variables, organization_id, role, rights, person, *scope)
        self.context = ctx if personal else ctx.narrowed_to(organization_id, as_viewer=person is not None)
        self.info = info

    async def expand(self, value: Any) -> Any:
        self.context.forget_facts()  # who else is in sight is read again for each event, not kept for hours
        return await expand(self.info, value, self.context)


@strawberry.type(description="Live views over WebSocket (graphql-transport-ws or graphql-ws).")
class Subscription:
    @strawberry.subscription(
        description="The organization's ACTIVE and TERMINATING sessions: the whole list first, then again after "
        "every change. The first message is sent only once the subscription is live: every change committed "
        "after it arrives."
    )
    async def sessions(
        self, info: strawberry.Info, organization_id: OrganizationToWatch, database_id: OnlyDatabase = None
    ) -> AsyncGenerator[SessionListUpdate, None]:
        ctx = info.context
        org_id = await live.check_watched_organization(ctx, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        session_filter = live.SessionFilter(ctx, org_id, _database(database_id))
        group = Group(info, org_id, session_filter.only_user, session_filter.database_id, "list")
        async with ctx.event_hub.subscribe(org_id) as stream:
            latest = await _session_snapshot(group, org_id, session_filter, stream)
            yield latest
            async for event in _events(stream, ctx, org_id):
                if event.topic != SESSIONS:
                    continue
                model = session_of(event)
                if not session_filter.admits(model):
                    continue
                state, current = list_steps.after(latest, event, model)
                latest = await shared_results.get(
                    (*group.key, event.seq, state),
                    lambda: group.expand(_session_list(current, _session_event(event, model))),
                )
                yield latest

    @strawberry.subscription(description="Every session change in the organization, one event each, in order.")
    async def session_events(
        self, info: strawberry.Info, organization_id: OrganizationToWatch, database_id: OnlyDatabase = None
    ) -> AsyncGenerator[SessionEvent, None]:
        ctx = info.context
        org_id = await live.check_watched_organization(ctx, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        session_filter = live.SessionFilter(ctx, org_id, _database(database_id))
        group = Group(info, org_id, session_filter.only_user, session_filter.database_id, "events")
        async with ctx.event_hub.subscribe(org_id) as stream:
            async for event in _events(stream, ctx, org_id):
                if event.topic != SESSIONS:
                    continue
                model = session_of(event)
                if session_filter.admits(model):
                    yield await shared_results.get(
                        (*group.key, event.seq), lambda: group.expand(_session_event(event, model))
                    )

    @strawberry.subscription(description="Every change of an update run in the organization: status and progress.")
    async def update_runs(
        self, info: strawberry.Info, organization_id: OrganizationToWatch, database_id: OnlyDatabase = None
    ) -> AsyncGenerator[UpdateRun, None]:
        ctx = info.context
        org_id = await live.check_watched_organization(ctx, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        run_filter = live.RunFilter(ctx, org_id, _database(database_id))
        group = Group(info, org_id, run_filter.database_id, "runs")
        async with ctx.event_hub.subscribe(org_id) as stream:
            async for event in _events(stream, ctx, org_id):
                if event.topic != UPDATES:
                    continue
                model = run_from_payload(org_id, event.payload)
                if run_filter.admits(model):
                    yield await shared_results.get(
                        (*group.key, event.seq), lambda: group.expand(UpdateRun.from_model(model))
                    )

    @strawberry.subscription(
        description="The organization's data as the provider's records change it (balance, documents, products, "
        "cloud): one message per committed change, naming the parts that changed, with the organization to "
        "select them from. Nothing is sent on subscribing: query first, then follow."
    )
    async def organization_data(
        self, info: strawberry.Info, organization_id: OrganizationToWatch
    ) -> AsyncGenerator[OrganizationDataChange, None]:
        ctx = info.context
        org_id = await live.check_watched_organization(ctx, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        group = Group(info, org_id, "data")
        async with ctx.event_hub.subscribe(org_id) as stream:
            async for event in _events(stream, ctx, org_id):
                if event.topic != DATA:
                    continue
                yield await shared_results.get((*group.key, event.seq), lambda: _data_change(group, org_id, event))


    @strawberry.subscription(
        description="The organization's support tickets as they change (written, commented, answered, closed, a file "
        "attached): one message per change, with the ticket as it is now. OWNER and ADMIN receive every ticket's, "
        "other roles their own tickets'. Nothing is sent on subscribing: query `tickets` first, then follow."
    )
    async def tickets(
        self, info: strawberry.Info, organization_id: OrganizationToWatch
    ) -> AsyncGenerator[TicketChange, None]:
        ctx = info.context
        org_id = await live.check_watched_organization(ctx, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        ticket_filter = ticket_live.TicketFilter(ctx, org_id)
        group = Group(info, org_id, ticket_filter.only_user, "tickets")
        async with ctx.event_hub.subscribe(org_id) as stream:
            async for event in _events(stream, ctx, org_id):
                if event.topic != ticket_resolvers.TICKETS or not ticket_filter.admits(org_id, event.payload):
                    continue
                yield await shared_results.get((*group.key, event.seq), lambda: _ticket_change(group, event))


async def _ticket_change(group: Group, event: OrganizationEvent) -> TicketChange:
    ticket = await ticket_live.ticket_for_event(uuid.UUID(event.payload["ticket_id"]))
    if ticket is None:  # deleted with its organization meanwhile
        raise graphql_error("NOT_FOUND", "This ticket no longer exists.")
    return await group.expand(TicketChange(kind=TicketChangeKind[event.kind], ticket=Ticket.from_model(ticket), at=event.created_at))

async def _data_change(group: Group, org_id: uuid.UUID, event: OrganizationEvent) -> OrganizationDataChange:
    organization = await organization_resolvers.organization_by_id(group.context, org_id)
    if organization is None:  # the membership ended between the change and this message
        raise graphql_error("FORBIDDEN", "Your access to this organization changed: subscribe again.")
    return await group.expand(OrganizationDataChange(
        areas=[Area(area) for area in event.payload.get("areas", ())],
        organization=Organization.from_model(organization), at=event.created_at,
    ))


async def _session_snapshot(
    group: Group, org_id: uuid.UUID, session_filter: live.SessionFilter, stream: EventStream
) -> SessionListUpdate:
    """The first message. Subscribers of a group that read the same event number and list get the
    same one: an idle subscriber keeps one copy per group alive, not its own (graphql-core holds on
    to the last message of every subscription)."""
    seq, sessions = await live.live_sessions_snapshot(org_id, session_filter)
    stream.after(seq)
    return await shared_results.get(
        (*group.key, "snapshot", seq, live.list_state(sessions)),
        lambda: group.expand(_session_list({s.id: s for s in sessions}, None)),
    )


class ListSteps:
    """What a live list becomes after an event (the rule: `resolvers.cloud.live.list_after`): (its state,
    its sessions by id), worked out once per message and event for all the subscribers holding that
    very message, not once each."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.steps: OrderedDict[tuple[int, int], tuple[SessionListUpdate, frozenset, dict]] = OrderedDict()

    def after(self, latest: SessionListUpdate, event: OrganizationEvent, model: Any) -> tuple[frozenset, dict]:
        key = (id(latest), event.seq)
        kept = self.steps.get(key)
        if kept is not None and kept[0] is latest:  # the entry holds `latest`: its id is not reused meanwhile
            return kept[1], kept[2]
        current = live.list_after({s.model.id: s.model for s in latest.sessions}, model)
        state = live.list_state(current.values())
        self.steps[key] = (latest, state, current)
        while len(self.steps) > self.size:
            self.steps.popitem(last=False)
        return state, current


list_steps = ListSteps()


def _session_list(current: dict, event: SessionEvent | None) -> SessionListUpdate:
    return SessionListUpdate(sessions=[Session.from_model(s) for s in newest_first(current.values())], event=event)


def _session_event(event: OrganizationEvent, model) -> SessionEvent:
    return SessionEvent(kind=SessionEventKind[event.kind], session=Session.from_model(model), at=event.created_at)



