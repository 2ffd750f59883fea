"""ASGI middleware: the request body limit and HTTP metrics."""

from __future__ import annotations

import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kabinet.http import HTTP_REQUESTS, HTTP_SECONDS


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 to a request whose body exceeds the limit, declared or streamed. Paths under
    `own_limit_prefixes` are left to their endpoints, which hold a limit of their own (the provider
    API takes megabytes of records)."""

    def __init__(self, app: ASGIApp, max_bytes: int, own_limit_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_limit_prefixes = own_limit_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.own_limit_prefixes):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _too_large(send, scope["path"], self.max_bytes)
        seen = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _too_large(send, scope["path"], self.max_bytes)


async def _too_large(send: Send, path: str, max_bytes: int) -> None:
    """413 in the shape of the API asked: the agent API's error under /cluster/, GraphQL's elsewhere."""
    if path.startswith("/cluster/"):
        body = orjson.dumps({"error": {"code": "TOO_LARGE", "message": f"The body exceeds {max_bytes} bytes.", "field": None}})
    else:
        body = b'{"errors":[{"message":"Request body too large.","extensions":{"code":"BAD_USER_INPUT"}}]}'
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count and time HTTP requests by route (the route's path template, never the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
