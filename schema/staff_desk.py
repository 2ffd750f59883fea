"""The staff desk in GraphQL: failed deliveries (and their retry), the provider's refused records,
the documents that wait, and putting people into an organization (an invitation with a role; an
owner where there is none). Staff only: the domain (resolvers/provider/staff_desk.py) refuses anyone else, and the type rule
(resolvers/common/permissions.py) hides these objects from them on any path."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from models.organizations import Invite as InviteModel
from models.organizations import InviteStatus, Role
from models.outbox import Channel, DeliveryStatus
from models.outbox import OutboxMessage as OutboxMessageModel
from models.provider import RefusedRecord as RefusedRecordModel
from resolvers.organizations import invite_status, staff_invitations
from resolvers.provider import staff_desk
from resolvers.common.gates import SELECTED
from resolvers.common.pagination import PageRequest
from resolvers.provider.audit import ActorKind
from schema.batching import expand, selected
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.registration import ModeratedOrganization
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
    model: strawberry.Private[staff_desk.WaitingDocuments]  # what the type rule (staff only) is asked about


@strawberry.type(description="An invitation the provider's staff sent into an organization (staff only): the same invitation its owner would send, seen from the staff desk.")
class StaffInvitation:
    id: strawberry.ID = strawberry.field(description="Global id of the invitation (an `Invite` to the organization's managers).")
    email: str | None = strawberry.field(description="Address the invitation was sent to.")
    phone: str | None = strawberry.field(description="Phone the invitation was sent to.")
    role: Role = strawberry.field(description="Role the invitee gets on accepting: OWNER for one sent by `staffMakeOwner`.")
    status: InviteStatus = strawberry.field(description="PENDING, ACCEPTED, REVOKED or EXPIRED.")
    expires_at: dt.datetime = strawberry.field(description="When the invitation link stops working.")
    organization: ModeratedOrganization = strawberry.field(description="The organization it invites into.")
    model: strawberry.Private[InviteModel]

    @classmethod
    def of(cls, model: InviteModel, organization: ModeratedOrganization) -> StaffInvitation:
        return cls(
            id=strawberry.ID(to_global_id("Invite", model.id)), email=model.email, phone=model.phone, role=model.role,
            status=invite_status.effective_status(model), expires_at=model.expires_at, organization=organization, model=model,
        )


@strawberry.input(description="Whom staff invite into an organization, with which role and databases.")
class StaffInviteMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization (any APPROVED one; e.g. a `ModeratedOrganization.organizationId`).")
    email: str | None = strawberry.field(default=None, description="The invitee's e-mail (this and/or `phone`).")
    phone: str | None = strawberry.field(default=None, description="The invitee's phone, +7XXXXXXXXXX.")
    role: Role = strawberry.field(description="Role on accepting: ADMIN, ACCOUNTANT or USER (an OWNER: `staffMakeOwner`).")
    database_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Cloud databases of the organization a USER may open.")


@strawberry.type(description="The result of `staffInviteMember`.")
class StaffInviteMemberPayload:
    invitation: StaffInvitation | None = strawberry.field(default=None, description="The invitation sent.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.input(description="Who becomes the owner of an organization that has none.")
class StaffMakeOwnerInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization (APPROVED, with no owner).")
    email: str | None = strawberry.field(default=None, description="The person's e-mail (this and/or `phone`): a member's proven e-mail promotes them; any other is invited as the OWNER.")
    phone: str | None = strawberry.field(default=None, description="The person's phone, +7XXXXXXXXXX, as `email`.")


@strawberry.type(description="The result of `staffMakeOwner`: a member promoted, or an OWNER invitation sent.")
class StaffMakeOwnerPayload:
    organization: ModeratedOrganization | None = strawberry.field(default=None, description="The organization; its `owner` is the member promoted (null while an invitation waits).")
    promoted: bool = strawberry.field(default=False, description="Whether a member became the owner now.")
    invitation: StaffInvitation | None = strawberry.field(default=None, description="The OWNER invitation sent, when the address is no member's; whoever accepts it, proving the address, becomes the owner.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


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
            organizations=waiting.organizations, periods=waiting.periods, reason=waiting.reason, model=waiting,
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

    @strawberry.mutation(description=(
        "Provider staff only: invite someone into any APPROVED organization with a role (never OWNER: see "
        "`staffMakeOwner`) and databases, as its owner would: the same letter and link (7 days, once), a pending "
        "invitation to the same address replaced, CONFLICT for a member's address, INVALID for an organization "
        "not APPROVED. In the organization's audit log (naming the staff) and the provider's audit."
    ))
    @transactional(StaffInviteMemberPayload)
    async def staff_invite_member(
        self, info: strawberry.Info,
        input: Annotated[StaffInviteMemberInput, strawberry.argument(description="The organization, the invitee, the role and databases.")],
    ) -> StaffInviteMemberPayload:
        ctx = info.context
        invite = await staff_invitations.staff_invite_member(
            ctx, ctx.settings, pk_of(input.organization_id, "Organization") or NO_SUCH_ID, input.email, input.phone,
            input.role, [pk_of(i, "Database") or NO_SUCH_ID for i in input.database_ids or []],
        )
        organization = ModeratedOrganization.from_model(await invite.organization)
        return await expand(info, StaffInviteMemberPayload(invitation=StaffInvitation.of(invite, organization)))

    @strawberry.mutation(description=(
        "Provider staff only: give an APPROVED organization that has no owner (its only owner left; the provider "
        "sent it and nobody claimed it) one. The member whose proven e-mail or phone this is becomes the OWNER now; "
        "an address that is no member's gets an invitation as the OWNER, and whoever accepts it, proving the "
        "address, becomes it (someone not yet a member becomes the owner only by accepting it). CONFLICT while it has an "
        "owner (the owner invites people or hands it over). Audited."
    ))
    @transactional(StaffMakeOwnerPayload)
    async def staff_make_owner(
        self, info: strawberry.Info,
        input: Annotated[StaffMakeOwnerInput, strawberry.argument(description="The organization and the person's address.")],
    ) -> StaffMakeOwnerPayload:
        ctx = info.context
        made = await staff_invitations.staff_make_owner(
            ctx, ctx.settings, pk_of(input.organization_id, "Organization") or NO_SUCH_ID, input.email, input.phone,
        )
        ctx.forget_memberships()  # a staff member promoted in it sees it with their new role
        organization = ModeratedOrganization.from_model(made.organization)
        invitation = StaffInvitation.of(made.invite, organization) if made.invite is not None else None
        return await expand(info, StaffMakeOwnerPayload(
            organization=organization, promoted=made.membership is not None, invitation=invitation,
        ))
