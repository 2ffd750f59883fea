"""Support tickets' GraphQL face: the types, the members' and the staff's mutations, the staff's
list. The rules are resolvers/support/tickets.py's; this module decodes ids, calls one resolver, maps refusals."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from models.tickets import SupportTicket as TicketModel
from models.tickets import TicketAddressee, TicketKind, TicketStatus
from models.tickets import TicketAttachment as AttachmentModel
from models.tickets import TicketComment as CommentModel
from resolvers.cloud import tariff_requests
from resolvers.support import attachments, tickets
from resolvers.common.gates import SELECTED
from resolvers.common.pagination import PageRequest
from schema.batching import batched, expand, loaded, selected
from schema.cloud import Database
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.identity import User
from schema.products import Product
from schema.relay import After, Connection, First, Node, connection_of

described_enum(TicketStatus, "Where a support ticket stands.", {
    "OPEN": "Waiting for the provider's answer.",
    "ANSWERED": "The provider answered: your turn (a comment makes it OPEN again).",
    "WAITING": "The provider is working on it.",
    "CLOSED": "Settled; `reopenTicket` opens it again.",
})
described_enum(TicketAddressee, "Whom a ticket is written to.", {
    "SUPPORT": "The provider's support line.",
    "MANAGER": "The organization's personal manager («Написать менеджеру»).",
})
described_enum(TicketKind, "What a ticket asks for.", {
    "QUESTION": "A question or a problem.",
    "REQUISITES_CHANGE": "A change of the organization's requisites, for the provider to make.",
    "TARIFF_CHANGE": "Another tariff, or more sessions or databases.",
})


class TicketChangeKind(Enum):
    CREATED = "CREATED"
    COMMENTED = "COMMENTED"
    STATUS_CHANGED = "STATUS_CHANGED"
    ATTACHED = "ATTACHED"


described_enum(TicketChangeKind, "What happened to a ticket.", {
    "CREATED": "A ticket was written.",
    "COMMENTED": "A comment or the provider's answer was added.",
    "STATUS_CHANGED": "Its status changed (closed, reopened, set by the provider).",
    "ATTACHED": "A file was attached.",
})


@strawberry.type(description="One entry of a ticket's history: a comment, a status change, or both (the provider's answer).")
class TicketComment:
    id: strawberry.ID = strawberry.field(description="Opaque id of the entry.")
    author_name: str = strawberry.field(description="Who wrote it: the member's full name, or the provider's staff member.")
    from_staff: bool = strawberry.field(description="Written by the provider's staff.")
    text: str | None = strawberry.field(description="The comment; null for a status change alone.")
    status_changed_to: TicketStatus | None = strawberry.field(description="The status the ticket got with this entry; null for a plain comment.")
    created_at: dt.datetime = strawberry.field(description="When it was written.")
    model: strawberry.Private[CommentModel]

    @classmethod
    def from_model(cls, model: CommentModel) -> TicketComment:
        return cls(
            id=to_global_id("TicketComment", model.id), author_name=model.author_name, from_staff=model.from_staff,
            text=model.text, status_changed_to=model.status_to, created_at=model.created_at, model=model,
        )


@strawberry.type(description="A file attached to a ticket; downloaded only as a file (never shown inline).")
class TicketAttachment:
    id: strawberry.ID = strawberry.field(description="Opaque id of the file.")
    filename: str = strawberry.field(description="The file's name.")
    content_type: str = strawberry.field(description="Its type, as recognised from its content and name.")
    size: int = strawberry.field(description="Size in bytes.")
    from_staff: bool = strawberry.field(description="Attached by the provider's staff.")
    created_at: dt.datetime = strawberry.field(description="When it was attached.")
    model: strawberry.Private[AttachmentModel]

    @classmethod
    def from_model(cls, model: AttachmentModel) -> TicketAttachment:
        return cls(
            id=to_global_id("TicketAttachment", model.id), filename=model.filename, content_type=model.content_type,
            size=model.size, from_staff=model.from_staff, created_at=model.created_at, model=model,
        )

    @strawberry.field(
        description="Short-lived URL that downloads the file (GET, no other credentials needed), for you alone: "
        "whether you may still see the ticket is checked again on download."
    )
    def download_url(self, info: strawberry.Info) -> str:
        return attachments.sign_attachment(info.context.settings, self.model.id, info.context.require_viewer().user_id)


@strawberry.type(description="A question to the provider's support or to the organization's personal manager, with its history.")
class Ticket(Node):
    subject: str = strawberry.field(description="What it is about (at most 200 characters).")
    status: TicketStatus = strawberry.field(description="OPEN, ANSWERED, WAITING or CLOSED.")
    addressee: TicketAddressee = strawberry.field(description="Support, or the personal manager.")
    kind: TicketKind = strawberry.field(description="A question, or a request (requisites, tariff) for the provider.")
    author_name: str = strawberry.field(description="Who wrote it (kept when they leave the organization).")
    created_at: dt.datetime = strawberry.field(description="When it was written.")
    updated_at: dt.datetime = strawberry.field(description="The last comment, file or status change.")
    closed_at: dt.datetime | None = strawberry.field(description="When it was closed; null while not closed.")
    model: strawberry.Private[TicketModel]

    @classmethod
    def from_model(cls, model: TicketModel) -> Ticket:
        return cls(
            id=to_global_id("Ticket", model.id), subject=model.subject, status=model.status, addressee=model.addressee,
            kind=model.kind, author_name=model.author_name, created_at=model.created_at, updated_at=model.updated_at,
            closed_at=model.closed_at, model=model, 
        )

    @strawberry.field(description="Global id of the ticket's organization.")
    def organization_id(self) -> strawberry.ID:
        return strawberry.ID(to_global_id("Organization", self.model.organization_id))

    @strawberry.field(description="The name of the ticket's organization.")
    @batched(tickets.organization_names_of)
    def organization_name(self, info: strawberry.Info) -> str:
        return loaded(self, info)

    @strawberry.field(description="Who wrote it; null when you may not see them (or they were deleted).")
    @batched(tickets.authors_of, to=User.from_model)
    def author(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)

    @strawberry.field(description="The database it is about, if any (null when you may not see it).")
    @batched(tickets.databases_of, to=Database.from_model)
    def database(self, info: strawberry.Info) -> Database | None:
        return loaded(self, info)

    @strawberry.field(description="The product it is about, if any.")
    @batched(tickets.products_of, to=Product.from_model)
    def product(self, info: strawberry.Info) -> Product | None:
        return loaded(self, info)

    @strawberry.field(description="The history, oldest first: the first message, comments, answers and status changes.")
    @batched(tickets.comments_of, to=connection_of(TicketComment.from_model))
    def comments(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[TicketComment]:
        return loaded(self, info)

    @strawberry.field(description="The files attached, oldest first.")
    @batched(tickets.attachments_of, to=connection_of(TicketAttachment.from_model))
    def attachments(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[TicketAttachment]:
        return loaded(self, info)


@strawberry.type(description="A ticket changed: what happened, and the ticket as it is now (a subscription's message).")
class TicketChange:
    kind: TicketChangeKind = strawberry.field(description="What happened.")
    ticket: Ticket = strawberry.field(description="The ticket after the change.")
    at: dt.datetime = strawberry.field(description="When the change was committed.")


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input(description="A new support ticket.")
class CreateTicketInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization it is from.")
    subject: str = strawberry.field(description="What it is about: 1 to 200 characters.")
    text: str = strawberry.field(description="The question: 1 to 10,000 characters.")
    addressee: TicketAddressee = strawberry.field(default=TicketAddressee.SUPPORT, description="SUPPORT, or MANAGER («Написать менеджеру»).")
    database_id: strawberry.ID | None = strawberry.field(default=None, description="The database it is about (one you see).")
    product_id: strawberry.ID | None = strawberry.field(default=None, description="The product it is about.")


@strawberry.input(description="What to ask the provider for: at least one of more sessions, more databases, another tariff.")
class RequestTariffChangeInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    cloud_subscription_id: strawberry.ID | None = strawberry.field(
        default=None, description="Which of its subscriptions; omitted: its main one (`cloudSubscription`)."
    )
    extra_sessions: int | None = strawberry.field(default=None, description="Sessions to add to the limit: 0 to 1000.")
    extra_databases: int | None = strawberry.field(default=None, description="Databases to add to the limit: 0 to 1000.")
    tariff: str | None = strawberry.field(default=None, description="Another tariff, by its name: up to 100 characters.")
    comment: str | None = strawberry.field(default=None, description="Anything else the provider should know: up to 2,000 characters.")


@strawberry.type(description="The ticket after the change.")
class TicketPayload:
    ticket: Ticket | None = strawberry.field(default=None, description="The ticket, changed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The ticket and the new entry of its history.")
class CommentTicketPayload:
    ticket: Ticket | None = strawberry.field(default=None, description="The ticket, changed.")
    comment: TicketComment | None = strawberry.field(default=None, description="The entry written.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The file attached.")
class AttachToTicketPayload:
    attachment: TicketAttachment | None = strawberry.field(default=None, description="The file, with its download URL.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


def _ticket_pk(ticket_id: str):
    return pk_of(ticket_id, "Ticket") or NO_SUCH_ID


TicketId = Annotated[strawberry.ID, strawberry.argument(description="The ticket.")]


@strawberry.type(description="Support tickets: members write, comment, close and reopen; the provider's staff answer.")
class TicketMutations:
    @strawberry.mutation(
        description="Write to support or to your personal manager. Any member; OWNER and ADMIN see every ticket of "
        "the organization, other roles their own. At most 20 tickets and 200 messages per organization in 24 hours "
        "(LIMIT_EXCEEDED)."
    )
    @transactional(TicketPayload)
    async def create_ticket(
        self, info: strawberry.Info,
        input: Annotated[CreateTicketInput, strawberry.argument(description="The organization, subject, text and what it is about.")],
    ) -> TicketPayload:
        ticket = await tickets.create_ticket(
            info.context, pk_of(input.organization_id, "Organization") or NO_SUCH_ID, input.subject, input.text,
            addressee=input.addressee,
            database_id=(pk_of(input.database_id, "Database") or NO_SUCH_ID) if input.database_id else None,
            product_id=(pk_of(input.product_id, "Product") or NO_SUCH_ID) if input.product_id else None,
        )
        return await expand(info, TicketPayload(ticket=Ticket.from_model(ticket)))

    @strawberry.mutation(
        description="Ask the provider for another tariff, more sessions or more databases (1cFresh: «обратиться к "
        "обслуживающей организации»): a TARIFF_CHANGE ticket the provider answers; it changes the subscription by "
        "its own records. OWNER and ADMIN."
    )
    @transactional(TicketPayload)
    async def request_tariff_change(
        self, info: strawberry.Info,
        input: Annotated[RequestTariffChangeInput, strawberry.argument(description="The subscription and what to ask for.")],
    ) -> TicketPayload:
        ticket = await tariff_requests.request_tariff_change(
            info.context, pk_of(input.organization_id, "Organization") or NO_SUCH_ID,
            (pk_of(input.cloud_subscription_id, "CloudSubscription") or NO_SUCH_ID) if input.cloud_subscription_id else None,
            extra_sessions=input.extra_sessions, extra_databases=input.extra_databases, tariff=input.tariff, comment=input.comment,
        )
        return await expand(info, TicketPayload(ticket=Ticket.from_model(ticket)))

    @strawberry.mutation(
        description="Add a comment to a ticket you see (an ANSWERED one becomes OPEN again; a CLOSED one: reopen it first, CONFLICT)."
    )
    @transactional(CommentTicketPayload)
    async def comment_ticket(
        self, info: strawberry.Info, ticket_id: TicketId,
        text: Annotated[str, strawberry.argument(description="The comment: 1 to 10,000 characters.")],
    ) -> CommentTicketPayload:
        ticket, entry = await tickets.comment(info.context, _ticket_pk(ticket_id), text)
        return await expand(info, CommentTicketPayload(ticket=Ticket.from_model(ticket), comment=TicketComment.from_model(entry)))

    @strawberry.mutation(description="Close a ticket you see: the question is settled.")
    @transactional(TicketPayload)
    async def close_ticket(self, info: strawberry.Info, ticket_id: TicketId) -> TicketPayload:
        return await expand(info, TicketPayload(ticket=Ticket.from_model(await tickets.close(info.context, _ticket_pk(ticket_id)))))

    @strawberry.mutation(description="Open a CLOSED ticket again.")
    @transactional(TicketPayload)
    async def reopen_ticket(self, info: strawberry.Info, ticket_id: TicketId) -> TicketPayload:
        return await expand(info, TicketPayload(ticket=Ticket.from_model(await tickets.reopen(info.context, _ticket_pk(ticket_id)))))

    @strawberry.mutation(
        description="Attach a file to a ticket you see: PDF, PNG, JPEG, GIF, WEBP, text (txt, log, csv), doc, docx, xls, "
        "xlsx, odt, ods, zip, 7z or rar, recognised by its content as well as its name (INVALID otherwise); at most "
        "10 MB (and within the request's size limit), 20 files a ticket, 50 MB per organization in 24 hours (LIMIT_EXCEEDED)."
    )
    @transactional(AttachToTicketPayload)
    async def attach_to_ticket(
        self, info: strawberry.Info, ticket_id: TicketId,
        filename: Annotated[str, strawberry.argument(description="The file's name, with its extension.")],
        content_base64: Annotated[str, strawberry.argument(description="The file's bytes, base64.")],
    ) -> AttachToTicketPayload:
        attachment = await attachments.attach(info.context, _ticket_pk(ticket_id), filename, content_base64)
        return await expand(info, AttachToTicketPayload(attachment=TicketAttachment.from_model(attachment)))

    @strawberry.mutation(
        description="Provider staff only: answer a ticket (it becomes ANSWERED; its author gets a letter)."
    )
    @transactional(CommentTicketPayload)
    async def staff_answer_ticket(
        self, info: strawberry.Info, ticket_id: TicketId,
        text: Annotated[str, strawberry.argument(description="The answer: 1 to 10,000 characters.")],
    ) -> CommentTicketPayload:
        ticket, entry = await tickets.staff_answer(info.context, _ticket_pk(ticket_id), text)
        return await expand(info, CommentTicketPayload(ticket=Ticket.from_model(ticket), comment=TicketComment.from_model(entry)))

    @strawberry.mutation(description="Provider staff only: set a ticket's status (e.g. WAITING while working on it).")
    @transactional(TicketPayload)
    async def staff_set_ticket_status(
        self, info: strawberry.Info, ticket_id: TicketId,
        status: Annotated[TicketStatus, strawberry.argument(description="The new status.")],
    ) -> TicketPayload:
        ticket = await tickets.staff_set_status(info.context, _ticket_pk(ticket_id), status)
        return await expand(info, TicketPayload(ticket=Ticket.from_model(ticket)))


@strawberry.type(description="The provider's staff's ticket queue.")
class TicketQueries:
    @strawberry.field(description="Provider staff only (FORBIDDEN for others): every organization's tickets, the last changed first.")
    async def staff_tickets(
        self, info: strawberry.Info,
        status: Annotated[TicketStatus | None, strawberry.argument(description="Only tickets in this status.")] = None,
        addressee: Annotated[TicketAddressee | None, strawberry.argument(description="Only tickets to this addressee.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[Ticket]:
        info.context.require_viewer()
        page = await tickets.staff_tickets(
            info.context, status, addressee,
            PageRequest.from_args({"first": first, "after": after}, info.context.settings.max_page_size),
            with_total="total_count" in selected(info)[SELECTED],
        )
        return await expand(info, connection_of(Ticket.from_model)(page))
