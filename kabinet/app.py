"""The app factory: everything kabinet serves, assembled in plain sight."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from kabinet import db, http
from kabinet.events import EventHub
from kabinet.graphql_view import KabinetGraphQL
from kabinet.middleware import BodyLimitMiddleware, MetricsMiddleware
from kabinet.pubsub import create_broadcast
from kabinet.settings import Settings
from schema.build import build_schema
from workers.runner import Workers

log = logging.getLogger("kabinet")
STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    graphql = KabinetGraphQL(build_schema(settings), settings)
    broadcast = create_broadcast(settings.broker_url)
    event_hub = EventHub(broadcast)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.prepare(settings)
        await broadcast.connect()
        await event_hub.start()
        workers = Workers(settings, broadcast)
        if settings.run_workers:
            workers.start()
        log.info("kabinet is serving %s", "the embedded default" if settings.is_sqlite else "its configured database")
        try:
            yield
        finally:
            await workers.stop()
            await event_hub.stop()
            await broadcast.disconnect()
            await db.disconnect()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", http.healthz),
            Route("/readyz", http.readyz),
            Route("/metrics", http.metrics),
            Route("/files/{document_id}/{expires}/{signature}", http.download_document),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(MetricsMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broadcast = broadcast
    app.state.event_hub = event_hub
    return app
