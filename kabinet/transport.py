"""Transport limits and refusals of the GraphQL endpoint, shaped as GraphQL errors.

HTTP: a request strawberry refuses before executing it (a body that is not JSON or is nested too
deeply for a JSON parser, no query, a mutation sent with GET) answers a JSON body of GraphQL
errors with `extensions.code`, not strawberry's plain text; a mutation over GET is 405 with
`Allow: POST` (GraphQL over HTTP).

WebSocket, on both sub-protocols: a message over `ws_max_message_bytes` closes the socket with
1009 (message too big); a socket that has not sent `connection_init` within
`ws_connection_init_seconds` is closed with 4408 (graphql-transport-ws's own code, used for the
legacy protocol too); an error the protocol handler makes itself gets an `extensions.code`.
(Errors of results are shaped in `schema.build.KabinetSchema.stream`, as over HTTP.)
"""

from __future__ import annotations

import asyncio
import time
from json import JSONDecodeError
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers

from foundation.logs import RequestRecord, current_request, request_id_from
from kabinet.request_log import write_line

MESSAGE_TOO_BIG = 1009  # RFC 6455
INIT_TIMEOUT = 4408  # graphql-transport-ws: connection initialisation timeout
GENERIC_ERROR = "Internal server error; quote the request id when you report it."


class GraphQLOverHTTP:
    """Mixed into the GraphQL view, before strawberry's: refusals as GraphQL errors, JSON decoded
    by orjson (a nesting too deep for it is a decode error, never a RecursionError)."""

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)  # type: ignore[misc]
        try:
            return await super().run(request, context, root_value)  # type: ignore[misc]
        except HTTPException as refused:
            return refusal(request, refused)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


def refusal(request: Request, refused: HTTPException) -> Response:
    status, headers = refused.status_code, {}
    if request.method == "GET" and isinstance(refused.__cause__, InvalidOperationTypeError):
        # GraphQL over HTTP: a mutation is never executed for GET; POST it.
        status, headers = 405, {"Allow": "POST"}
    record = current_request.get()
    extensions = {"code": getattr(refused, "code", "BAD_USER_INPUT"), **({"requestId": record.id} if record is not None else {})}
    body = {"errors": [{"message": refused.reason, "extensions": extensions}]}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads text messages up to the view's `ws_max_message_bytes`; a longer one closes the socket."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        limit = self.view.settings.ws_max_message_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit // 4 and len(text.encode()) > limit:
                    await self.ws.close(MESSAGE_TOO_BIG, f"A message may have {limit} bytes at most.")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as e:  # orjson's is one
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from e
        except KeyError as e:
            raise NonTextMessageReceived from e
        except WebSocketDisconnect:
            pass


def coded(message: dict) -> dict:
    """The protocol handler's own errors (e.g. "Subscription limit reached", a refused legacy
    connection) with a code."""
    payload = message.get("payload")
    if message.get("type") == "connection_error" and isinstance(payload, dict):  # legacy: the socket was refused
        payload.setdefault("extensions", {}).setdefault("code", "UNAUTHENTICATED")
        return message
    if message.get("type") == "error":
        errors = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else []
    elif message.get("type") in ("next", "data") and isinstance(payload, dict):
        errors = payload.get("errors") or []
    else:
        return message
    for error in errors:
        if isinstance(error, dict) and not (error.get("extensions") or {}).get("code"):
            if error.get("path"):
                error["message"] = GENERIC_ERROR
            code = ("INTERNAL_SERVER_ERROR" if error.get("path")
                    else "RATE_LIMITED" if error.get("message") == "Subscription limit reached" else "BAD_USER_INPUT")
            error["extensions"] = {**(error.get("extensions") or {}), "code": code}
            if (record := current_request.get()) is not None:
                error["extensions"].setdefault("requestId", record.id)
    return message


async def logged_operation(operation_name: str | None, run: Any) -> None:
    """Run one WebSocket operation (in its own task) as a request of its own for the log: its own id,
    the socket's beside it, one line when it completes (kabinet/request_log.py)."""
    socket = current_request.get()
    record = RequestRecord(request_id_from(None), socket.id if socket is not None else None)
    record.viewer, record.operation = (socket.viewer if socket is not None else None), operation_name
    current_request.set(record)  # this task's context only
    started, outcome = time.perf_counter(), None
    try:
        await run()
    except asyncio.CancelledError:  # stopped by the client (complete/stop) or its socket closing: an end like any
        raise
    except Exception:
        outcome = "exception"
        raise
    finally:
        write_line(record, "operation", started, outcome=outcome or record.outcome or "ok")


class TransportWSHandler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, with the init timeout of the settings (strawberry closes with 4408)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_init_wait_timeout = timedelta(seconds=self.view.settings.ws_connection_init_seconds)

    async def send_message(self, message: Any) -> None:
        await super().send_message(coded(message))

    async def run_operation(self, operation: Any) -> None:
        await logged_operation(operation.operation_name, lambda: super(TransportWSHandler, self).run_operation(operation))


class LegacyWSHandler(BaseGraphQLWSHandler):
    """The legacy graphql-ws protocol, which strawberry gives no init timeout: one of the settings."""

    initialised = False

    async def handle(self) -> None:
        timer = asyncio.create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            timer.cancel()

    async def _close_unless_initialised(self) -> None:
        await asyncio.sleep(self.view.settings.ws_connection_init_seconds)
        if not self.initialised:
            try:
                await self.websocket.close(code=INIT_TIMEOUT, reason="Connection initialisation timeout")
            except Exception:  # noqa: BLE001 — already closed
                pass

    async def handle_connection_init(self, message: Any) -> None:
        self.initialised = True
        await super().handle_connection_init(message)

    async def handle_start(self, message: Any) -> None:
        """A `start` without an id or a query text (an Apollo client sending a persisted query's hash
        alone: those are graphql-transport-ws only) is an `error`, not an exception ending the socket."""
        payload = message.get("payload")
        if self.connection_acknowledged and (
            not isinstance(message.get("id"), str) or not isinstance(payload, dict) or not isinstance(payload.get("query"), str)
        ):
            persisted = isinstance(payload, dict) and isinstance(payload.get("extensions"), dict) and "persistedQuery" in payload["extensions"]
            message_id = message.get("id") if isinstance(message.get("id"), str) else None
            error = ({"message": "PersistedQueryNotSupported", "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"}}
                     if persisted else {"message": "A `start` needs an `id` and a `payload.query` text.",
                                        "extensions": {"code": "BAD_USER_INPUT"}})
            await self.send_message({"type": "error", "id": message_id, "payload": error})
            return
        await super().handle_start(message)

    async def handle_stop(self, message: Any) -> None:
        if isinstance(message.get("id"), str):
            await super().handle_stop(message)

    async def handle_async_results(self, operation_id: str, query: str, operation_name: str | None, variables: Any) -> None:
        await logged_operation(operation_name, lambda: super(LegacyWSHandler, self).handle_async_results(
            operation_id, query, operation_name, variables))

    async def send_message(self, message: Any) -> None:
        await super().send_message(coded(message))


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (the `websockets` library's sans-I/O one, uvicorn's own choice),
    forgetting the opening handshake once it is answered: uvicorn keeps the request and the response
    (their header maps, ~5 KB; the request also stays in the `websockets` parser's generator, so its
    headers are emptied) for as long as the socket lives, and an idle subscriber's socket lives
    for hours. Nothing reads them after the handshake. Its queue of received messages is an `Inbox`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        # Forgotten on the first message after the handshake (a client's connection_init) rather than
        # in `send`: every frame to a subscriber goes through `send`, and stays uvicorn's own there.
        super().data_received(data)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            if self.request is not None:  # its parser's generator still holds the request: empty it
                self.request.headers = Headers()
            self.request = self.response = None


class Inbox:
    """A socket's received messages, as uvicorn's protocol uses its queue (`put_nowait`, `get`,
    `empty`): a list and, while someone waits, a future. An `asyncio.Queue` costs ~3 KB per socket
    (three deques and an Event with a fourth), for a queue that is empty nearly all of a long life."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        item = self._items.pop(0)
        if self._items and self._waiters:  # more for another waiter
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
                    break
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)
