"""Ended sign-ins: every access token of a sign-in session (a login) stops working at once.

An access token names its login (`sid`) and is verified by its signature alone, so logout, a
password reset or a reused refresh token, which revoke the login's refresh tokens in the
database, would leave its access tokens working until they expire. Each process therefore keeps
the logins ended within the access token lifetime in memory, and every HTTP request and every
WebSocket operation looks its token's login up there: a dict lookup, no query.

The process that ends a login notes it after the commit and tells the others on the broker's
`resolvers.identity.sign_ins` channel; a process reads the recently ended ones from the database when it
starts, and again when its broker connection comes back. A notice cannot reach everyone: the
in-process broker (`memory://`) reaches no other process (the CLI's `kabinet staff disable`), and
Redis loses what is published while a subscriber is away. So every process also reads, every few
seconds, the logins ended since its last read: the broker is the fast path, this poll the floor.
Listeners (the GraphQL view) close the login's open WebSockets, once per login whichever path told.

An integrator's API token is ended the same way: its id is its requests' login id
(resolvers/identity/api_tokens.py), its revocation is noted and announced here, and the poll reads
revoked tokens beside revoked refresh tokens (an HTTP request looks the token up anyway: refused at once).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import orjson

from events.broadcaster_internals import backend_of
from foundation.clock import timestamp
from events.broker import until_listening
from models.identity import RefreshToken
from models.program_tokens import ProgramToken, TokenKind
from resolvers.identity.tokens import REVOCATION_LATE_SECONDS

log = logging.getLogger("resolvers.identity.sign_ins")
SIGN_INS_CHANNEL = "resolvers.identity.sign_ins"
PRUNE_SECONDS = 60.0
POLL_SECONDS = 2.0
# A poll reads from this long before its last read (resolvers/identity/tokens.py says why); the rows are few
# (the logins ended in these minutes), the index on revoked_at finds them.
LATE_SECONDS = REVOCATION_LATE_SECONDS


class EndedLogins:
    """Logins ended less than `keep_seconds` (the access token lifetime, and a margin) ago."""

    def __init__(self, keep_seconds: float = 16 * 60, poll_seconds: float = POLL_SECONDS) -> None:
        self.keep_seconds = keep_seconds
        self.poll_seconds = poll_seconds
        self.ended: dict[uuid.UUID, float] = {}  # login id → when its last access token has surely expired
        self.listeners: list[Callable[[uuid.UUID], Any]] = []
        self.broadcast: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._next_prune = 0.0
        self._last_read: float | None = None  # when the last read of the database began (Unix time)

    def __contains__(self, login_id: uuid.UUID) -> bool:
        return login_id in self.ended

    def end(self, login_ids: Iterable[uuid.UUID], at: float | None = None) -> None:
        """Note logins as ended in this process (`at`: when, as a Unix time; now by default)."""
        now = timestamp()
        until = (now if at is None else at) + self.keep_seconds
        if until <= now:
            return
        for login_id in login_ids:
            known = self.ended.get(login_id)
            self.ended[login_id] = until if known is None else max(known, until)
            if known is None:
                for listener in self.listeners:
                    listener(login_id)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_SECONDS
            self.ended = {k: v for k, v in self.ended.items() if v > now}

    async def end_everywhere(self, login_ids: list[uuid.UUID]) -> None:
        """Note logins as ended here and tell every other process (once the revocation has committed)."""
        self.end(login_ids)
        if self.broadcast is None or not login_ids:
            return
        try:
            await self.broadcast.publish(SIGN_INS_CHANNEL, orjson.dumps([str(i) for i in login_ids]).decode())
        except Exception:  # noqa: BLE001 — the others read the database when their broker connection returns
            log.warning("could not announce %d ended login(s) on the broker", len(login_ids))

    async def load(self) -> None:
        """The logins whose refresh tokens were revoked within the access token lifetime."""
        await self._read_since(timestamp() - self.keep_seconds)

    async def catch_up(self) -> None:
        """The logins ended since the last read (from LATE_SECONDS before it), whatever the broker said."""
        now = timestamp()
        since = now - self.keep_seconds  # nothing read yet: the whole lifetime
        if self._last_read is not None:  # min: a clock set back must not leave a stretch unread
            since = max(since, min(self._last_read, now) - LATE_SECONDS)
        await self._read_since(since)

    async def _read_since(self, since: float) -> None:
        began = timestamp()
        rows = await RefreshToken.filter(revoked_at__gt=datetime.fromtimestamp(since, timezone.utc)).values_list(
            "login_id", "revoked_at"
        )
        rows += await ProgramToken.filter(
            kind=TokenKind.INTEGRATOR, revoked_at__gt=datetime.fromtimestamp(since, timezone.utc)
        ).values_list("id", "revoked_at")
        for login_id, revoked_at in rows:
            self.end([login_id], revoked_at.timestamp())
        self._last_read = began

    async def start(self, broadcast: Any) -> None:
        """Listen for logins ended elsewhere, then read those ended before (nothing falls in between)."""
        self.broadcast = broadcast
        ready = asyncio.Event()
        listener = asyncio.create_task(self._listen(ready))
        self._keep(listener)
        await until_listening(listener, ready)
        backend = backend_of(broadcast)
        if isinstance(getattr(backend, "on_reconnect", None), list):
            backend.on_reconnect.append(self._reload)
        try:
            await self.load()
        except Exception:  # noqa: BLE001 — an unmigrated or unreachable database: serve (not ready), read it later
            log.warning("could not read the ended logins at start; the poll reads them once it can")
        self._keep(asyncio.create_task(self._poll()))

    async def _poll(self) -> None:
        """Every poll_seconds, catch up with the database (the logins no notice brought)."""
        failing = False
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.catch_up()
            except Exception:  # noqa: BLE001 — the database is away: the next poll reads from the last good read on
                if not failing:
                    log.warning("could not read the ended logins; trying every %s s", self.poll_seconds, exc_info=True)
                failing = True
                continue
            if failing:
                log.info("reading the ended logins again")
            failing = False

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self.broadcast.subscribe(SIGN_INS_CHANNEL) as notices:
            ready.set()
            async for notice in notices:
                try:
                    login_ids = [uuid.UUID(i) for i in orjson.loads(notice.message)]
                except (ValueError, TypeError, orjson.JSONDecodeError):
                    continue
                self.end(login_ids)

    def _reload(self) -> None:
        async def reload() -> None:
            try:
                await self.load()
            except Exception:  # noqa: BLE001 — the database is away too: the next reconnection tries again
                log.warning("could not read the ended logins after the broker came back", exc_info=True)

        self._keep(asyncio.create_task(reload()))

    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

