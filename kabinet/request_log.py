"""One log line per request (`kabinet.request`), and its id sent back as `X-Request-Id`.

The line: request_id, method, path, operation (GraphQL's operation name), viewer (a user's or a
program token's id, never a credential), status, duration_ms, sql (statements run), outcome (ok,
user errors, graphql errors, refused, exception) and, for GraphQL errors, their codes. A WebSocket
gets a line when it closes (kind "websocket") and each operation on it one when it completes (kind
"operation", its own request_id, the socket's as `socket_id`): `kabinet/transport.py`.

The id is the caller's `X-Request-Id` when sane (foundation/logs.py), else a new one. What it costs a
request: a context variable set, a few attribute sets, one log record.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foundation.logs import RequestRecord, current_request, loggable_name, request_id_from

log = logging.getLogger("kabinet.request")
HEADER = b"x-request-id"


def outcome_of(record: RequestRecord, status: int) -> str:
    if status >= 500:
        return "exception"
    if record.outcome is not None:
        return record.outcome
    return "refused" if status >= 400 else "ok"


def write_line(record: RequestRecord, kind: str, started: float, **fields: object) -> None:
    """The request's line (at INFO; at ERROR when it ended in an exception)."""
    outcome = fields.pop("outcome")
    operation = loggable_name(record.operation)
    line = {
        "kind": kind, **fields, "operation": operation, "viewer": record.viewer,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2), "sql": record.statements, "outcome": outcome,
    }
    if record.socket is not None:
        line["socket_id"] = record.socket
    if record.codes:
        line["codes"] = sorted(record.codes)
    # the message, for the text format: what a person scans for (JSON has every field on its own)
    log.log(logging.ERROR if outcome == "exception" else logging.INFO, "%s %s %s %s %s %.1f ms %d SQL: %s",
            fields.get("method", kind), fields.get("path", "-"), operation or "-", record.viewer or "-",
            fields.get("status", fields.get("close_code")), line["duration_ms"], record.statements, outcome,
            extra={"request_id": record.id, **line})


class RequestLogMiddleware:
    """The outermost middleware: the request's record in the context, the id on the answer, the line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request_id = request_id_from(next((v for k, v in scope["headers"] if k == HEADER), None))
        record = RequestRecord(request_id)
        token = current_request.set(record)
        started = time.perf_counter()
        status = 500 if kind == "http" else 1006  # no answer / no close frame sent by us

        async def identified_send(message: Message) -> None:
            nonlocal status
            message_type = message["type"]
            if message_type == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id.encode())]
            elif message_type == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), (HEADER, request_id.encode())]
                status = 1000
            elif message_type == "websocket.close":
                status = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, identified_send)
        except Exception:
            record.outcome = "exception"
            raise
        finally:
            if kind == "http":
                write_line(record, "http", started, method=scope["method"], path=scope["path"], status=status,
                           outcome=outcome_of(record, status))
            else:
                write_line(record, "websocket", started, path=scope["path"], close_code=status,
                           outcome=record.outcome or "ok")
            current_request.reset(token)
