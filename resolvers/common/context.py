"""Per-request state: who is calling, their memberships, and what the batch loader filled in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tortoise.expressions import Q

from foundation.clock import utcnow
from resolvers.common.errors import password_change_first, signed_out, unauthenticated
from events.log import PendingAnnouncements
from resolvers.common.permissions import Permission, TokenGrant, has_staff_rights, permissions_of
from foundation.settings import Settings
from models.identity import User
from models.organizations import DatabaseGrant, JoinRequest, Membership, Role
from models.select import select

if TYPE_CHECKING:
    from resolvers.identity.sign_ins import EndedLogins  # the composition root gives each context its process's


NOBODY = uuid.UUID(int=0)  # the viewer of a narrowed context: matches no user


@dataclass
class Viewer:
    """The signed-in user, as the access token names them; or the member who made an integrator's API
    token, as that token (`grant`) cuts them down: one organization, its scopes (login_id is then the
    token's id, so that revoking it ends its requests as a sign-out ends a login's)."""

    user_id: uuid.UUID
    login_id: uuid.UUID
    expires_at: datetime | None = None  # of the access token: a subscription ends then
    # Signed in with a password someone else chose: refused everything but changing it (resolvers/organizations/people.py).
    must_change_password: bool = False
    grant: TokenGrant | None = None


@dataclass
class RequestContext:
    settings: Settings
    viewer: Viewer | None = None
    request_id: str = ""
    client_address: str | None = None
    request: Any = None
    connection_params: Any = None  # a WebSocket's first-message payload
    broadcast: Any = None  # the broker, to announce events after a commit
    event_hub: Any = None  # this process's EventHub, for subscriptions
    ended_logins: EndedLogins = field(default_factory=set)  # this process's (resolvers/identity/sign_ins.py), for every request
    # Loaded once per request, on first need.
    _memberships: dict[uuid.UUID, Membership] | None = field(default=None, repr=False)
    _grants: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict, repr=False)
    _memberships_loading: asyncio.Future | None = field(default=None, repr=False)
    _after_commit: list[Callable[[], Awaitable[Any]]] = field(default_factory=list, repr=False)
    # The events this request's change recorded: the unit of work announces them once it commits.
    announcements: PendingAnnouncements = field(default_factory=PendingAnnouncements, repr=False)
    # Facts some type rules need (resolvers.common.permissions), loaded for a batch of objects on first need.
    _users_in_sight: dict[uuid.UUID, bool] = field(default_factory=dict, repr=False)
    _is_staff: bool | None = field(default=None, repr=False)

    def require_viewer(self, *, password_change: bool = False) -> Viewer:
        """The signed-in viewer; UNAUTHENTICATED without one, once the token has expired or once its
        sign-in has ended (a WebSocket outlives the token it was opened with). FORBIDDEN while the
        viewer must replace a password someone else chose, but for that change (`password_change`)."""
        viewer = self.viewer
        if viewer is None or (viewer.expires_at is not None and viewer.expires_at <= utcnow()):
            raise unauthenticated()
        if viewer.login_id in self.ended_logins:
            raise signed_out()
        if viewer.must_change_password and not password_change:
            raise password_change_first()
        return viewer

    def signed_in_viewer(self) -> Viewer | None:
        """The viewer `require_viewer` would accept, or None: for rules that treat an account's own
        request differently from anyone else's without refusing the others."""
        viewer = self.viewer
        if viewer is None or (viewer.expires_at is not None and viewer.expires_at <= utcnow()):
            return None
        return None if viewer.login_id in self.ended_logins or viewer.must_change_password else viewer

    def for_operation(self) -> RequestContext:
        """A copy for one operation on a WebSocket, whose operations share its connection's context:
        memberships read afresh (rights follow changes at once), and what an operation keeps (its
        memberships, facts about users, after-commit actions) never changed under it by another
        operation of the same socket running beside it."""
        return RequestContext(
            self.settings, self.viewer, self.request_id, self.client_address, self.request, self.connection_params,
            self.broadcast, self.event_hub, self.ended_logins,
        )

    def token_bound(self) -> bool:
        """Does an integrator's API token send this request (resolvers/common/permissions.py TokenGrant)?"""
        return self.viewer is not None and self.viewer.grant is not None

    async def memberships(self) -> dict[uuid.UUID, Membership]:
        """The viewer's memberships by organization id: loaded once, even by concurrent root fields.

        Each caller gets what the load it waited for read, never None, even when another caller
        forgot the memberships meanwhile; a caller that goes away does not cancel the others' load."""
        memberships = self._memberships
        if memberships is not None:
            return memberships
        loading = self._memberships_loading
        if loading is None:
            loading = self._memberships_loading = asyncio.ensure_future(self._load_memberships())
        try:
            return await asyncio.shield(loading)
        finally:
            if self._memberships_loading is loading and loading.done():
                self._memberships_loading = None

    async def _load_memberships(self) -> dict[uuid.UUID, Membership]:
        viewer = self.require_viewer()
        where = Q(user_id=viewer.user_id)
        if viewer.grant is not None:  # a token knows its one organization, nothing of the creator's others
            where &= Q(organization_id=viewer.grant.organization_id)
        rows = await select(Membership, where)
        grants: dict[uuid.UUID, set[uuid.UUID]] = {}
        user_memberships = {m.id: m.organization_id for m in rows if m.role == Role.USER}
        if user_memberships:
            for grant in await select(DatabaseGrant, Q(membership_id__in=list(user_memberships))):
                grants.setdefault(user_memberships[grant.membership_id], set()).add(grant.database_id)
        memberships = {m.organization_id: m for m in rows}
        if self._memberships is None or asyncio.current_task() is self._memberships_loading:
            self._memberships, self._grants = memberships, grants
        return memberships

    def role_in(self, organization_id: uuid.UUID) -> Role | None:
        """The viewer's role (memberships must have been loaded)."""
        assert self._memberships is not None, "await ctx.memberships() first"
        membership = self._memberships.get(organization_id)
        return membership.role if membership else None

    def permissions_in(self, organization_id: uuid.UUID) -> frozenset[Permission]:
        """What the viewer may do in the organization: their role's permissions, and for an API token
        only those its scopes grant (memberships must have been loaded). Every rule asks this."""
        return permissions_of(self.role_in(organization_id), self.viewer.grant if self.viewer else None, organization_id)

    def may(self, organization_id: uuid.UUID, permission: Permission) -> bool:
        return permission in self.permissions_in(organization_id)

    def granted_databases(self, organization_id: uuid.UUID) -> set[uuid.UUID]:
        return self._grants.get(organization_id, set())

    def forget_memberships(self) -> None:
        """Drop the cache (e.g. after a mutation changed the caller's own role); a load under way
        answers those who asked before, not those who ask after."""
        self._memberships = None
        self._memberships_loading = None
        self._grants = {}
        self._is_staff = None
        self.forget_facts()

    def forget_facts(self) -> None:
        """Drop what the type rules learnt of other users (who is in sight): it changes as people join and leave."""
        self._users_in_sight = {}

    def narrowed_to(self, organization_id: uuid.UUID, *, as_viewer: bool) -> RequestContext:
        """A context that knows only the viewer's membership in one organization (and, unless
        `as_viewer`, not who the viewer is): what is worked out with it is the same for every viewer
        with that role there, so a group of such subscribers may share it."""
        assert self._memberships is not None, "await ctx.memberships() first"
        viewer = self.viewer if as_viewer else Viewer(
            NOBODY, NOBODY, self.viewer.expires_at if self.viewer else None, grant=self.viewer.grant if self.viewer else None
        )
        narrowed = RequestContext(
            settings=self.settings, viewer=viewer, request_id=self.request_id, broadcast=self.broadcast,
            event_hub=self.event_hub, ended_logins=self.ended_logins,
        )
        membership = self._memberships.get(organization_id)
        narrowed._memberships = {organization_id: membership} if membership is not None else {}
        if organization_id in self._grants:
            narrowed._grants = {organization_id: self._grants[organization_id]}
        narrowed._is_staff = False if not as_viewer else self._is_staff
        return narrowed

    async def prepare_users_in_sight(self, user_ids: set[uuid.UUID]) -> None:
        """Find out which of these users the viewer may see (resolvers.common.permissions `_user`): one
        statement for those not known yet in this request."""
        unknown = {pk for pk in user_ids if pk not in self._users_in_sight}
        if not unknown:
            return
        viewer = self.viewer
        if viewer is not None and viewer.user_id in unknown:
            self._users_in_sight[viewer.user_id] = True
            unknown.discard(viewer.user_id)
        if not unknown:
            return
        if viewer is None:
            self._users_in_sight.update(dict.fromkeys(unknown, False))
            return
        await self.memberships()
        if await self.prepare_staff_flag():
            self._users_in_sight.update(dict.fromkeys(unknown, True))
            return
        seeing = [org for org in self._memberships if self.may(org, Permission.SEE_MEMBERS)]
        deciding = [org for org in self._memberships if self.may(org, Permission.MANAGE_MEMBERS)]
        seen: set[uuid.UUID] = set()
        if seeing:
            rows = await select(Membership, Q(user_id__in=list(unknown), organization_id__in=seeing))
            seen.update(row.user_id for row in rows)
        if deciding and unknown - seen:
            rows = await select(JoinRequest, Q(user_id__in=list(unknown - seen), organization_id__in=deciding))
            seen.update(row.user_id for row in rows)
        for pk in unknown:
            self._users_in_sight[pk] = pk in seen

    def user_in_sight(self, user_id: uuid.UUID) -> bool:
        return self._users_in_sight.get(user_id, False)

    async def prepare_staff_flag(self) -> bool:
        """Whether the viewer is the provider's staff (read once per request, only when needed)."""
        if self._is_staff is None:
            viewer = self.viewer
            if viewer is not None and viewer.grant is not None:  # a token never carries the staff's rights
                self._is_staff = False
                return False
            rows = await select(User, Q(id=viewer.user_id)) if viewer is not None else []
            self._is_staff = bool(rows) and has_staff_rights(rows[0])
        return self._is_staff

    def viewer_is_staff(self) -> bool:
        return bool(self._is_staff)

    def after_commit(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run `action` once the mutation's transaction has committed (e.g. publish an event)."""
        self._after_commit.append(action)

    async def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()

    def discard_after_commit(self) -> None:
        self._after_commit = []
        self.announcements = PendingAnnouncements()

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        """Log an event in the mutation's transaction; the unit of work announces it once that commits."""
        return await self.announcements.record(organization_id, topic, kind, payload)


@dataclass
class SystemActor:
    """A change no person makes: a worker or the cluster agent, passed where a domain function takes an
    actor. It has no viewer (audit entries name no actor and no address); the events it records go to
    `announcements`, which its caller announces once its own transaction has committed."""

    name: str  # "cluster worker", "update worker", "cluster agent": for logs and readers
    announcements: PendingAnnouncements = field(default_factory=PendingAnnouncements)
    viewer: None = None
    client_address: None = None

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        """Log an event in the caller's transaction; announced by the caller after the commit."""
        return await self.announcements.record(organization_id, topic, kind, payload)


@runtime_checkable
class Actor(Protocol):
    """Who changes something, as a domain function taking an actor sees it: a signed-in viewer
    (RequestContext), the system itself (SystemActor), or the provider's program or staff
    (resolvers/provider/records.py ProviderActor). The audit entry names its viewer and address
    (none for the system), and the change's events are recorded through it, to be announced once the
    transaction commits (by the actor's owner: the mutation, the worker, the API)."""

    @property
    def viewer(self) -> Viewer | None: ...

    @property
    def client_address(self) -> str | None: ...

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int: ...
