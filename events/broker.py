"""The broker: broadcaster over `KABINET_BROKER_URL` — memory://, redis://, postgres://.

The broker carries only "organization X has events up to number N" notices on one channel; the
events themselves are rows of the event log (models/events.py). So a lost notice costs a little
latency, never an event. The Redis and PostgreSQL backends here reconnect by themselves
(broadcaster's own do not), and every process subscribes to the one channel once at start,
which sidesteps broadcaster's races between concurrent subscribes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import asyncpg
from broadcaster import Broadcast, BroadcastBackend, Event
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("events.broker")
HEALTH_CHANNEL = "kabinet.health"
RECONNECT_DELAYS = (0.2, 0.5, 1, 2, 5)


class _Reconnecting(BroadcastBackend):
    """Keeps the subscribed channels and a listener that reconnects with backoff."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.listener: asyncio.Task | None = None
        self.connected = asyncio.Event()
        self.channel_added = asyncio.Event()
        # Called once a lost connection is back: notices published meanwhile are lost, so whoever
        # must not miss one (ended sign-ins) reads the database again.
        self.on_reconnect: list[Callable[[], Any]] = []

    async def connect(self) -> None:
        await self.open()
        self.listener = asyncio.create_task(self._listen_forever())

    async def disconnect(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
        await self.close()

    async def subscribe(self, channel: str) -> None:
        """Never fails: a channel that cannot be listened to now (the connection broke under us)
        drops the connection, and the listener, reconnecting, listens to every channel. A failure
        raised here would kill the subscriber's task, and a process waiting on it at start-up (the
        event hub, the ended sign-ins) would wait for ever."""
        self.channels.add(channel)
        self.channel_added.set()
        if self.connected.is_set():
            try:
                await self.listen_to(channel)
            except Exception as error:  # noqa: BLE001 — reconnect: the listener subscribes every channel again
                log.warning("could not listen to %s (%s); reconnecting", channel, error)
                self.connected.clear()
                await self.close()

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)

    async def next_published(self) -> Event:
        return await self.queue.get()

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            try:
                if attempt:
                    await self.open()
                for channel in self.channels:
                    await self.listen_to(channel)
                self.connected.set()
                if attempt:
                    log.info("broker connection restored")
                    for callback in self.on_reconnect:
                        callback()
                attempt = 0
                await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 — any failure: reconnect
                self.connected.clear()
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                log.warning("broker connection lost (%s); reconnecting in %.1fs", error, delay)
                attempt += 1
                await self.close()
                await asyncio.sleep(delay)

    # Each backend: open/close a connection, listen to a channel, pump messages into self.queue.
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def listen_to(self, channel: str) -> None: ...
    async def pump(self) -> None: ...


class ReconnectingRedisBackend(_Reconnecting):
    """Redis pub/sub is one space for the whole server (its database numbers do not divide it), so
    each channel is prefixed with the deployment's namespace: deployments sharing a Redis (staging
    beside production, parallel test runs) never hear each other."""

    def __init__(self, url: str, namespace: str = "") -> None:
        super().__init__(url)
        self.prefix = f"{namespace}/" if namespace else ""

    async def open(self) -> None:
        self.redis = aioredis.Redis.from_url(self.url, socket_connect_timeout=3, health_check_interval=10)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)

    async def close(self) -> None:
        for closable in (getattr(self, "pubsub", None), getattr(self, "redis", None)):
            try:
                if closable is not None:
                    await closable.aclose()
            except Exception:  # noqa: BLE001 — closing a broken connection
                pass

    async def listen_to(self, channel: str) -> None:
        await self.pubsub.subscribe(self.prefix + channel)

    async def pump(self) -> None:
        while True:
            if not self.channels:  # a publisher only (e.g. a worker process): just watch the connection
                await self.redis.ping()
                try:
                    await asyncio.wait_for(self.channel_added.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    pass
                continue
            message = await self.pubsub.get_message(timeout=5.0)
            if message is None:
                await self.redis.ping()
                continue
            if message["type"] == "message":
                channel = message["channel"].decode().removeprefix(self.prefix)
                await self.queue.put(Event(channel, message["data"].decode()))

    async def publish(self, channel: str, message: Any) -> None:
        try:
            await self.redis.publish(self.prefix + channel, message)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # Briefly, for a reconnection under way; past that the event hubs' polling delivers.
            await asyncio.wait_for(self.connected.wait(), timeout=0.5)
            await self.redis.publish(self.prefix + channel, message)


class ReconnectingPostgresBackend(_Reconnecting):
    """LISTEN/NOTIFY on a dedicated connection (payloads are small notices, far under 8000 bytes)."""

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1), timeout=5)
        self.lost = asyncio.Event()
        self.conn.add_termination_listener(lambda _conn: self.lost.set())

    async def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except Exception:  # noqa: BLE001 — closing a broken connection
                conn.terminate()

    async def listen_to(self, channel: str) -> None:
        await self.conn.add_listener(channel, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.queue.put_nowait(Event(channel, payload))

    async def pump(self) -> None:
        while not self.lost.is_set():
            try:
                await asyncio.wait_for(self.lost.wait(), timeout=10)
            except asyncio.TimeoutError:
                await self.conn.execute("SELECT 1")
        raise ConnectionError("PostgreSQL listener connection closed")

    async def publish(self, channel: str, message: Any) -> None:
        await self.conn.execute("SELECT pg_notify($1, $2)", channel, str(message))


def create_broadcast(broker_url: str, namespace: str = "") -> Broadcast:
    """The broker for `broker_url`; on Redis its channels are prefixed with `namespace`
    (PostgreSQL's NOTIFY is already divided by database)."""
    scheme = urlparse(broker_url).scheme
    if scheme in ("redis", "rediss"):
        return Broadcast(backend=ReconnectingRedisBackend(broker_url, namespace))
    if scheme in ("postgres", "postgresql"):
        return Broadcast(backend=ReconnectingPostgresBackend(broker_url))
    return Broadcast(broker_url)


async def broker_reachable(broadcast: Broadcast) -> bool:
    """True when a message can be published (for /readyz)."""
    try:
        await asyncio.wait_for(broadcast.publish(HEALTH_CHANNEL, "ping"), timeout=3)
        return True
    except Exception:  # noqa: BLE001 — any failure means "not ready"
        return False


async def until_listening(listener: asyncio.Task, ready: asyncio.Event) -> None:
    """Wait until a listener task has subscribed (`ready`), or raise what ended it first: a
    listener that died before subscribing must fail start-up loudly, not leave it waiting for ever."""
    waiting = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({waiting, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if not ready.is_set():
        listener.result()  # its exception
        raise RuntimeError("the broker listener ended before it subscribed")

