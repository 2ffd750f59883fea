"""The app factory: everything kabinet serves, assembled in plain sight."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from kabinet import agent_api, db, front, http, provider_api, provider_staff_api
from events.hub import EventHub
from kabinet import ticket_files
from kabinet.graphql_view import KabinetGraphQL
from kabinet.middleware import BodyLimitMiddleware, MetricsMiddleware
from kabinet.request_log import RequestLogMiddleware
from events.broker import create_broadcast
from foundation.settings import Settings
from resolvers.identity.sign_ins import EndedLogins
from resolvers.cloud import agent_tokens
from resolvers.cloud import cluster_mode
from resolvers.identity.tokens import ended_login_memory_seconds
from schema.build import build_schema
from workers.runner import Workers

log = logging.getLogger("kabinet")
GC_THRESHOLDS = (50_000, 20, 100)
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    # an access token lives access_token_minutes: an ended login is remembered that long, and a minute more
    ended_logins = EndedLogins(
        keep_seconds=ended_login_memory_seconds(settings), poll_seconds=settings.ended_logins_poll_seconds
    )
    graphql = KabinetGraphQL(build_schema(settings), settings, ended_logins)
    broadcast = create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
    event_hub = EventHub(broadcast, poll_seconds=settings.event_poll_seconds, queue_size=settings.subscriber_queue_size)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.prepare(settings)
        await broadcast.connect()
        await event_hub.start()
        await ended_logins.start(broadcast)
        workers = Workers(settings, broadcast)
        if settings.run_workers:
            workers.start()
        shutdown = GracefulShutdown(graphql, workers)
        shutdown.install()
        gc.collect()
        gc.freeze()  # what start-up built lives as long as the process: the collector need not walk it again
        # A request or a delivery allocates thousands of short-lived objects; with the default first
        # threshold (700) the collector runs every few of them and, holding thousands of sockets, its
        # older generations walk hundreds of MB. Rarer young collections, far rarer full ones.
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("kabinet is serving %s", "the embedded default" if settings.is_sqlite else "its configured database")
        log.info((await cluster_mode.read(settings)).line())
        legacy_agents = agent_tokens.legacy_warning(settings)
        if legacy_agents:
            log.warning(legacy_agents)
        try:
            yield
        finally:
            shutdown.uninstall()
            await shutdown.stop_workers()
            await event_hub.stop()
            await ended_logins.stop()
            await broadcast.disconnect()
            await db.disconnect()

    app = Starlette(
        routes=[
            Route("/", front.index, methods=["GET"]),  # the front page (docs/front-page.md)
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", http.healthz),
            Route("/readyz", http.readyz),
            Route("/metrics", http.metrics),
            Route("/files/{document_id}/{expires}/{signature}", http.download_document),
            Route("/ticket-files/{attachment_id}/{user_id}/{expires}/{signature}", ticket_files.download_attachment),
            *agent_api.routes,
            *provider_api.routes,
            *provider_staff_api.routes,
            Mount("/static/front", front.files(), name="front"),  # before /static: with the page's CSP
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(RequestLogMiddleware),  # outermost: its line covers what the others answer (413s)
            Middleware(MetricsMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, own_limit_prefixes=("/provider/", agent_api.SNAPSHOT_PATH)),
        ],
        exception_handlers={HTTPException: http.http_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broadcast = broadcast
    app.state.event_hub = event_hub
    app.state.graphql = graphql
    app.state.ended_logins = ended_logins
    return app


class GracefulShutdown:
    """On SIGTERM (or Ctrl+C), before the server starts its own shutdown: close every WebSocket with
    1001 (going away) and ask the workers to finish their step; then hand the signal on.

    uvicorn, left alone, notices the signal on its next tick, closes WebSockets with 1012 and waits
    for them before the lifespan's shutdown. So this hook goes first: it wraps the handler uvicorn
    installed (present when the lifespan starts) and restores it when the lifespan ends. Outside a
    server that captures signals (tests driving the lifespan), it installs nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, graphql: KabinetGraphQL, workers: Workers) -> None:
        self.graphql, self.workers = graphql, workers
        self.previous: dict[int, object] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing: asyncio.Task | None = None
        self.stopping_workers: asyncio.Task | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self.loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if callable(previous):  # someone (uvicorn) shuts down on it: go first, then hand it on
                self.previous[signum] = previous
                signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        for signum, previous in self.previous.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)  # type: ignore[arg-type]
        self.previous = {}

    def _on_signal(self, signum: int, frame: object) -> None:
        previous = self.previous[signum]
        if self.closing is not None or self.loop is None:  # a second signal: straight to the server
            previous(signum, frame)  # type: ignore[operator]
            return
        self.loop.call_soon_threadsafe(self._begin, signum, previous)

    def _begin(self, signum: int, previous: object) -> None:
        if self.closing is None:
            self.closing = asyncio.create_task(self._close_then_hand_on(signum, previous))

    async def _close_then_hand_on(self, signum: int, previous: object) -> None:
        log.info("%s: closing WebSockets (1001) and stopping workers", signal.Signals(signum).name)
        self.stopping_workers = asyncio.create_task(self.workers.stop())
        try:
            await self.graphql.close_sockets()
        except Exception:  # noqa: BLE001 — the server's own shutdown follows anyway
            log.exception("closing WebSockets failed")
        finally:
            previous(signum, None)  # type: ignore[operator]

    async def stop_workers(self) -> None:
        await (self.stopping_workers if self.stopping_workers is not None else self.workers.stop())
