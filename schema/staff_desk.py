"""The staff desk in GraphQL: failed deliveries (and their retry) and the provider's refused
records. Staff only: the domain (resolvers/staff_desk.py) refuses anyone else, and the type rule
(resolvers/permissions.py) hides these objects from them on any path."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from kabinet.ids import NO_SUCH_ID, pk_of, to_global_id
from models.outbox import Channel, DeliveryStatus
from models.outbox import OutboxMessage as OutboxMessageModel
from models.provider import RefusedRecord as RefusedRecordModel
from resolvers import staff_desk
from resolvers.common import SELECTED
from resolvers.pagination import PageRequest
from resolvers.provider.audit import ActorKind
from schema.batching import expand, selected
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.relay import After, Connection, First, connection_of

described_enum(Channel, "How a message goes out.", {"EMAIL": "An e-mail.", "SMS": "A text message (through the SMS gateway)."}, name="DeliveryChannel")
described_enum(DeliveryStatus, "Where a queued message stands.", {
    "PENDING": "Waiting for its next try.",
    "SENT": "Taken by the mail server or the SMS gateway.",
    "FAILED": "Given up on after the last try.",
})
described_enum(ActorKind, "Who acted on the provider's side.", {
    "STAFF": "A staff member, by e-mail.",
    "SERVICE": "A service account (a provider's program), by name.",
    "CLI": "The provider's operator running `kabinet` on the server, by OS user.",
}, name="ProviderActorKind")


class RecordDoor(Enum):
    IMPORT = "IMPORT"
    API = "API"


described_enum(RecordDoor, "How a provider's record came in.", {
    "IMPORT": "A file read by `kabinet import` (`source` names it).",
    "API": "The provider HTTP API (POST /provider/v1/records/{entity}).",
})


@strawberry.type(description="A message the outbox gave up on after its last try (staff only); `retryDelivery` sends it again.")
class DeliveryFailure:
    id: strawberry.ID = strawberry.field(description="Global id, for `retryDelivery`.")
    channel: Channel = strawberry.field(description="E-mail or SMS.")
    recipient: str = strawberry.field(description="The address or phone it was for.")
    subject: str | None = strawberry.field(description="An e-mail's subject; null for an SMS.")
    template: str | None = strawberry.field(description="The message's template (resolvers/messages/<template>.txt), e.g. `sign_up_code_sms`; null for a text written otherwise.")
    status: DeliveryStatus = strawberry.field(description="FAILED; PENDING once retried, SENT once it went.")
    attempts: int = strawberry.field(description="Tries so far (counted from 0 again on a retry).")
    last_error: str | None = strawberry.field(description="Why the last try failed, as the mail server or gateway said (without credentials or the message's text).")
    failed_at: dt.datetime | None = strawberry.field(description="When it was given up on; null once retried.")
    created_at: dt.datetime = strawberry.field(description="When it was queued.")
    model: strawberry.Private[OutboxMessageModel]

    @classmethod
    def from_model(cls, model: OutboxMessageModel) -> DeliveryFailure:
        return cls(
            id=strawberry.ID(to_global_id("DeliveryFailure", model.id)), channel=model.channel, recipient=model.recipient,
            subject=model.subject or None, template=model.template, status=model.status, attempts=model.attempts,
            last_error=model.last_error, failed_at=model.failed_at, created_at=model.created_at, model=model,
        )


@strawberry.type(description="A record the provider sent that was refused (staff only): which line of what, the field and why.")
class RefusedRecord:
    id: strawberry.ID = strawberry.field(description="Global id.")
    refused_at: dt.datetime = strawberry.field(description="When it was refused.")
    actor_kind: ActorKind = strawberry.field(description="Who sent it: a service account, a staff member or the operator at the CLI.")
    actor: str = strawberry.field(description="The service account's name, the staff member's e-mail or the operator's OS user.")
    door: RecordDoor = strawberry.field(description="A file import or the HTTP API.")
    source: str = strawberry.field(description="The imported file's name, or `api`.")
    entity: str = strawberry.field(description="What the record was, as the provider API names it (`organization`, `ledger_entry`, …).")
    line: int = strawberry.field(description="Its line in the file or request body (a CSV file's data row, the header not counted).")
    external_id: str | None = strawberry.field(description="The provider's own id of the record, when it had one.")
    field: str | None = strawberry.field(description="The record's field at fault, when one is.")
    reason: str = strawberry.field(description="Why it was refused.")
    model: strawberry.Private[RefusedRecordModel]

    @classmethod
    def from_model(cls, model: RefusedRecordModel) -> RefusedRecord:
        return cls(
            id=strawberry.ID(to_global_id("RefusedRecord", model.id)), refused_at=model.created_at,
            actor_kind=ActorKind(model.actor_kind), actor=model.actor,
            door=RecordDoor.IMPORT if model.import_run_id is not None else RecordDoor.API, source=model.source,
            entity=model.entity, line=model.line, external_id=model.external_id, field=model.field, reason=model.reason,
            model=model,
        )


@strawberry.type(description="The monthly invoices and acts due and not published, and why (staff only).")
class WaitingDocuments:
    supplier_configured: bool = strawberry.field(description="Whether the supplier's requisites are configured (`kabinet supplier set`): without them no invoice or act is published.")
    documents: int = strawberry.field(description="Invoices and acts due and not published.")
    organizations: int = strawberry.field(description="The organizations they are for.")
    periods: list[str] = strawberry.field(description="The months they are of, `YYYY-MM`.")
    reason: str | None = strawberry.field(description="Why they wait; null when none does.")


@strawberry.type(description="The result of `retryDelivery`.")
class RetryDeliveryPayload:
    delivery: DeliveryFailure | None = strawberry.field(default=None, description="The message, PENDING again and due now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


def _page_request(info: strawberry.Info, first: int | None, after: str | None) -> PageRequest:
    info.context.require_viewer()
    return PageRequest.from_args({"first": first, "after": after}, info.context.settings.max_page_size)


def _wants_total(info: strawberry.Info) -> bool:
    return "total_count" in selected(info)[SELECTED]


@strawberry.type(description="The provider staff's desk: what failed on the provider's side.")
class StaffDeskQueries:
    @strawberry.field(description="Provider staff only (FORBIDDEN for others): e-mail and SMS the outbox gave up on, newest first.")
    async def delivery_failures(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[DeliveryFailure]:
        page = await staff_desk.delivery_failures(info.context, _page_request(info, first, after), with_total=_wants_total(info))
        return await expand(info, connection_of(DeliveryFailure.from_model)(page))

    @strawberry.field(description="Provider staff only (FORBIDDEN for others): the provider's records that were refused, by import or the HTTP API, newest first.")
    async def refused_records(
        self, info: strawberry.Info, first: First = None, after: After = None,
        entity: Annotated[str | None, strawberry.argument(description="Only records of this entity (`organization`, `ledger_entry`, …).")] = None,
    ) -> Connection[RefusedRecord]:
        page = await staff_desk.refused_records(
            info.context, entity, _page_request(info, first, after), with_total=_wants_total(info)
        )
        return await expand(info, connection_of(RefusedRecord.from_model)(page))

    @strawberry.field(description="Provider staff only (FORBIDDEN for others): the monthly invoices and acts due and not published, and why (e.g. no supplier requisites).")
    async def waiting_documents(self, info: strawberry.Info) -> WaitingDocuments:
        info.context.require_viewer()
        waiting = await staff_desk.waiting_documents(info.context)
        return WaitingDocuments(
            supplier_configured=waiting.supplier_configured, documents=waiting.documents,
            organizations=waiting.organizations, periods=waiting.periods, reason=waiting.reason,
        )


@strawberry.type(description="The provider staff's desk.")
class StaffDeskMutations:
    @strawberry.mutation(description="Provider staff only: send a FAILED message again (PENDING, due now, its tries counted anew); in the provider's audit.")
    @transactional(RetryDeliveryPayload)
    async def retry_delivery(
        self, info: strawberry.Info,
        delivery_id: Annotated[strawberry.ID, strawberry.argument(description="A `DeliveryFailure`'s id.")],
    ) -> RetryDeliveryPayload:
        row = await staff_desk.retry_delivery(info.context, pk_of(delivery_id, "DeliveryFailure") or NO_SUCH_ID)
        return await expand(info, RetryDeliveryPayload(delivery=DeliveryFailure.from_model(row)))
