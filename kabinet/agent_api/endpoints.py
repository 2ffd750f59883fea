"""The frame of every agent endpoint: the token checked, the body read (bounded), the handler given the
fields its endpoint declares only (`AgentCall`), its answer or refusal as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from foundation.clock import utcnow
from foundation.ids import pk_of
from kabinet.agent_api.auth import AgentError, authenticate, invalid, refused
from kabinet.http import BodyTooLarge, bounded_body
from resolvers.cloud import cluster_snapshot
from resolvers.common.errors import UserFacingError
from resolvers.identity.program_tokens import Program
from resolvers.updates.runs import LeaseLost

SNAPSHOT_PATH = "/cluster/sessions/snapshot"  # its body has a limit of its own (agent_snapshot_max_body_bytes)
CLUSTER_NAME = 100  # characters: models.cloud.Cluster.name
ORGANIZATION_CODE = 20  # characters, as models.organizations.Organization.code holds


@dataclass(frozen=True)
class Fields:
    """What an endpoint reads: the names the agent may send in the JSON body, the query and the path."""

    body: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    path: tuple[str, ...] = ()


class UndeclaredField(LookupError):
    """A handler read a field its endpoint does not declare (a programming error, caught by the tests)."""


class AgentCall:
    """One request to the agent API: the agent, and its input read through the endpoint's `Fields`
    only, each value checked by the reader that takes it (a 400 naming the field and why)."""

    def __init__(self, request: Request, agent: Program, fields: Fields, body: dict[str, Any]) -> None:
        self.request, self.agent, self.fields, self._body = request, agent, fields, body
        self.settings = request.app.state.settings

    def value(self, name: str) -> Any:
        """A body field as sent (None when absent)."""
        if name not in self.fields.body:
            raise UndeclaredField(name)
        return self._body.get(name)

    def query(self, name: str, max_length: int) -> str | None:
        if name not in self.fields.query:
            raise UndeclaredField(name)
        return _checked_text(name, self.request.query_params.get(name), max_length, required=False)

    def path(self, name: str, type_name: str):
        """The primary key a path's global id names (None when it names nothing of `type_name`)."""
        if name not in self.fields.path:
            raise UndeclaredField(name)
        return pk_of(self.request.path_params[name], type_name)

    def text(self, name: str, max_length: int, *, required: bool = True) -> str | None:
        return _checked_text(name, self.value(name), max_length, required=required)

    def whole_number(self, name: str, low: int, high: int, default: int) -> int:
        value = self.value(name)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise invalid(name, f"`{name}` must be a whole number from {low} to {high}.")
        return value

    def time(self, name: str, *, required: bool = True) -> dt.datetime | None:
        """A moment the cluster saw (resolvers/cloud/cluster_snapshot.py `reported_time`): with its UTC offset, up to
        the clock-skew allowance past now."""
        value = self.value(name)
        if value is None and not required:
            return None
        moment = cluster_snapshot.reported_time(value, utcnow() + dt.timedelta(seconds=self.settings.agent_clock_skew_seconds))
        if isinstance(moment, str):
            raise invalid(name, f"`{name}`: {moment}.")
        return moment


def _checked_text(name: str, value: Any, max_length: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(name, f"`{name}` is required: a non-empty string.")
    value = value.strip()
    if len(value) > max_length:
        raise invalid(name, f"`{name}` is longer than {max_length} characters.")
    if "\x00" in value:
        raise invalid(name, f"`{name}` holds a NUL character.")
    return value


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object sent, refused (413) beyond `limit` bytes, declared or streamed."""
    try:
        raw = await bounded_body(request, limit)
    except BodyTooLarge:
        raise AgentError(413, "TOO_LARGE", f"The body exceeds {limit} bytes.") from None
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid(None, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid(None, "The body must be a JSON object.")
    return body


def snapshot_slot(app: Any) -> asyncio.Semaphore:
    """One snapshot at a time per process, its body read only once it has the slot: a snapshot's body
    may be 8 MiB, and parsed JSON takes many times its bytes, so the memory agents can make a process
    hold stays one body's. (Snapshots of one cluster wait for each other on its row anyway.)"""
    slot = getattr(app.state, "snapshot_slot", None)
    if slot is None:
        slot = app.state.snapshot_slot = asyncio.Semaphore(1)
    return slot


# ---------------------------------------------------------------------------------- endpoints

ENDPOINTS: dict[tuple[str, str], Fields] = {}  # (method, path) → the fields it reads
routes: list[Route] = []
Handler = Callable[[AgentCall], Awaitable[tuple[int, dict[str, Any]]]]


def agent_endpoint(method: str, path: str, *, body: tuple[str, ...] = (), query: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Route `path` to the handler: authenticate, read the body, run, answer JSON; an AgentError becomes
    its status and JSON error. The handler reads the declared fields only (`AgentCall`)."""
    fields = Fields(body, query, tuple(re.findall(r"{(\w+)}", path)))

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                agent = await authenticate(request)
                settings = request.app.state.settings
                limit = settings.agent_snapshot_max_body_bytes if path == SNAPSHOT_PATH else settings.max_body_bytes
                async with snapshot_slot(request.app) if path == SNAPSHOT_PATH else contextlib.nullcontext():
                    call = AgentCall(request, agent, fields, await _body(request, limit) if method == "POST" else {})
                    status, answer = await handler(call)
            except AgentError as error:
                return error.response()
            except UserFacingError as error:
                return refused(error).response()
            except LeaseLost:
                return AgentError(
                    409, "LEASE_LOST", "This run is not this claim's: its lease ran out and it was taken back or over, "
                    "or the fencing token is not the claim's. Stop working on it.", "fencingToken",
                ).response()
            return JSONResponse(answer, status_code=status)

        ENDPOINTS[(method, path)] = fields
        routes.append(Route(path, endpoint, methods=[method]))
        return handler

    return register


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
