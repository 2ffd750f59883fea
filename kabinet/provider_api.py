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

import datetime as dt
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from kabinet.auth import bearer_token
from kabinet.ids import NO_SUCH_ID, pk_of, to_global_id
from resolvers import moderation, staff_desk
from resolvers.errors import ErrorCode, Refusal, UserFacingError
from resolvers.pagination import Page, PageRequest
from resolvers.provider import records, service_accounts
from resolvers.provider.audit import ActorKind, record_action
from resolvers.provider.records import LineResult, Outcome, ProviderActor, Record

if TYPE_CHECKING:  # rows the resolvers answer with, named for the annotations only
    from models.organizations import Organization
    from models.outbox import OutboxMessage
    from models.provider import RefusedRecord

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
    found, not_records = parse(name, await _body(request))
    items: list[Record | LineResult] = sorted([*found, *not_records], key=lambda item: item.line)
    results: list[LineResult] = []
    for start in range(0, len(items), BATCH):
        # a failed batch rolls back and is answered refused: the other batches still apply
        results += await records.apply(actor, name, items[start:start + BATCH], request.app.state.broadcast, answer_failure=True)
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


# ---------------------------------------------------------------------------------- the staff desk

STATUS_OF = {"FORBIDDEN": 403, "NOT_FOUND": 404, "CONFLICT": 409, "INVALID": 400}


# The domain names what it was given; these requests name it otherwise: the message by the path's id,
# the organization by its INN (and KPP).
REQUEST_FIELD_OF = {"delivery_id": "id", "organization_id": "inn"}


def staff_endpoint(what: str) -> Callable[[Callable[[Request, ProviderActor], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """A provider endpoint that needs staff rights, which the domain decides (resolvers/staff_rights.py:
    a token with the `staff` scope). Run in one transaction, its events announced once it commits; a
    domain refusal becomes its status and `{"error": {code, message, field}}` (403 FORBIDDEN without
    `staff`, written to the provider's audit as a denial). Every request is in the provider's audit:
    a change by the domain function that makes it, a read or a denial here."""

    def decorate(handler: Callable[[Request, ProviderActor], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @provider_endpoint
        @functools.wraps(handler)
        async def endpoint(request: Request, actor: ProviderActor) -> Response:
            try:
                async with in_transaction():
                    response = await handler(request, actor)
                    if request.method == "GET":  # what staff looked at; changes are audited by the domain
                        await record_action(actor.kind, actor.name, f"staff.{what}", None, _audited(request.query_params))
            except (UserFacingError, Refusal) as refusal:
                code = refusal.code.value if isinstance(refusal, UserFacingError) else refusal.code
                code = "INVALID" if code == "BAD_USER_INPUT" else code  # GraphQL's name of it (a cursor that is none)
                if code == "FORBIDDEN":
                    await record_action(actor.kind, actor.name, f"staff.{what}", None, {"denied": "needs the scope staff"})
                    message = f"{refusal.message} This token has {', '.join(sorted(actor.scopes)) or 'no scope'}; it needs staff."
                    raise ProviderError(403, "FORBIDDEN", message) from None
                error = {"code": code, "message": refusal.message}
                if isinstance(refusal, UserFacingError) and refusal.field:
                    error["field"] = REQUEST_FIELD_OF.get(refusal.field, refusal.field)
                return JSONResponse({"error": error}, status_code=STATUS_OF.get(code, 400))
            await actor.announcements.announce(request.app.state.broadcast)
            return response

        return endpoint

    return decorate


def _audited(parameters: Mapping[str, str]) -> dict[str, str]:
    """A request's query parameters as the audit keeps them: what any JSON column takes (no NUL), 200
    characters of each at most (a parameter may be of any length)."""
    return {name[:200].replace("\x00", ""): value[:200].replace("\x00", "") for name, value in parameters.items()}


def _page_request(request: Request) -> PageRequest:
    """`?first=&after=`, checked as GraphQL checks them; refused as this API refuses a bad query:
    400 INVALID naming the parameter (GraphQL's BAD_USER_INPUT is no code of this API)."""
    first, after = request.query_params.get("first"), request.query_params.get("after")
    if first is not None and not (first.isascii() and first.isdigit() and len(first) <= 9):
        raise UserFacingError(ErrorCode.INVALID, "`first` is a whole number.", "first")
    max_page_size = request.app.state.settings.max_page_size
    for field, args in (("first", {"first": int(first) if first is not None else None}), ("after", {"after": after})):
        try:
            PageRequest.from_args(args, max_page_size)
        except Refusal as refusal:
            raise UserFacingError(ErrorCode.INVALID, refusal.message, field) from None
    return PageRequest.from_args({"first": int(first) if first is not None else None, "after": after}, max_page_size)


def _page_json(page: Page, item: Callable[[Any], dict[str, Any]]) -> JSONResponse:
    return JSONResponse({
        "items": [item(row) for row in page.items],
        "hasNextPage": page.has_next_page,
        "endCursor": page.cursor(len(page.items) - 1) if page.items else None,
    })


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        value = orjson.loads(await _body(request) or b"{}")
    except orjson.JSONDecodeError as error:
        raise ProviderError(400, "INVALID", f"The body is not JSON: {error}.") from None
    if not isinstance(value, dict):
        raise ProviderError(400, "INVALID", "The body is one JSON object.")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    """A field of a request's JSON object that is a text (a number is taken as written; absent is
    empty): a list, an object, true or false is refused (400) on the field."""
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserFacingError(ErrorCode.INVALID, f"`{name}` is a string.", name)
    return str(value)


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _delivery(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": to_global_id("DeliveryFailure", message.id), "channel": message.channel.value, "recipient": message.recipient,
        "subject": message.subject or None, "template": message.template, "status": message.status.value,
        "attempts": message.attempts, "lastError": message.last_error, "failedAt": _when(message.failed_at),
        "createdAt": _when(message.created_at),
    }


def _refused(row: RefusedRecord) -> dict[str, Any]:
    return {
        "id": to_global_id("RefusedRecord", row.id), "refusedAt": _when(row.created_at), "actorKind": row.actor_kind,
        "actor": row.actor, "door": "IMPORT" if row.import_run_id else "API", "source": row.source, "entity": row.entity,
        "line": row.line, "externalId": row.external_id, "field": row.field, "reason": row.reason,
    }


def _organization(row: Organization) -> dict[str, Any]:
    return {
        "id": to_global_id("Organization", row.id), "inn": row.inn, "kpp": row.kpp, "name": row.name, "kind": row.kind.value,
        "code": row.code, "moderationStatus": row.moderation_status.value, "moderationNote": row.moderation_note,
        "createdAt": _when(row.created_at),
    }


@staff_endpoint("delivery_failures")
async def delivery_failures(request: Request, actor: ProviderActor) -> Response:
    """E-mail and SMS the outbox gave up on, newest first: `?first=&after=`."""
    return _page_json(await staff_desk.delivery_failures(actor, _page_request(request)), _delivery)


@staff_endpoint("delivery_retry")
async def retry_delivery(request: Request, actor: ProviderActor) -> Response:
    """Send a FAILED message again (its `id` from the list)."""
    message_id = pk_of(request.path_params["id"], "DeliveryFailure") or NO_SUCH_ID
    return JSONResponse({"delivery": _delivery(await staff_desk.retry_delivery(actor, message_id))})


@staff_endpoint("refused_records")
async def refused_records(request: Request, actor: ProviderActor) -> Response:
    """The provider's refused records, newest first: `?entity=&first=&after=`."""
    page = await staff_desk.refused_records(actor, request.query_params.get("entity") or None, _page_request(request))
    return _page_json(page, _refused)


@staff_endpoint("organizations")
async def organizations_for_moderation(request: Request, actor: ProviderActor) -> Response:
    """Organizations by moderation status (`?status=`, PENDING by default; `all`), oldest first."""
    try:
        status = moderation.status_named(request.query_params.get("status", "PENDING"), "status")
    except Refusal as refusal:
        raise UserFacingError(ErrorCode.INVALID, refusal.message, "status") from None
    page = await moderation.organizations_for_moderation(actor, status, _page_request(request))
    return _page_json(page, _organization)


@staff_endpoint("organization_approve")
async def approve_organization(request: Request, actor: ProviderActor) -> Response:
    """Approve an organization named by `{"inn": …, "kpp": …}` (the KPP when several share the INN)."""
    body = await _json_object(request)
    organization_id = await moderation.organization_id_by_inn(actor, _text(body, "inn"), _text(body, "kpp"))
    return JSONResponse({"organization": _organization(await moderation.approve_organization(actor, organization_id))})


@staff_endpoint("organization_reject")
async def reject_organization(request: Request, actor: ProviderActor) -> Response:
    """Reject an organization named by `{"inn": …, "kpp": …, "reason": …}`; the owner is told the reason."""
    body = await _json_object(request)
    reason = _text(body, "reason")
    organization_id = await moderation.organization_id_by_inn(actor, _text(body, "inn"), _text(body, "kpp"))
    row = await moderation.reject_organization(actor, organization_id, reason)
    return JSONResponse({"organization": _organization(row)})


routes = [
    Route("/provider/v1/records/{entity}", post_records, methods=["POST"]),
    Route("/provider/v1/entities", entities, methods=["GET"]),
    Route("/provider/v1/staff/delivery-failures", delivery_failures, methods=["GET"]),
    Route("/provider/v1/staff/delivery-failures/{id}/retry", retry_delivery, methods=["POST"]),
    Route("/provider/v1/staff/refused-records", refused_records, methods=["GET"]),
    Route("/provider/v1/staff/organizations", organizations_for_moderation, methods=["GET"]),
    Route("/provider/v1/staff/organizations/approve", approve_organization, methods=["POST"]),
    Route("/provider/v1/staff/organizations/reject", reject_organization, methods=["POST"]),
]
