"""The provider API's staff desk (`/provider/v1/staff/…`, a service token with the `staff` scope): what
went wrong on the provider's side (undelivered mail, refused records, documents waiting), moderation,
putting people into organizations, and answering support tickets. Each endpoint decodes its input,
calls one resolver as the provider's staff and encodes the answer (resolvers/provider/staff_desk.py,
resolvers/organizations/staff_invitations.py, resolvers/support/tickets.py)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from resolvers.organizations import invite_status, staff_invitations
from resolvers.organizations import moderation
from resolvers.provider import staff_desk
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError
from resolvers.common.pagination import Page, PageRequest
from resolvers.support import tickets
from resolvers.provider.audit import record_action
from resolvers.common.unit_of_work import change
from resolvers.provider.records import ProviderActor

if TYPE_CHECKING:  # rows the resolvers answer with, named for the annotations only
    from models.organizations import Invite, Organization
    from models.outbox import OutboxMessage
    from models.provider import RefusedRecord
    from models.tickets import SupportTicket, TicketComment

log = logging.getLogger("kabinet.provider")
from kabinet.provider_api import ProviderError, provider_endpoint, read_body


STAFF_BODY_BYTES = 64 * 1024  # a staff request's JSON names an organization and a reason: never the records' megabytes
STATUS_OF = {"FORBIDDEN": 403, "NOT_FOUND": 404, "CONFLICT": 409, "INVALID": 400}


# The domain names what it was given; these requests name it otherwise: the message by the path's id,
# the organization by its INN (and KPP).
REQUEST_FIELD_OF = {
    "delivery_id": "id", "organization_id": "inn", "database_ids": "databases", "ticket_id": "id", "staff_name": "staffName",
}


def staff_endpoint(what: str) -> Callable[[Callable[[Request, ProviderActor], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """A provider endpoint that needs staff rights, which the domain decides (resolvers/common/staff_rights.py:
    a token with the `staff` scope). Run in one transaction, its events announced once it commits; a
    domain refusal becomes its status and `{"error": {code, message, field}}` (403 FORBIDDEN without
    `staff`, written to the provider's audit as a denial). Every request is in the provider's audit:
    a change by the domain function that makes it, a read or a denial here."""

    def decorate(handler: Callable[[Request, ProviderActor], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @provider_endpoint
        @functools.wraps(handler)
        async def endpoint(request: Request, actor: ProviderActor) -> Response:
            try:
                async with change(actor, request.app.state.broadcast):
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
        value = orjson.loads(await read_body(request, STAFF_BODY_BYTES) or b"{}")
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
        "createdAt": _when(row.created_at), "fromProvider": row.external_id is not None,
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


@staff_endpoint("waiting_documents")
async def waiting_documents(request: Request, actor: ProviderActor) -> Response:
    """The monthly invoices and acts due and not published, and why."""
    waiting = await staff_desk.waiting_documents(actor)
    return JSONResponse({
        "supplierConfigured": waiting.supplier_configured, "documents": waiting.documents,
        "organizations": waiting.organizations, "periods": waiting.periods, "reason": waiting.reason,
    })


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


def _invitation(row: Invite) -> dict[str, Any]:
    return {
        "id": to_global_id("Invite", row.id), "email": row.email, "phone": row.phone, "role": row.role.value,
        "status": invite_status.effective_status(row).value, "expiresAt": _when(row.expires_at),
    }


def _texts(body: dict[str, Any], name: str) -> list[str]:
    """A field of a request's JSON object that is a list of texts (absent: empty); anything else is
    refused (400) on the field."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UserFacingError(ErrorCode.INVALID, f"`{name}` is a list of strings.", name)
    return value


@staff_endpoint("organization_invite")
async def invite_member(request: Request, actor: ProviderActor) -> Response:
    """Invite someone into the organization named by `{"inn", "kpp"?}`: `{"email"?, "phone"?, "role",
    "databases"?: [external ids]}`, as its owner would (resolvers/organizations/invitations.py staff_invite_member)."""
    body = await _json_object(request)
    organization_id = await moderation.organization_id_by_inn(actor, _text(body, "inn"), _text(body, "kpp"), customer=True)
    role = staff_invitations.role_named(_text(body, "role"))
    databases = await staff_invitations.databases_named(organization_id, _texts(body, "databases"), "database_ids")
    invite = await staff_invitations.staff_invite_member(
        actor, request.app.state.settings, organization_id, _text(body, "email") or None, _text(body, "phone") or None,
        role, databases,
    )
    return JSONResponse({"invitation": _invitation(invite)})


@staff_endpoint("organization_make_owner")
async def make_owner(request: Request, actor: ProviderActor) -> Response:
    """Give the organization named by `{"inn", "kpp"?}`, which has no owner, one: `{"email"?, "phone"?}`
    — a member's address promotes them, any other is invited as the OWNER (staff_make_owner)."""
    body = await _json_object(request)
    organization_id = await moderation.organization_id_by_inn(actor, _text(body, "inn"), _text(body, "kpp"), customer=True)
    made = await staff_invitations.staff_make_owner(
        actor, request.app.state.settings, organization_id, _text(body, "email") or None, _text(body, "phone") or None,
    )
    return JSONResponse({
        "organization": _organization(made.organization), "promoted": made.membership is not None,
        "invitation": _invitation(made.invite) if made.invite is not None else None,
    })


def _ticket(row: SupportTicket) -> dict[str, Any]:
    return {
        "id": to_global_id("Ticket", row.id), "organizationId": to_global_id("Organization", row.organization_id),
        "subject": row.subject, "status": row.status.value, "addressee": row.addressee.value, "kind": row.kind.value,
        "authorName": row.author_name, "createdAt": _when(row.created_at), "updatedAt": _when(row.updated_at),
        "closedAt": _when(row.closed_at),
    }


def _ticket_comment(row: TicketComment) -> dict[str, Any]:
    return {
        "id": to_global_id("TicketComment", row.id), "authorName": row.author_name, "fromStaff": row.from_staff,
        "text": row.text, "statusChangedTo": row.status_to.value if row.status_to else None, "createdAt": _when(row.created_at),
    }


@staff_endpoint("tickets")
async def staff_tickets(request: Request, actor: ProviderActor) -> Response:
    """Every organization's support tickets, the last changed first: `?status=open|answered|waiting|closed|all&first=&after=`."""
    status = tickets.status_named(request.query_params.get("status"))
    return _page_json(await tickets.staff_tickets(actor, status, None, _page_request(request)), _ticket)


@staff_endpoint("ticket_answer")
async def answer_ticket(request: Request, actor: ProviderActor) -> Response:
    """Answer a ticket (`{"text", "staffName"?}`: who answered, as the customer reads it); it becomes ANSWERED."""
    body = await _json_object(request)
    ticket_id = pk_of(request.path_params["id"], "Ticket") or NO_SUCH_ID
    ticket, entry = await tickets.staff_answer(actor, ticket_id, _text(body, "text"), staff_name=_text(body, "staffName") or None)
    return JSONResponse({"ticket": _ticket(ticket), "comment": _ticket_comment(entry)})


@staff_endpoint("ticket_status")
async def set_ticket_status(request: Request, actor: ProviderActor) -> Response:
    """Set a ticket's status: `{"status": "WAITING"|"OPEN"|"ANSWERED"|"CLOSED", "staffName"?}`."""
    body = await _json_object(request)
    ticket_id = pk_of(request.path_params["id"], "Ticket") or NO_SUCH_ID
    status = tickets.status_named(_text(body, "status"))
    if status is None:
        raise UserFacingError(ErrorCode.INVALID, "Give the `status`.", "status")
    ticket = await tickets.staff_set_status(actor, ticket_id, status, staff_name=_text(body, "staffName") or None)
    return JSONResponse({"ticket": _ticket(ticket)})


routes = [
    Route("/provider/v1/staff/delivery-failures", delivery_failures, methods=["GET"]),
    Route("/provider/v1/staff/delivery-failures/{id}/retry", retry_delivery, methods=["POST"]),
    Route("/provider/v1/staff/refused-records", refused_records, methods=["GET"]),
    Route("/provider/v1/staff/waiting-documents", waiting_documents, methods=["GET"]),
    Route("/provider/v1/staff/organizations", organizations_for_moderation, methods=["GET"]),
    Route("/provider/v1/staff/organizations/approve", approve_organization, methods=["POST"]),
    Route("/provider/v1/staff/organizations/reject", reject_organization, methods=["POST"]),
    Route("/provider/v1/staff/organizations/invite", invite_member, methods=["POST"]),
    Route("/provider/v1/staff/organizations/make-owner", make_owner, methods=["POST"]),
    Route("/provider/v1/staff/tickets", staff_tickets, methods=["GET"]),
    Route("/provider/v1/staff/tickets/{id}/answer", answer_ticket, methods=["POST"]),
    Route("/provider/v1/staff/tickets/{id}/status", set_ticket_status, methods=["POST"]),
]
