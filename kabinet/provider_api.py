"""The provider HTTP API: the provider's programs send its data, a line per record.

Why NDJSON over HTTP rather than GraphQL mutations: the programs that send this data are 1C
(1C:Бухгалтерия, 1С:ИТ-Фирма, the service manager), whose integrators have `HTTPСоединение` and
`ЗаписьJSON` at hand and no GraphQL client; writing one JSON object per line is what a 1C export
loop does naturally, and it is the same record format as the files `kabinet import` reads. Each
line is answered on its own (created, updated, unchanged, refused with the field and why), so a
sender corrects and re-sends just the refused lines; re-sending anything is safe.

    POST /provider/v1/records/{entity}   body: NDJSON (a JSON object per line) or a JSON array of
                                         objects; answer: NDJSON, one result per record, in order
    GET  /provider/v1/entities           the entities, the scope each needs, their columns

`Authorization: Bearer kps_…` (a service account's token, `kabinet provider token create`): 401
without a valid one, 403 when it lacks the entity's scope, 404 for an unknown entity, 413 beyond
`provider_max_body_bytes` (TOO_LARGE) or `provider_max_lines` (TOO_MANY_LINES), 400 for a body that starts as a JSON array and is not one. Errors are `{"error": {"code", "message"}}`. Records are applied
(resolvers/provider/records.py) in batches, each in one transaction; their events are announced
as each batch commits. Every request is written to the provider's audit with its counts.

What one request costs is bounded whatever it holds: the whole-body refusals come before any line
is applied; NDJSON is parsed a batch at a time and the answer streamed as each batch commits (never
built whole); a line no record could be is refused unread (records.RECORD_PUNCTUATION); refused
lines kept for the staff desk stop at `provider_max_refusals_kept` (records.RefusalBudget).
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from foundation.logs import current_request
from kabinet.auth import bearer_token
from kabinet.http import BodyTooLarge, bounded_body
from resolvers.provider import records, service_accounts
from resolvers.provider.audit import ActorKind, record_action
from resolvers.provider.records import LineResult, Outcome, ProviderActor, Record, RefusalBudget

log = logging.getLogger("kabinet.provider")

BATCH = 500  # records per transaction: big enough to be fast, small enough not to hold locks long
BATCH_BYTES = 1024 * 1024  # a batch ends sooner when its lines are long: the records parsed at once stay small
ARRAY_PUNCTUATION_PER_RECORD = 64  # a JSON array body's `,` `:` `{` `[` per record it may carry (records.punctuation)
NDJSON = "application/x-ndjson"
_WHITESPACE = re.compile(rb"\s*")
UTF8_BOM = b"\xef\xbb\xbf"  # 1C's ЗаписьТекста writes one at the start of a UTF-8 text by default


class ProviderError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="kabinet-provider"'} if self.status == 401 else None
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status, headers=headers)


async def _actor(request: Request) -> ProviderActor:
    actor = await service_accounts.authenticate(bearer_token(request.headers.get("authorization")))
    if actor is None:
        raise ProviderError(401, "UNAUTHENTICATED", "A valid service account token is required (Authorization: Bearer kps_…).")
    actor.timezone = request.app.state.settings.provider_timezone  # how its 1C date-times are read
    if (record := current_request.get()) is not None:  # the request's log line: the account's name, never the token
        record.viewer = f"service:{actor.name}"
    return actor


def provider_endpoint(handler: Callable[[Request, ProviderActor], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate the service account, run; a ProviderError becomes its status and JSON error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, await _actor(request))
        except ProviderError as error:
            return error.response()

    return endpoint


# ---------------------------------------------------------------------------------- input

async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The body, refused (413) once it exceeds the limit (the records' by default), declared or streamed."""
    limit = limit or request.app.state.settings.provider_max_body_bytes
    try:
        return await bounded_body(request, limit)
    except BodyTooLarge:
        raise ProviderError(413, "TOO_LARGE", f"The body exceeds {limit} bytes: send the records in several requests.") from None


def _not_an_object(line: int, entity: str, reason: str) -> LineResult:
    return LineResult(line, entity, None, Outcome.REFUSED, None, reason)


Items = Iterator[tuple[Record | LineResult, int]]  # each line's record (or refusal) and its bytes


def parse(entity: str, body: bytes, max_lines: int) -> Items:
    """The body's records, numbered from 1, in order, with the answers to the lines that are not JSON
    objects in their place; read lazily, a batch at a time. NDJSON lines are numbered as the body's
    lines (a blank line is skipped and answered nothing); an array's records by their place in it.
    What is wrong with the body as a whole is refused here, before any line is applied: 413 beyond
    `max_lines` (an NDJSON body's lines, blank ones counted), 400 for a broken JSON array."""
    start = len(UTF8_BOM) if body.startswith(UTF8_BOM) else 0
    first = _WHITESPACE.match(body, start).end()
    if body[first:first + 1] == b"[":
        return _array_items(entity, body[first:], max_lines)
    lines = body.count(b"\n", start) + (0 if body.endswith(b"\n") or len(body) == start else 1)
    if lines > max_lines:
        raise _too_many_lines(max_lines)
    return _ndjson_items(entity, body, start)


def _too_many_lines(max_lines: int) -> ProviderError:
    return ProviderError(413, "TOO_MANY_LINES", f"More than {max_lines} lines: send at most {max_lines} records per request.")


def _ndjson_items(entity: str, body: bytes, start: int) -> Items:
    number = 0
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        number += 1
        raw = body[start:end]
        start = end + 1
        if raw.strip():
            values = records.record_of_line(number, raw)
            yield (Record(number, values) if not isinstance(values, LineResult) else _of(values, entity)), len(raw)


def _array_items(entity: str, body: bytes, max_lines: int) -> Items:
    """A JSON array is parsed whole (for large bodies NDJSON is lighter): refused unread when it holds
    more punctuation than `max_lines` records would, so that parsing it takes a bounded memory."""
    if records.punctuation(body) > ARRAY_PUNCTUATION_PER_RECORD * max_lines:
        raise ProviderError(413, "TOO_MANY_LINES", (
            f"More values than {max_lines} records hold: send at most {max_lines} records per request, or NDJSON."))
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProviderError(400, "INVALID", f"The body starts as a JSON array but is not valid JSON: {error}.") from None
    if not isinstance(items, list):
        raise ProviderError(400, "INVALID", "The body is neither NDJSON nor a JSON array.")
    if len(items) > max_lines:
        raise _too_many_lines(max_lines)
    return _array_records(entity, items)


def _array_records(entity: str, items: list[Any]) -> Items:
    for number, item in enumerate(items, start=1):
        items[number - 1] = None  # what was answered is let go
        if isinstance(item, dict):
            refused = records.binary_refused(number, item)
            yield (Record(number, item) if refused is None else _of(refused, entity)), 0
        else:
            yield _not_an_object(number, entity, f"Not a JSON object but {type(item).__name__}."), 0


def _of(result: LineResult, entity: str) -> LineResult:
    result.entity = entity
    return result


def batches(items: Items) -> Iterator[list[Record | LineResult]]:
    """`BATCH` lines at a time, fewer when their lines are long (`BATCH_BYTES`): what one batch holds parsed is bounded."""
    batch: list[Record | LineResult] = []
    held = 0
    for item, size in items:
        batch.append(item)
        held += size
        if len(batch) >= BATCH or held >= BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


# ---------------------------------------------------------------------------------- endpoints

@provider_endpoint
async def post_records(request: Request, actor: ProviderActor) -> Response:
    """Apply the records of one entity; answer each, in order, as NDJSON, streamed a batch at a time."""
    name = request.path_params["entity"]
    kind = records.ENTITIES.get(name)
    if kind is None:
        raise ProviderError(404, "NOT_FOUND", f"Unknown entity {name!r}; known: {', '.join(sorted(records.ENTITIES))}.")
    if not actor.may(kind.scope):
        await record_action(ActorKind.SERVICE, actor.name, f"records.{name}", None, {"denied": f"needs {kind.scope}"})
        raise ProviderError(403, "FORBIDDEN", f"Writing {name} needs the scope {kind.scope}; this token has {', '.join(sorted(actor.scopes)) or 'none'}.")
    settings = request.app.state.settings
    items = parse(name, await read_body(request), settings.provider_max_lines)
    refusals = RefusalBudget(settings.provider_max_refusals_kept)
    return StreamingResponse(_answer(actor, name, items, refusals, request.app.state.broadcast), media_type=NDJSON)


async def _answer(actor: ProviderActor, name: str, items: Items, refusals: RefusalBudget, broadcast: Any) -> AsyncIterator[bytes]:
    """Each batch applied in its transaction (a failed one rolls back and is answered refused: the
    other batches still apply), then its answer lines sent: the answer is never held whole. A client
    that hangs up ends the request after the batch under way (cancelling it inside its transaction
    left SQLite's connection locked). The request's counts go to the provider's audit however it
    ends (a client gone midway: `cut`)."""
    counts: Counter[str] = Counter()
    finished = False
    try:
        for batch in batches(items):
            with anyio.CancelScope(shield=True):  # a client gone midway stops the request between batches, never inside one's transaction
                results = await records.apply(actor, name, batch, broadcast, answer_failure=True, refusals=refusals)
            counts.update(result.outcome.value for result in results)
            yield b"".join(orjson.dumps(result.as_json()) + b"\n" for result in results)
        finished = True
    finally:
        details: dict[str, Any] = {"lines": sum(counts.values()), **{outcome.value: counts.get(outcome.value, 0) for outcome in Outcome}}
        if refusals.refused > refusals.limit:
            details["refusedNotKept"] = refusals.refused - refusals.limit
        if not finished:
            details["cut"] = True
        with anyio.CancelScope(shield=True):
            await record_action(ActorKind.SERVICE, actor.name, f"records.{name}", None, details)


@provider_endpoint
async def entities(request: Request, actor: ProviderActor) -> Response:
    """What may be sent: every entity with the scope it needs and its columns (a CSV header's order)."""
    return JSONResponse({
        "entities": [
            {"name": kind.name, "scope": kind.scope, "columns": list(kind.columns), "description": kind.description}
            for kind in sorted(records.ENTITIES.values(), key=lambda kind: kind.name)
        ],
        "scopes": records.SCOPES,
        "yourScopes": sorted(actor.scopes),
    })


routes = [
    Route("/provider/v1/records/{entity}", post_records, methods=["POST"]),
    Route("/provider/v1/entities", entities, methods=["GET"]),
]
