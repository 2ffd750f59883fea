"""Per-request state: who is calling, their memberships, and what the batch loader filled in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tortoise.expressions import Q

from kabinet.errors import signed_out, unauthenticated
from kabinet.events import PendingAnnouncements
from kabinet.permissions import Permission, role_may
from kabinet.settings import Settings
from kabinet.sign_ins import EndedLogins
from models.organizations import DatabaseGrant, Membership, Role
from models.select import select


@dataclass
class Viewer:
    """The signed-in user, as the access token names them."""

    user_id: uuid.UUID
    login_id: uuid.UUID
    expires_at: datetime | None = None  # of the access token: a subscription ends then


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
    ended_logins: EndedLogins = field(default_factory=EndedLogins)  # this process's, for every request
    # Loaded once per request, on first need.
    _memberships: dict[uuid.UUID, Membership] | None = field(default=None, repr=False)
    _grants: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict, repr=False)
    _memberships_loading: asyncio.Future | None = field(default=None, repr=False)
    _after_commit: list[Callable[[], Awaitable[Any]]] = field(default_factory=list, repr=False)
    _announcements: PendingAnnouncements = field(default_factory=PendingAnnouncements, repr=False)

    def require_viewer(self) -> Viewer:
        """The signed-in viewer; UNAUTHENTICATED without one, once the token has expired or once its
        sign-in has ended (a WebSocket outlives the token it was opened with)."""
        viewer = self.viewer
        if viewer is None or (viewer.expires_at is not None and viewer.expires_at <= datetime.now(timezone.utc)):
            raise unauthenticated()
        if viewer.login_id in self.ended_logins:
            raise signed_out()
        return viewer

    def for_operation(self) -> RequestContext:
        """A copy for one operation on a WebSocket, whose operations share its connection's context:
        memberships read afresh (rights follow changes at once) and after-commit actions of its own."""
        return RequestContext(
            self.settings, self.viewer, self.request_id, self.client_address, self.request, self.connection_params,
            self.broadcast, self.event_hub, self.ended_logins,
        )

    async def memberships(self) -> dict[uuid.UUID, Membership]:
        """The viewer's memberships by organization id: loaded once, even by concurrent root fields."""
        if self._memberships is None:
            if self._memberships_loading is None:
                self._memberships_loading = asyncio.ensure_future(self._load_memberships())
            try:
                await self._memberships_loading
            finally:
                self._memberships_loading = None
        return self._memberships

    async def _load_memberships(self) -> None:
        viewer = self.require_viewer()
        rows = await select(Membership, Q(user_id=viewer.user_id))
        grants: dict[uuid.UUID, set[uuid.UUID]] = {}
        user_memberships = {m.id: m.organization_id for m in rows if m.role == Role.USER}
        if user_memberships:
            for grant in await select(DatabaseGrant, Q(membership_id__in=list(user_memberships))):
                grants.setdefault(user_memberships[grant.membership_id], set()).add(grant.database_id)
        self._memberships, self._grants = {m.organization_id: m for m in rows}, grants

    def role_in(self, organization_id: uuid.UUID) -> Role | None:
        """The viewer's role (memberships must have been loaded)."""
        assert self._memberships is not None, "await ctx.memberships() first"
        membership = self._memberships.get(organization_id)
        return membership.role if membership else None

    def may(self, organization_id: uuid.UUID, permission: Permission) -> bool:
        return role_may(self.role_in(organization_id), permission)

    def granted_databases(self, organization_id: uuid.UUID) -> set[uuid.UUID]:
        return self._grants.get(organization_id, set())

    def forget_memberships(self) -> None:
        """Drop the cache (a long-lived WebSocket re-reads it per operation)."""
        self._memberships = None
        self._grants = {}

    def after_commit(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run `action` once the mutation's transaction has committed (e.g. publish an event)."""
        self._after_commit.append(action)

    async def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()

    def discard_after_commit(self) -> None:
        self._after_commit = []
        self._announcements = PendingAnnouncements()

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        """Log an event in the mutation's transaction; it is announced once the transaction commits."""
        if not self._announcements.latest:
            self.after_commit(lambda: self._announcements.announce(self.broadcast))
        return await self._announcements.record(organization_id, topic, kind, payload)
