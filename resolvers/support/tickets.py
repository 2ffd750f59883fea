"""Support tickets («Написать в техподдержку», «Написать менеджеру»): one function per transition,
each recording the ticket's event (topic `tickets`) for the organization's live dashboards.

    create_ticket ─► OPEN ──staff_answer──► ANSWERED ──comment──► OPEN
                      │  ▲                     │
                      │  └──────reopen─────────┼──── CLOSED ◄── close (author, OWNER/ADMIN, staff)
                      └──staff_set_status (OPEN / WAITING / ANSWERED / CLOSED)

Who: OWNER and ADMIN see and write in every ticket of their organization; ACCOUNTANT and USER
write tickets and see their own (resolvers/common/permissions.py TICKETS_IN_ORGANIZATION); the
provider's staff (resolvers/common/staff_rights.py: a staff member in GraphQL, a `staff` token in the
provider API) see every ticket, answer and set the status. The history is the comments list: each
entry a comment, a status change, or both (a staff answer).

Whatever a member sends is bounded: subject and text lengths, and per organization in the last 24
hours the tickets, comments and attachment bytes (LIMIT_EXCEEDED). An attachment is one of the
allowed types, recognised by its content as well as its name, at most ATTACHMENT_MAX_BYTES; it is
served only by the download door (kabinet/ticket_files.py), which asks `attachment_for_download`
again on every download.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.cloud import Database
from models.identity import User
from models.organizations import Organization
from models.locks import one_at_a_time
from models.products import Product
from models.tickets import SupportTicket, TicketAddressee, TicketAttachment, TicketComment, TicketKind, TicketStatus
from resolvers.common import audit
from resolvers.common import notifications
from resolvers.common.gates import page_request, related_one, wants_total
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError, forbidden, not_found
from resolvers.common.pagination import Ordering, Page, PageRequest, load_pages
from resolvers.common.validation import non_empty, optional_text
from resolvers.common.permissions import TICKETS_IN_ORGANIZATION, TYPE_RULES, Permission, Sight
from resolvers.common.staff_rights import Caller, StaffMember, staff_for_change, staff_for_reading

TICKETS = "tickets"  # the event topic; kinds: CREATED, COMMENTED, STATUS_CHANGED, ATTACHED

SUBJECT_MAX = 200
TEXT_MAX = 10_000
STAFF_NAME_MAX = 200
TICKETS_PER_DAY = 20  # per organization, in the last 24 hours
COMMENTS_PER_DAY = 200  # per organization, in the last 24 hours (the first text of a ticket included)
DAY = dt.timedelta(hours=24)

TICKET_ORDER = Ordering(("-updated_at",))
COMMENT_ORDER = Ordering(("created_at",))
ATTACHMENT_ORDER = Ordering(("created_at",))
PROVIDER_RECORDS = "Учётная система поставщика"  # who closes a ticket its records settled (`settle`)
STAFF_ONLY = "Only the provider's staff answer tickets and set their status."

# What the author and the organization's members may set; staff set any status.
REOPENABLE = frozenset({TicketStatus.CLOSED})


# ---------------------------------------------------------------------------------------- who sees what


async def _may_see(ctx: RequestContext, ticket: SupportTicket) -> bool:
    """The role table's Ticket rule for a member; staff are asked through `staff_rights` instead."""
    await ctx.memberships()
    return TICKETS_IN_ORGANIZATION(ctx, ticket) is Sight.SEE


async def ticket_to_write(ctx: RequestContext, ticket_id: uuid.UUID, field: str = "ticket_id") -> SupportTicket:
    """The ticket, locked, when the viewer may see it as a member; NOT_FOUND otherwise (another
    organization's ticket, or a colleague's for a USER/ACCOUNTANT: nothing revealed)."""
    ctx.require_viewer()
    ticket = await SupportTicket.filter(id=ticket_id).select_for_update().first()
    if ticket is None or not await _may_see(ctx, ticket):
        raise not_found("ticket", field)
    return ticket


async def count_since(model: type, organization_id: uuid.UUID, **conditions: Any) -> int:
    return await model.filter(organization_id=organization_id, created_at__gte=utcnow() - DAY, **conditions).count()


async def one_writer(organization_id: uuid.UUID) -> None:
    """The organization's tickets, messages and files are counted and written one request at a time
    until the transaction ends (else requests sent at once each see room under the daily limits).
    Taken after any ticket's row lock, never before one."""
    await one_at_a_time(SupportTicket, [f"ticket-limits:{organization_id}"])


async def within_daily(model: type, organization_id: uuid.UUID, limit: int, what: str, field: str | None) -> None:
    """LIMIT_EXCEEDED once the organization's members wrote `limit` rows of `model` in 24 hours (the
    staff's entries not counted: the provider's answers never stop its customers)."""
    await one_writer(organization_id)
    conditions = {"from_staff": False} if model is TicketComment else {}
    if await count_since(model, organization_id, **conditions) >= limit:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"Your organization has sent {limit} {what} in the last 24 hours, the most a day: try again later "
            "or call the support line.",
            field,
        )


async def record_change(actor: Any, ticket: SupportTicket, kind: str, comment: TicketComment | None = None) -> None:
    await actor.record_event(ticket.organization_id, TICKETS, kind, {
        "ticket_id": str(ticket.id), "author_id": str(ticket.author_id) if ticket.author_id else None,
        "status": ticket.status.value, "comment_id": str(comment.id) if comment else None,
    })


def touch(ticket: SupportTicket, status: TicketStatus | None = None) -> list[str]:
    ticket.updated_at = utcnow()
    fields = ["updated_at"]
    if status is not None and status != ticket.status:
        ticket.status = status
        ticket.closed_at = ticket.updated_at if status == TicketStatus.CLOSED else None
        fields += ["status", "closed_at"]
    return fields


# ---------------------------------------------------------------------------------------- transitions


async def create_ticket(
    actor: RequestContext,
    organization_id: uuid.UUID,
    subject: str,
    text: str,
    *,
    kind: TicketKind = TicketKind.QUESTION,
    addressee: TicketAddressee = TicketAddressee.SUPPORT,
    database_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
) -> SupportTicket:
    """A new OPEN ticket of the organization, written by the signed-in member `actor` (any role),
    its first comment `text`. The public door of other domains too: a requisites change or a tariff
    request calls it with its `kind` (after checking its own rule of who may ask). The database and
    product, when given, must be the organization's (and, for a USER, a database granted to them).
    Refusals: NOT_FOUND (not a member; an unknown database or product), INVALID (empty or too long
    subject or text), LIMIT_EXCEEDED (TICKETS_PER_DAY tickets of the organization in 24 hours)."""
    viewer = actor.require_viewer()
    memberships = await actor.memberships()
    membership = memberships.get(organization_id)
    if membership is None:
        raise not_found("organization", "organization_id")
    if not actor.may(organization_id, Permission.WRITE_TICKETS):
        raise UserFacingError(ErrorCode.FORBIDDEN, "Your role may not write to support.")
    subject = non_empty(subject, "subject", "The subject", SUBJECT_MAX)
    body = non_empty(text, "text", "The text", TEXT_MAX)
    if database_id is not None:
        database = await Database.get_or_none(id=database_id, organization_id=organization_id)
        if database is None or TYPE_RULES["Database"](actor, database) is not Sight.SEE:
            raise not_found("database", "database_id")
    if product_id is not None and not await Product.exists(id=product_id, organization_id=organization_id):
        raise not_found("product", "product_id")
    return await open_ticket(
        actor, organization_id, await User.get(id=viewer.user_id), subject, body,
        kind=kind, addressee=addressee, database_id=database_id, product_id=product_id,
    )


async def open_ticket(
    actor: Any, organization_id: uuid.UUID, user: User, subject: str, body: str, *,
    kind: TicketKind = TicketKind.QUESTION, addressee: TicketAddressee = TicketAddressee.SUPPORT,
    database_id: uuid.UUID | None = None, product_id: uuid.UUID | None = None,
) -> SupportTicket:
    """A new OPEN ticket by `user`, for a caller that has checked who may ask (`create_ticket`, a
    requisites change, a tariff request): the daily limits, the ticket, its first comment, the audit
    entry and the event. `subject` and `body` as checked by the caller."""
    await within_daily(SupportTicket, organization_id, TICKETS_PER_DAY, "tickets", "organization_id")
    await within_daily(TicketComment, organization_id, COMMENTS_PER_DAY, "messages", "organization_id")
    ticket = await SupportTicket.create(
        organization_id=organization_id, author_id=user.id, author_name=user.full_name, subject=subject,
        status=TicketStatus.OPEN, addressee=addressee, kind=kind, database_id=database_id, product_id=product_id,
        updated_at=utcnow(),
    )
    comment = await TicketComment.create(
        ticket=ticket, organization_id=organization_id, author_id=user.id, author_name=user.full_name, text=body,
        status_to=TicketStatus.OPEN,
    )
    await audit.record(
        actor, "ticket.create", organization_id=organization_id, object_type="Ticket", object_id=ticket.id,
        details={"kind": kind.value, "addressee": addressee.value},
    )
    await record_change(actor, ticket, "CREATED", comment)
    return ticket


async def comment(ctx: RequestContext, ticket_id: uuid.UUID, text: str) -> tuple[SupportTicket, TicketComment]:
    """A member's comment on a ticket they see. An ANSWERED ticket goes back to OPEN (the provider's
    turn again); a CLOSED one takes no comment (reopen it first: CONFLICT)."""
    viewer = ctx.require_viewer()
    ticket = await ticket_to_write(ctx, ticket_id)
    body = non_empty(text, "text", "The text", TEXT_MAX)
    if ticket.status == TicketStatus.CLOSED:
        raise UserFacingError(ErrorCode.CONFLICT, "The ticket is closed: reopen it to write more.", "ticket_id")
    await within_daily(TicketComment, ticket.organization_id, COMMENTS_PER_DAY, "messages", "ticket_id")
    status = TicketStatus.OPEN if ticket.status == TicketStatus.ANSWERED else None
    user = await User.get(id=viewer.user_id)
    entry = await TicketComment.create(
        ticket=ticket, organization_id=ticket.organization_id, author_id=user.id, author_name=user.full_name,
        text=body, status_to=status,
    )
    await ticket.save(update_fields=touch(ticket, status))
    await record_change(ctx, ticket, "COMMENTED", entry)
    return ticket, entry


async def _member_sets(ctx: RequestContext, ticket_id: uuid.UUID, status: TicketStatus, allowed_from: set[TicketStatus],
                       refusal: str, action: str) -> SupportTicket:
    viewer = ctx.require_viewer()
    ticket = await ticket_to_write(ctx, ticket_id)
    if ticket.status not in allowed_from:
        raise UserFacingError(ErrorCode.CONFLICT, refusal, "ticket_id")
    # a history entry each: closing and reopening count as messages (else they would be unbounded)
    await within_daily(TicketComment, ticket.organization_id, COMMENTS_PER_DAY, "messages", "ticket_id")
    user = await User.get(id=viewer.user_id)
    entry = await TicketComment.create(
        ticket=ticket, organization_id=ticket.organization_id, author_id=user.id, author_name=user.full_name,
        status_to=status,
    )
    await ticket.save(update_fields=touch(ticket, status))
    await audit.record(ctx, action, organization_id=ticket.organization_id, object_type="Ticket", object_id=ticket.id)
    await record_change(ctx, ticket, "STATUS_CHANGED", entry)
    return ticket


async def close(ctx: RequestContext, ticket_id: uuid.UUID) -> SupportTicket:
    """The question is settled: CLOSED, by its author or the organization's OWNER/ADMIN."""
    return await _member_sets(
        ctx, ticket_id, TicketStatus.CLOSED, {TicketStatus.OPEN, TicketStatus.ANSWERED, TicketStatus.WAITING},
        "The ticket is already closed.", "ticket.close",
    )


async def reopen(ctx: RequestContext, ticket_id: uuid.UUID) -> SupportTicket:
    """A CLOSED ticket is OPEN again (the same question came back)."""
    return await _member_sets(
        ctx, ticket_id, TicketStatus.OPEN, set(REOPENABLE), "Only a closed ticket is reopened.", "ticket.reopen",
    )


def _staff_name(staff: StaffMember, given: str | None) -> str:
    """Who answered, as the customer reads it: the name given (the provider API's `staffName`), the
    staff member's full name, or the service account's name."""
    return optional_text(given, "staff_name", "The staff name", STAFF_NAME_MAX) or (staff.user.full_name if staff.user is not None else staff.name)


async def _staff_ticket(ticket_id: uuid.UUID) -> SupportTicket:
    ticket = await SupportTicket.filter(id=ticket_id).select_for_update().first()
    if ticket is None:
        raise not_found("ticket", "ticket_id")
    return ticket


async def staff_answer(
    caller: Caller, ticket_id: uuid.UUID, text: str, *, staff_name: str | None = None,
) -> tuple[SupportTicket, TicketComment]:
    """The provider's answer: a staff comment that makes the ticket ANSWERED (a CLOSED one too: the
    provider may add to it), and a letter to its author (`_mail_answer`)."""
    staff = await staff_for_change(caller, STAFF_ONLY)
    ticket = await _staff_ticket(ticket_id)
    body = non_empty(text, "text", "The text", TEXT_MAX)
    name = _staff_name(staff, staff_name)
    entry = await TicketComment.create(
        ticket=ticket, organization_id=ticket.organization_id, author_id=staff.user.id if staff.user else None,
        author_name=name, from_staff=True, text=body, status_to=TicketStatus.ANSWERED,
    )
    await ticket.save(update_fields=touch(ticket, TicketStatus.ANSWERED))
    await staff.audit("ticket.answer", str(ticket.id), {"organizationId": str(ticket.organization_id)})
    await _mail_answer(caller, ticket, entry)
    await record_change(caller, ticket, "COMMENTED", entry)
    return ticket, entry


async def settle(actor: Any, ticket_id: uuid.UUID, note: str) -> SupportTicket | None:
    """The provider's own records settled what a ticket asked (a requisites change confirmed, or given
    up for another): CLOSED with an entry saying so. A ticket already closed is left as it is."""
    ticket = await SupportTicket.filter(id=ticket_id).select_for_update().first()
    if ticket is None or ticket.status == TicketStatus.CLOSED:
        return ticket
    entry = await TicketComment.create(
        ticket=ticket, organization_id=ticket.organization_id, author_name=PROVIDER_RECORDS, from_staff=True,
        text=note, status_to=TicketStatus.CLOSED,
    )
    await ticket.save(update_fields=touch(ticket, TicketStatus.CLOSED))
    await record_change(actor, ticket, "STATUS_CHANGED", entry)
    return ticket


async def staff_set_status(
    caller: Caller, ticket_id: uuid.UUID, status: TicketStatus, *, staff_name: str | None = None,
) -> SupportTicket:
    """The provider sets any status (WAITING while it works on it, CLOSED when settled…); a history
    entry says so. Setting the status it has is CONFLICT."""
    staff = await staff_for_change(caller, STAFF_ONLY)
    ticket = await _staff_ticket(ticket_id)
    if ticket.status == status:
        raise UserFacingError(ErrorCode.CONFLICT, f"The ticket is {status.value} already.", "status")
    entry = await TicketComment.create(
        ticket=ticket, organization_id=ticket.organization_id, author_id=staff.user.id if staff.user else None,
        author_name=_staff_name(staff, staff_name), from_staff=True, status_to=status,
    )
    await ticket.save(update_fields=touch(ticket, status))
    await staff.audit("ticket.status", str(ticket.id), {"organizationId": str(ticket.organization_id), "status": status.value})
    await record_change(caller, ticket, "STATUS_CHANGED", entry)
    return ticket


async def _mail_answer(caller: Caller, ticket: SupportTicket, entry: TicketComment) -> None:
    """The letter to the ticket's author that the provider answered, as their notification settings
    say (resolvers/common/notifications.py `ticket_answered`: whether, when, in a digest)."""
    if ticket.author_id is None:
        return
    author = await User.get_or_none(id=ticket.author_id)
    if author is None:
        return
    organization = await Organization.get(id=ticket.organization_id)
    await notifications.ticket_answered(caller, organization, author, ticket.subject, entry.author_name, entry.text or "")


async def attached(ctx: RequestContext, ticket: SupportTicket) -> None:
    """A file was attached (resolvers/support/attachments.py `attach`): the ticket moves up, its event."""
    await ticket.save(update_fields=touch(ticket))
    await record_change(ctx, ticket, "ATTACHED")


# ---------------------------------------------------------------------------------------- reading


def _status_filter(args: dict[str, Any]) -> Q | None:
    return Q(status=args["status"]) if args.get("status") else None


async def tickets_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list[Page | Refusal]:
    """Organization.tickets: each organization's tickets the viewer sees, the last changed first
    (FORBIDDEN where the role sees none). Two statements at most: the organizations where the viewer
    sees all, and where only their own."""
    await ctx.memberships()
    request = page_request(ctx, args)
    extra = _status_filter(args)
    full, own = [], []
    pages: dict[uuid.UUID, Page | Refusal] = {}
    for org in orgs:
        seen = TICKETS_IN_ORGANIZATION.scope(ctx, org.id)
        if seen.sight is not Sight.SEE:
            pages[org.id] = forbidden("tickets")
        else:
            (own if seen.narrowing is not None else full).append(org.id)
    if full:
        pages.update(await load_pages(
            SupportTicket, "organization_id", full, TICKET_ORDER, request, filters=extra, with_total=wants_total(args),
        ))
    if own:
        viewer = ctx.require_viewer()
        mine = Q(author_id=viewer.user_id) & extra if extra is not None else Q(author_id=viewer.user_id)
        pages.update(await load_pages(
            SupportTicket, "organization_id", own, TICKET_ORDER, request, filters=mine, with_total=wants_total(args),
        ))
    return [pages[org.id] for org in orgs]


async def staff_tickets(
    caller: Caller, status: TicketStatus | None, addressee: TicketAddressee | None, page: PageRequest,
    *, with_total: bool = False,
) -> Page:
    """Every organization's tickets for the provider's staff, the last changed first."""
    await staff_for_reading(caller, "Only the provider's staff see every organization's tickets.")
    conditions: dict[str, Any] = {}
    if status is not None:
        conditions["status"] = status
    if addressee is not None:
        conditions["addressee"] = addressee
    pages = await load_pages(
        SupportTicket, None, [], TICKET_ORDER, page, filters=Q(**conditions) if conditions else None, with_total=with_total,
    )
    return pages[None]


def _with_ticket(rows: list[Any], tickets: dict[uuid.UUID, SupportTicket]) -> None:
    """Hand each comment or attachment its ticket: the role table sees it with its ticket."""
    for row in rows:
        row.ticket = tickets[row.ticket_id]


async def comments_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list[Page]:
    """Ticket.comments: each ticket's history, oldest first, in one statement."""
    pages = await load_pages(
        TicketComment, "ticket_id", [t.id for t in tickets], COMMENT_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    by_id = {t.id: t for t in tickets}
    for page in pages.values():
        _with_ticket(page.items, by_id)
    return [pages[t.id] for t in tickets]


async def attachments_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list[Page]:
    """Ticket.attachments: each ticket's files, oldest first, in one statement (never their bytes)."""
    pages = await load_pages(
        TicketAttachment, "ticket_id", [t.id for t in tickets], ATTACHMENT_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    by_id = {t.id: t for t in tickets}
    for page in pages.values():
        _with_ticket(page.items, by_id)
    return [pages[t.id] for t in tickets]


async def authors_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list:
    return await related_one(User, tickets, "author_id")


async def databases_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list:
    return await related_one(Database, tickets, "database_id")


async def products_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list:
    return await related_one(Product, tickets, "product_id")


async def organization_names_of(ctx: RequestContext, tickets: list[SupportTicket], args: dict[str, Any]) -> list:
    """The name of each ticket's organization (staff read tickets of organizations they are not in)."""
    organizations = await related_one(Organization, tickets, "organization_id")
    return [o.name if o else "" for o in organizations]


async def seed(
    organization_id: uuid.UUID, author: User, subject: str, entries: list[tuple[str, str | None, bool, TicketStatus | None, dt.datetime]],
    *, addressee: TicketAddressee = TicketAddressee.SUPPORT, kind: TicketKind = TicketKind.QUESTION,
) -> SupportTicket:
    """A ticket as it stands, its history (author name, text, from staff, status set, when) made up,
    with no event or letter: for seeding an empty database (the demo)."""
    status = next((s for *_, s, _ in reversed(entries) if s is not None), TicketStatus.OPEN)
    ticket = await SupportTicket.create(
        organization_id=organization_id, author_id=author.id, author_name=author.full_name, subject=subject,
        status=status, addressee=addressee, kind=kind, updated_at=entries[-1][4],
        closed_at=entries[-1][4] if status == TicketStatus.CLOSED else None,
    )
    for name, text, from_staff, status_to, at in entries:
        entry = await TicketComment.create(
            ticket=ticket, organization_id=organization_id, author_id=None if from_staff else author.id,
            author_name=name, from_staff=from_staff, text=text, status_to=status_to,
        )
        await TicketComment.filter(id=entry.id).update(created_at=at)
    await SupportTicket.filter(id=ticket.id).update(created_at=entries[0][4])
    return ticket


def status_named(value: str | None, field: str = "status") -> TicketStatus | None:
    """A status as the provider API names it (`open`, `ANSWERED`…; empty or `all`: None); INVALID otherwise."""
    if value is None or value.strip().lower() in ("", "all"):
        return None
    try:
        return TicketStatus(value.strip().upper())
    except ValueError:
        raise UserFacingError(
            ErrorCode.INVALID, f"`{field}` is one of {', '.join(s.value for s in TicketStatus)} (or all).", field,
        ) from None
