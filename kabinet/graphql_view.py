"""The GraphQL endpoint: HTTP and WebSocket, auth from the header or the first message, error shaping;
it keeps its open WebSockets, so that a stopping process can close them with 1001 (going away)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from kabinet import db
from kabinet.auth import bearer_token
from resolvers.identity import api_tokens
from resolvers.identity.tokens import decode_access_token
from resolvers.common.context import RequestContext, Viewer
from schema.errors import shape_error, signed_out
from kabinet.response_cache import PlainQuery, ResponseCache, plain_query
from foundation.logs import current_request, request_id_from
from foundation.settings import Settings
from resolvers.identity.sign_ins import EndedLogins
from kabinet.persisted_queries import PersistedQueries, PersistedQueriesOverHTTP, PersistedTransportWSHandler, cache_headers
from kabinet.transport import GraphQLOverHTTP, LegacyWSHandler, LimitedWebSocketAdapter
from models.select import read_only
from schema.execution import SharedCompletion
from kabinet.front import front_headers

log = logging.getLogger("kabinet.graphql")
GRAPHIQL_PAGE = Path(__file__).parent / "static" / "graphiql.html"
# Shown in the sign-in bar where the demo data set is seeded (the embedded default), never otherwise.
DEMO_HINT = '<span class="kabinet-hint">демо / demo: owner@romashka.example · kabinet-demo</span>'
GRAPHQL_RESPONSE = "application/graphql-response+json"
GOING_AWAY = 1001  # RFC 6455: the server is going down; both sub-protocols' clients reconnect
# What a socket whose sign-in has ended is closed with: the code graphql-transport-ws gives a
# refused connection_init (what the same token would now get), so a client signs in again.
SIGNED_OUT = 4403


def encode_message(message: dict) -> str:
    """A WebSocket message as JSON text. The payload of a `next`/`data` message whose one root
    field is a completion shared by a group of subscribers is spliced in as the bytes encoded once
    for the whole group."""
    payload = message.get("payload")
    if isinstance(payload, dict) and len(payload) == 1 and isinstance(data := payload.get("data"), dict) and len(data) == 1:
        ((root, value),) = data.items()
        if type(value) is SharedCompletion:
            head = orjson.dumps({k: v for k, v in message.items() if k != "payload"})
            return b"".join((head[:-1], b',"payload":{"data":{', orjson.dumps(root), b":", value.json(), b"}}}")).decode()
    return orjson.dumps(message).decode()


def response_too_large(size: int, maximum: int) -> dict:
    """What a client gets instead of an answer over `max_response_bytes`: no partial body, a code to act on."""
    return {"data": None, "errors": [{
        "message": f"The answer would have {size} bytes, more than {maximum}: ask for fewer items (`first`) or "
        "fewer fields, and page through the rest.",
        "extensions": {"code": "RESPONSE_TOO_LARGE", "bytes": size, "maximum": maximum},
    }]}


class TextWebSocketAdapter(LimitedWebSocketAdapter):
    """Messages go out as text frames: browsers' graphql-ws clients parse text only (a binary frame
    reaches them as a Blob and ends the connection). A result over `max_response_bytes` goes out as
    its RESPONSE_TOO_LARGE error."""

    async def send_json(self, message: Any) -> None:
        text = encode_message(message)
        maximum = self.view.settings.max_response_bytes
        if len(text) > maximum // 4 and len(text.encode()) > maximum and isinstance(message.get("payload"), dict):
            text = encode_message({**message, "payload": response_too_large(len(text.encode()), maximum)})
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


def _viewer_label(viewer: Viewer) -> str:
    """Who a log line names: the user, and the API token they act through."""
    return f"user:{viewer.user_id} token:{viewer.grant.token_id}" if viewer.grant else f"user:{viewer.user_id}"


class KabinetGraphQL(PersistedQueriesOverHTTP, GraphQLOverHTTP, GraphQL):
    websocket_adapter_class = TextWebSocketAdapter
    graphql_transport_ws_handler_class = PersistedTransportWSHandler  # kabinet/persisted_queries.py
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: Any, settings: Settings, ended_logins: EndedLogins | None = None) -> None:
        super().__init__(schema, graphql_ide="graphiql", keep_alive=True, keep_alive_interval=15)
        self.settings = settings
        self.response_cache = (
            ResponseCache(settings.response_cache_mb * 1024 * 1024, settings.response_cache_seconds)
            if settings.response_cache_mb > 0
            else None
        )
        self.persisted_queries = PersistedQueries(int(settings.persisted_queries_mb * 1024 * 1024))
        self.open_sockets: set[WebSocket] = set()
        self.closing = False
        self.ended_logins = ended_logins if ended_logins is not None else EndedLogins()
        self.ended_logins.listeners.append(self._close_sockets_of)
        self.sockets_by_login: dict[uuid.UUID, set[WebSocket]] = {}
        self._closing_tasks: set[asyncio.Task] = set()

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, WebSocket):
            return await self._run_websocket(request, context, root_value)
        # a POST of one query operation (None for anything else) only reads: its statements share
        # one pool connection, it reads a row by id only once, and its answer may be kept
        query = plain_query(await request.body(), self.settings.max_query_tokens) if request.method == "POST" else None
        if query is not None:
            async with db.one_connection():
                with read_only():
                    response = await self._answer(request, context, root_value, query)
        else:
            response = await self._answer(request, context, root_value, None)
        # GraphQL over HTTP: a client accepting application/graphql-response+json gets that type,
        # and a 400 for a request that could not be executed.
        if isinstance(request, Request) and GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            if response.headers.get("content-type", "").startswith("application/json"):
                response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
                if getattr(request.state, "request_error", False):
                    response.status_code = 400
        if isinstance(request, Request):
            cache_headers(request, response.headers)
        return response

    async def _answer(self, request: Request, context: Any, root_value: Any, query: PlainQuery | None) -> Response:
        """Execute, or give the kept answer to the same query of the same user if nothing it read changed."""
        viewer = None
        if self.response_cache is not None and request.method == "POST":
            viewer = request.state.viewer = await self.viewer_of(bearer_token(request.headers.get("authorization")))
        if viewer is None or viewer.must_change_password:  # its answers are refusals, kept for nobody
            return await super().run(request, context, root_value)
        # an API token's answers are its own: it sees less than its creator (resolvers/identity/api_tokens.py)
        kept, lookup = await self.response_cache.lookup(viewer.user_id, query, viewer.grant.token_id if viewer.grant else None)
        if kept is not None:
            return Response(kept, media_type="application/json")
        response = await super().run(request, context, root_value)
        if lookup is not None and response.status_code == 200 and getattr(request.state, "answered_without_errors", False):
            self.response_cache.keep(lookup, bytes(response.body))
        return response

    async def _run_websocket(self, socket: WebSocket, context: Any, root_value: Any) -> Any:
        """Serve one WebSocket, known to `close_sockets` while it is open."""
        if self.closing:
            await socket.close(GOING_AWAY, "The server is shutting down.")
            return socket
        self.open_sockets.add(socket)
        try:
            return await super().run(socket, context, root_value)
        finally:
            self.open_sockets.discard(socket)
            login_id = getattr(socket.state, "login_id", None)
            if login_id is not None and (sockets := self.sockets_by_login.get(login_id)) is not None:
                sockets.discard(socket)
                if not sockets:
                    del self.sockets_by_login[login_id]

    async def close_sockets(self, reason: str = "The server is shutting down; reconnect.", timeout: float = 2.0) -> int:
        """Close every open WebSocket with 1001 (going away), and refuse new ones; how many were open."""
        self.closing = True
        sockets = [s for s in self.open_sockets if s.application_state == WebSocketState.CONNECTED]

        async def close(socket: WebSocket) -> None:
            try:
                await socket.close(GOING_AWAY, reason)
            except Exception:  # noqa: BLE001 — already closing or gone
                pass

        if sockets:
            await asyncio.wait([asyncio.ensure_future(close(s)) for s in sockets], timeout=timeout)
            log.info("closed %d WebSocket(s) with 1001 (going away)", len(sockets))
        return len(sockets)

    def _close_sockets_of(self, login_id: uuid.UUID) -> None:
        """A sign-in has ended: its open WebSockets are closed (the legacy protocol is told first)."""
        for socket in self.sockets_by_login.pop(login_id, ()):
            task = asyncio.ensure_future(self._close_signed_out(socket))
            self._closing_tasks.add(task)
            task.add_done_callback(self._closing_tasks.discard)

    async def _close_signed_out(self, socket: WebSocket) -> None:
        try:
            if await self.pick_websocket_subprotocol(socket) == GRAPHQL_WS_PROTOCOL:
                error = signed_out().formatted
                await socket.send_text(orjson.dumps({"type": "connection_error", "payload": error}).decode())
            await socket.close(SIGNED_OUT, "Forbidden: the sign-in has ended")
        except Exception:  # noqa: BLE001 — already closing or gone
            pass

    async def viewer_of(self, token: str | None) -> Viewer | None:
        """The viewer of a bearer token: a person's access token (`viewer_from_token`), or an
        integrator's API token (`kit_…`, looked up in the database at every request: a revoked or
        expired one is refused at once)."""
        if api_tokens.is_api_token(token):
            viewer = await api_tokens.viewer_of(token)
            return None if viewer is None or viewer.login_id in self.ended_logins else viewer
        return self.viewer_from_token(token)

    def viewer_from_token(self, token: str | None) -> Viewer | None:
        """The token's viewer; None for a token that is not valid or whose sign-in has ended (checked
        after the verified-token cache, in memory: see resolvers.identity.sign_ins)."""
        claims = decode_access_token(self.settings, token) if token else None
        if claims is None or claims.login_id in self.ended_logins:
            return None
        return Viewer(claims.user_id, claims.login_id, claims.expires_at, claims.must_change_password)

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        record = current_request.get()  # kabinet/request_log.py: the id it took or made
        request_id = record.id if record is not None else request_id_from(request.headers.get("x-request-id"))
        request.state.request_id = request_id
        viewer = None
        if isinstance(request, Request):
            viewer = getattr(request.state, "viewer", None) or await self.viewer_of(
                bearer_token(request.headers.get("authorization"))
            )
            if viewer is not None and record is not None:
                record.viewer = _viewer_label(viewer)
        client = request.client.host if request.client else None
        state = request.app.state
        return RequestContext(
            self.settings, viewer, request_id, client, request, broadcast=state.broadcast, event_hub=state.event_hub,
            ended_logins=self.ended_logins,
        )

    async def on_ws_connect(self, context: RequestContext) -> Any:
        """The first message's payload carries `{"authorization": "Bearer …"}`; no valid token, no socket."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = next((v for k, v in params.items() if isinstance(k, str) and k.lower() == "authorization"), None)
        viewer = await self.viewer_of(bearer_token(header) if isinstance(header, str) else None)
        if viewer is None:
            raise ConnectionRejectionError({"message": "A valid access token is required."})
        context.viewer = viewer
        if (record := current_request.get()) is not None:
            record.viewer = _viewer_label(viewer)
        socket = context.request  # closed if this sign-in ends, or this API token is revoked (resolvers.identity.sign_ins)
        socket.state.login_id = viewer.login_id
        self.sockets_by_login.setdefault(viewer.login_id, set()).add(socket)
        return None

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request.state.answered_without_errors = not result.errors
        record = current_request.get()  # the request's log line (kabinet/request_log.py)
        if result.errors:
            request_id = getattr(request.state, "request_id", "-")
            result.errors = [shape_error(e, request_id, log, logged=True) for e in result.errors]
            # A request error (parse, validation, variables): nothing was executed.
            request.state.request_error = result.data is None and all(e.path is None for e in result.errors)
            if record is not None:
                record.error_codes((e.extensions or {}).get("code") for e in result.errors)
        elif record is not None and type(result.data) is dict and any(
            type(payload) is dict and payload.get("userErrors") for payload in result.data.values()
        ):
            record.outcome = "user errors"  # a mutation refused (schema/errors.py `transactional`)
        self.register_if_run(request, getattr(request.state, "request_error", False))  # a persisted query's text
        return process_result(result)

    def encode_json(self, data: object) -> bytes:
        body = orjson.dumps(data)
        if len(body) > self.settings.max_response_bytes:
            log.warning("an answer of %d bytes was refused (max_response_bytes %d)", len(body), self.settings.max_response_bytes)
            return orjson.dumps(response_too_large(len(body), self.settings.max_response_bytes))
        return body

    async def render_graphql_ide(self, request: Request) -> Response:
        page = GRAPHIQL_PAGE.read_text()
        if self.settings.should_seed_demo:
            page = page.replace("<!--demo-hint-->", DEMO_HINT, 1)
        # only this origin's files (no inline script or style): kabinet/front.py's policy, the front page's
        return HTMLResponse(page, headers=front_headers(request.headers.get("host"), data_urls=True))
