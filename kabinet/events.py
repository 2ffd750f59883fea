"""Events: their topics and kinds, how a change records one, and how subscribers receive them.

Write side: `record_event` adds a numbered row to the organization's event log in the caller's
transaction (numbers are handed out under a row lock, so they follow commit order); after the
commit, `announce` tells every process through the broker. Read side: each process keeps one
`EventHub`; it reads an organization's new rows once per notice (and every few seconds anyway,
in case a notice was lost) and hands them, in order, to every local subscriber's bounded queue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from broadcaster import Broadcast

from kabinet import clock
from kabinet.pubsub import EVENTS_CHANNEL, until_listening
from models.cloud import Session
from models.events import OrganizationEvent
from models.updates import UpdateRun

log = logging.getLogger("kabinet.events")

SESSIONS = "sessions"  # kinds: STARTED, TERMINATING, ENDED, TERMINATED
UPDATES = "updates"  # kind: CHANGED (status or progress)
ACCESS = "access"  # kind: REVOKED (a membership ended): its holder's subscriptions end

SUBSCRIBER_QUEUE_SIZE = 1000
POLL_SECONDS = 2.0


# ---------------------------------------------------------------- write side

async def record_event(organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
    """Append an event to the organization's log inside the current transaction; its number."""
    db = OrganizationEvent._meta.db
    placeholder = "?" if db.capabilities.dialect == "sqlite" else "$1"
    rows = await db.execute_query_dict(
        f"INSERT INTO event_counter (organization_id, last_seq) VALUES ({placeholder}, 1) "
        "ON CONFLICT (organization_id) DO UPDATE SET last_seq = event_counter.last_seq + 1 RETURNING last_seq",
        [organization_id if placeholder == "$1" else str(organization_id)],
    )
    seq = int(rows[0]["last_seq"])
    await OrganizationEvent.create(organization_id=organization_id, seq=seq, topic=topic, kind=kind, payload=payload)
    return seq


async def announce(broadcast: Broadcast, organization_id: uuid.UUID, seq: int) -> None:
    """Tell every process that the organization's log has grown (after the commit)."""
    try:
        await broadcast.publish(EVENTS_CHANNEL, orjson.dumps({"org": str(organization_id), "seq": seq}).decode())
    except Exception:  # noqa: BLE001 — the hubs' polling picks the event up anyway
        log.warning("could not announce event %s of %s; subscribers will poll it", seq, organization_id)


async def latest_seq(organization_id: uuid.UUID) -> int:
    row = await OrganizationEvent.filter(organization_id=organization_id).order_by("-seq").first().values("seq")
    return row["seq"] if row else 0


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def session_payload(session: Session) -> dict[str, Any]:
    """The session as it is after the change: what a subscriber shows, with no further query."""
    return {
        "id": str(session.id), "database_id": str(session.database_id) if session.database_id else None,
        "user_id": str(session.user_id) if session.user_id else None, "user_name": session.user_name,
        "client_kind": session.client_kind.value, "host": session.host, "started_at": _time(session.started_at),
        "ended_at": _time(session.ended_at), "status": session.status.value,
    }


def session_of(event: OrganizationEvent) -> Session:
    """The session a sessions event carries, read from its payload once for all its subscribers."""
    session = event.__dict__.get("_session")
    if session is None:
        session = event.__dict__["_session"] = session_from_payload(event.organization_id, event.payload)
    return session


def session_from_payload(organization_id: uuid.UUID, payload: dict[str, Any]) -> Session:
    return Session(
        id=uuid.UUID(payload["id"]), organization_id=organization_id,
        database_id=uuid.UUID(payload["database_id"]) if payload["database_id"] else None,
        user_id=uuid.UUID(payload["user_id"]) if payload["user_id"] else None,
        user_name=payload["user_name"], client_kind=payload["client_kind"], host=payload["host"],
        started_at=dt.datetime.fromisoformat(payload["started_at"]),
        ended_at=dt.datetime.fromisoformat(payload["ended_at"]) if payload["ended_at"] else None,
        status=payload["status"],
    )


def run_payload(run: UpdateRun) -> dict[str, Any]:
    return {
        "id": str(run.id), "database_id": str(run.database_id), "release_id": str(run.release_id) if run.release_id else None,
        "target_version": run.target_version, "status": run.status.value, "scheduled_for": _time(run.scheduled_for),
        "started_at": _time(run.started_at), "finished_at": _time(run.finished_at), "progress": run.progress,
        "message": run.message,
    }


def run_from_payload(organization_id: uuid.UUID, payload: dict[str, Any]) -> UpdateRun:
    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(payload[key]) if payload[key] else None

    return UpdateRun(
        id=uuid.UUID(payload["id"]), organization_id=organization_id, database_id=uuid.UUID(payload["database_id"]),
        release_id=uuid.UUID(payload["release_id"]) if payload["release_id"] else None,
        target_version=payload["target_version"], status=payload["status"], scheduled_for=when("scheduled_for"),
        started_at=when("started_at"), finished_at=when("finished_at"), progress=payload["progress"],
        message=payload["message"],
    )


@dataclass
class PendingAnnouncements:
    """Events recorded in a transaction, to announce once it has committed."""

    latest: dict[uuid.UUID, int] = field(default_factory=dict)

    async def record(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        seq = await record_event(organization_id, topic, kind, payload)
        self.latest[organization_id] = max(seq, self.latest.get(organization_id, 0))
        return seq

    async def announce(self, broadcast: Broadcast) -> None:
        latest, self.latest = self.latest, {}
        for organization_id, seq in latest.items():
            await announce(broadcast, organization_id, seq)


# ---------------------------------------------------------------- read side

class SubscriberTooSlow(Exception):
    """The subscriber's queue filled up: it is told and disconnected rather than buffered forever."""


@dataclass
class _Subscriber:
    queue: _Inbox
    overflowed: bool = False


class _Inbox:
    """A bounded first-in first-out queue with one reader: what asyncio.Queue does here, in about
    200 bytes instead of 3 KB (a Queue holds three deques and an Event); thousands of idle
    subscribers each hold one."""

    __slots__ = ("items", "maxsize", "waiter")

    def __init__(self, maxsize: int) -> None:
        self.items: list[Any] = []
        self.maxsize = maxsize
        self.waiter: asyncio.Future | None = None

    def qsize(self) -> int:
        return len(self.items)

    def put_nowait(self, item: Any) -> None:
        if len(self.items) >= self.maxsize:
            raise asyncio.QueueFull
        self.items.append(item)
        self._wake()

    def end(self) -> None:
        """The reader gets None (the end) after what is queued, however full the queue is."""
        self.items.append(None)
        self._wake()

    def close(self) -> None:
        """Drop what is queued; the reader gets None (the end) next."""
        self.items = [None]
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)


@dataclass
class _OrganizationFeed:
    organization_id: uuid.UUID
    last_read: int
    subscribers: set[int] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class EventHub:
    """One per process: reads each watched organization's log once and fans it out locally."""

    def __init__(
        self, broadcast: Broadcast, poll_seconds: float = POLL_SECONDS, queue_size: int = SUBSCRIBER_QUEUE_SIZE
    ) -> None:
        self.broadcast = broadcast
        self.poll_seconds = poll_seconds
        self.queue_size = queue_size  # events a subscriber may fall behind by before it is cut off
        self.feeds: dict[uuid.UUID, _OrganizationFeed] = {}
        self.subscribers: dict[int, _Subscriber] = {}
        self.listener: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        ready = asyncio.Event()
        self.listener = asyncio.create_task(self._listen(ready))
        await until_listening(self.listener, ready)

    async def stop(self) -> None:
        tasks = [t for t in [self.listener, *(f.task for f in self.feeds.values())] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subscriber in self.subscribers.values():
            subscriber.queue.end()

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self.broadcast.subscribe(EVENTS_CHANNEL) as notices:
            ready.set()
            async for notice in notices:
                try:
                    org = uuid.UUID(orjson.loads(notice.message)["org"])
                except (ValueError, KeyError, TypeError):
                    continue
                feed = self.feeds.get(org)
                if feed is not None:
                    feed.wake.set()

    @asynccontextmanager
    async def subscribe(self, organization_id: uuid.UUID) -> AsyncIterator[EventStream]:
        """A stream of the organization's events committed from (at the latest) now on, in order."""
        subscriber = _Subscriber(_Inbox(self.queue_size))
        key = id(subscriber)
        async with self.lock:
            feed = self.feeds.get(organization_id)
            if feed is None:
                feed = _OrganizationFeed(organization_id, await latest_seq(organization_id))
                feed.task = asyncio.create_task(self._follow(feed))
                self.feeds[organization_id] = feed
            feed.subscribers.add(key)
            self.subscribers[key] = subscriber
            start = feed.last_read
        stream = EventStream(subscriber, start)
        try:
            yield stream
        finally:
            stream.close()
            async with self.lock:
                feed.subscribers.discard(key)
                self.subscribers.pop(key, None)
                if not feed.subscribers and self.feeds.get(organization_id) is feed:
                    del self.feeds[organization_id]
                    if feed.task is not None:
                        feed.task.cancel()

    async def _follow(self, feed: _OrganizationFeed) -> None:
        while True:
            try:
                await asyncio.wait_for(feed.wake.wait(), timeout=self.poll_seconds)
            except asyncio.TimeoutError:
                pass
            feed.wake.clear()
            try:
                events = await OrganizationEvent.filter(
                    organization_id=feed.organization_id, seq__gt=feed.last_read
                ).order_by("seq").limit(500)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 — the database is away: try again at the next tick
                log.warning("could not read events of %s", feed.organization_id, exc_info=True)
                continue
            for event in events:
                feed.last_read = event.seq
                for key in list(feed.subscribers):
                    subscriber = self.subscribers.get(key)
                    if subscriber is None or subscriber.overflowed:
                        continue
                    try:
                        subscriber.queue.put_nowait(event)
                    except asyncio.QueueFull:
                        subscriber.overflowed = True
                        subscriber.queue.close()
            if len(events) == 500:
                feed.wake.set()


class StreamExpired(Exception):
    """The time set with `EventStream.end_at` has come."""


_EXPIRED = object()


class EventStream:
    """What a subscription reads: events in order, each once; `after(seq)` skips what a snapshot holds."""

    def __init__(self, subscriber: _Subscriber, start: int) -> None:
        self._subscriber = subscriber
        self.start = start
        self._skip_to = start
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    def after(self, seq: int) -> None:
        """Deliver only events numbered above `seq` (those up to it are in the caller's snapshot)."""
        self._skip_to = max(self._skip_to, seq)

    def end_at(self, when: dt.datetime) -> None:
        """Raise StreamExpired at `when` (a token's expiry): one timer for the stream, not one per event."""
        delay = (when - clock.utcnow()).total_seconds()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._expire)

    def _expire(self) -> None:
        self._expired = True
        try:
            self._subscriber.queue.put_nowait(_EXPIRED)  # wakes a reader waiting on an empty queue
        except asyncio.QueueFull:
            pass  # a full queue's reader is not waiting: it sees the flag before its next event

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def __aiter__(self) -> AsyncIterator[OrganizationEvent]:
        while True:
            if self._expired:
                raise StreamExpired
            event = await self._subscriber.queue.get()
            if event is _EXPIRED:
                continue
            if event is None:
                if self._subscriber.overflowed:
                    raise SubscriberTooSlow
                return
            if event.seq > self._skip_to:
                yield event
