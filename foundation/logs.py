"""Logs an operator can follow: one JSON object a line, each carrying the id of the request whose work
wrote it.

A request (an HTTP request, a WebSocket, one operation on a WebSocket) is a `RequestRecord` in the
`current_request` context variable: set by `kabinet/request_log.py` when it starts, filled on the way
(operation name, viewer, SQL statements, outcome), written as the request's own line when it ends.
Tasks the request starts copy the variable, so their lines carry its id too: `RequestIdFilter` puts it
on every record a configured handler writes.

The formatter is ours (orjson, already a dependency for the API's answers) rather than a library's:
a dozen lines, no new dependency, and it writes a request's fields as top-level keys.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# The text format: what a person reads at a terminal (and what the CLI wrote before).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def request_id_from(header: str | bytes | None) -> str:
    """The caller's id when it is a sane one (1–64 of A–Z a–z 0–9 . _ -: safe in a log line and a
    header), else a new one."""
    if header:
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        if _SANE_ID.fullmatch(header):
            return header
    return uuid.uuid4().hex


class RequestRecord:
    """What one request's log line says; filled by whoever learns a part, at the cost of an attribute set."""

    __slots__ = ("id", "socket", "operation", "viewer", "statements", "outcome", "codes")

    def __init__(self, request_id: str, socket: str | None = None) -> None:
        self.id = request_id
        self.socket = socket  # the WebSocket's id, for an operation on it
        self.operation: str | None = None
        self.viewer: str | None = None  # "user:<id>", "agent:<token id or name>", "service:<name>"; never a secret
        self.statements = 0
        self.outcome: str | None = None  # None: decided from the status when the line is written
        self.codes: set[str] | None = None  # the GraphQL errors' codes

    def error_codes(self, codes: Any) -> None:
        self.outcome = "graphql errors"
        self.codes = (self.codes or set()) | {c for c in codes if c}


current_request: ContextVar[RequestRecord | None] = ContextVar("kabinet_request", default=None)


def statement_ran() -> None:
    """Count one SQL statement for the current request (called by the database client, per statement)."""
    record = current_request.get()
    if record is not None:
        record.statements += 1


class RequestIdFilter(logging.Filter):
    """Every record a handler writes gets `request_id`: the current request's, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = current_request.get()
            record.request_id = current.id if current is not None else "-"
        return True


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, message, request_id, the record's extra
    fields as top-level keys, and the traceback under `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,127}")


def loggable_name(name: str | None) -> str | None:
    """An operation name as the request's line gives it: a GraphQL name of at most 128 characters, else
    "(invalid)" — a client's `operationName` need not name any operation, and may be anything."""
    if name is None or _NAME.fullmatch(name):
        return name
    return "(invalid)"


class TextFormatter(logging.Formatter):
    """The text format, one line per record: control characters in what a client could put in the
    message (a path, a name) are escaped, so no one forges a line; a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), super().formatMessage(record))


def resolved_format(log_format: str) -> str:
    """"auto": text at a terminal, JSON otherwise (a service manager, a container, a file)."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return log_format


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` of a kabinet process (also given to uvicorn, which applies it in
    each worker process): one handler on stderr, in the format asked, uvicorn's loggers through it."""
    formatter = (
        {"()": "foundation.logs.JsonFormatter"} if resolved_format(log_format) == "json"
        else {"class": "foundation.logs.TextFormatter", "format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "foundation.logs.RequestIdFilter"}},
        "formatters": {"kabinet": formatter},
        "handlers": {"stderr": {
            "class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "kabinet", "filters": ["request_id"],
        }},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},  # kabinet.request writes a richer line
            "fontTools": {"level": "WARNING"},  # embedding the PDF font is not news
            "tortoise": {"level": "WARNING"},  # its connect and shutdown notes are not news
        },
    }


def configure(log_format: str, level: str = "INFO") -> None:
    """Log as `logging_config` says, without the thread and process names nobody reads here (the
    logging HOWTO's optimisations: a little less work per line)."""
    import logging.config

    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.config.dictConfig(logging_config(log_format, level))
