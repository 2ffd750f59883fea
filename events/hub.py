"""How subscribers receive events: each process keeps one `EventHub`; it reads an organization's new
rows once per broker notice (and every few seconds anyway, in case a notice was lost) and hands
them, in order, to every local subscriber's bounded queue. What an event is and how a change
records one: `events/log.py`.
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

from foundation import clock
from events.broker import until_listening
from models.events import OrganizationEvent
from events.log import EVENTS_CHANNEL, StreamExpired, SubscriberTooSlow, latest_seq

log = logging.getLogger("events.hub")

SUBSCRIBER_QUEUE_SIZE = 1000
POLL_SECONDS = 2.0


# ---------------------------------------------------------------- read side

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
