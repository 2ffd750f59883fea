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
`provider_max_body_bytes`, 400 for a body that starts as a JSON array and is not one. Errors are `{"error": {"code", "message"}}`. Records are applied
(resolvers/provider/records.py) in batches, each in one transaction; their events are announced
as each batch commits. Every request is written to the provider's audit with its counts.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kabinet.auth import bearer_token
from resolvers.events import PendingAnnouncements
from resolvers.provider import records, service_accounts
from resolvers.provider.audit import ActorKind, record_action
from resolvers.provider.records import LineResult, Outcome, ProviderActor, Record

log = logging.getLogger("kabinet.provider")

BATCH = 500  # records per transaction: big enough to be fast, small enough not to hold locks long
NDJSON = "application/x-ndjson"
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

async def _body(request: Request) -> bytes:
    """The body, refused (413) once it exceeds the limit, declared or streamed."""
    limit = request.app.state.settings.provider_max_body_bytes
    too_large = ProviderError(413, "TOO_LARGE", f"The body exceeds {limit} bytes: send the records in several requests.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _not_an_object(line: int, entity: str, reason: str) -> LineResult:
    return LineResult(line, entity, None, Outcome.REFUSED, None, reason)


def parse(entity: str, body: bytes) -> tuple[list[Record], list[LineResult]]:
    """The records of a body (NDJSON, or a JSON array), numbered from 1, and the answers to the lines
    that are not JSON objects. NDJSON lines are numbered as the body's lines (a blank line is skipped
    and answered nothing); an array's records by their place in it."""
    body = body.removeprefix(UTF8_BOM)
    found: list[Record] = []
    refused: list[LineResult] = []
    if body.lstrip()[:1] == b"[":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ProviderError(400, "INVALID", f"The body starts as a JSON array but is not valid JSON: {error}.") from None
        if not isinstance(items, list):
            raise ProviderError(400, "INVALID", "The body is neither NDJSON nor a JSON array.")
        for number, item in enumerate(items, start=1):
            if isinstance(item, dict):
                found.append(Record(number, item))
            else:
                refused.append(_not_an_object(number, entity, f"Not a JSON object but {type(item).__name__}."))
        return found, refused
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            reason = f"Not valid JSON: {error}." if _is_utf8(raw) else "Not UTF-8 (windows-1251?): send the body in UTF-8."
            refused.append(_not_an_object(number, entity, reason))
            continue
        if isinstance(item, dict):
            found.append(Record(number, item))
        else:
            refused.append(_not_an_object(number, entity, "Not a JSON object: each line is one record, {\"external_id\": …, …}."))
    return found, refused


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------------- endpoints

@provider_endpoint
async def post_records(request: Request, actor: ProviderActor) -> Response:
    """Apply the records of one entity; answer each, in order, as NDJSON."""
    name = request.path_params["entity"]
    kind = records.ENTITIES.get(name)
    if kind is None:
        raise ProviderError(404, "NOT_FOUND", f"Unknown entity {name!r}; known: {', '.join(sorted(records.ENTITIES))}.")
    if not actor.may(kind.scope):
        await record_action(ActorKind.SERVICE, actor.name, f"records.{name}", None, {"denied": f"needs {kind.scope}"})
        raise ProviderError(403, "FORBIDDEN", f"Writing {name} needs the scope {kind.scope}; this token has {', '.join(sorted(actor.scopes)) or 'none'}.")
    found, results = parse(name, await _body(request))
    broadcast = request.app.state.broadcast
    for start in range(0, len(found), BATCH):
        batch = found[start:start + BATCH]
        try:
            results += await records.apply(actor, name, batch, broadcast)
        except Exception:  # the batch rolled back: answered refused, the other batches still applied
            log.exception("provider records: a batch of %d %s records failed (lines %d–%d)", len(batch), name, batch[0].line, batch[-1].line)
            actor.changed, actor.announcements = {}, PendingAnnouncements()  # events of the rolled back batch
            reason = "Not applied: kabinet failed on this batch (logged for the provider); send these lines again."
            results += [LineResult(r.line, name, r.external_id, Outcome.REFUSED, None, reason) for r in batch]
    results.sort(key=lambda result: result.line)
    counts = Counter(result.outcome.value for result in results)
    await record_action(
        ActorKind.SERVICE, actor.name, f"records.{name}", None,
        {"lines": len(results), **{outcome.value: counts.get(outcome.value, 0) for outcome in Outcome}},
    )
    answer = b"".join(orjson.dumps(result.as_json()) + b"\n" for result in results)
    return Response(answer, media_type=NDJSON)


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
