"""Organizations, their members and invites — every list an organization holds — and the
mutations that change who belongs to an organization (invites, roles, removal, ownership)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import orjson
import strawberry

from models.audit import AuditEntry as AuditEntryModel
from models.billing import ChargeKind, DocumentKind
from models.cloud import SessionStatus
from models.organizations import Invite as InviteModel
from models.organizations import InviteStatus, Membership as MembershipModel, ModerationStatus
from models.organizations import Organization as OrganizationModel
from models.organizations import OrganizationKind, Role
from models.products import ProductCategory
from resolvers.billing import reads as billing_resolvers
from resolvers.cloud import reads as cloud_resolvers
from resolvers.cloud import subscriptions as cloud_subscriptions
from resolvers.organizations import dashboard as dashboard_resolvers
from resolvers.organizations import invite_status
from resolvers.organizations import reads as resolvers
from resolvers.billing import products as product_resolvers
from resolvers.common import notifications as notification_resolvers
from resolvers.identity import api_tokens as api_token_resolvers
from schema.api_tokens import ApiToken
from schema.batching import batched, loaded
from schema.billing import Balance, BalanceTransaction, Charge, Document
from schema.cloud import CloudSubscription, Database, Session
from schema.dashboard import Dashboard
from schema.enums import described_enum
from schema.identity import User
from schema.notifications import NotificationSettings
from schema.products import Contract, Product
from foundation.ids import to_global_id
from schema.requisites import Manager, Requisites
from resolvers.organizations import requisites as requisites_resolvers
from schema.tickets import Ticket
from resolvers.support import tickets as ticket_resolvers
from models.tickets import TicketStatus
from schema.relay import After, Connection, First, Node, connection_of, list_of

described_enum(Role, "A member's role: OWNER (exactly one), ADMIN, ACCOUNTANT or USER.", {
    "OWNER": "Everything, extending the cloud subscription and handing over ownership included; one per organization.",
    "ADMIN": "Members, invitations, databases, sessions, update schedules, finances and the audit log.",
    "ACCOUNTANT": "Finances and documents (balance, charges, invoices, acts) and the member list; no databases or sessions.",
    "USER": "The cloud databases granted to them and their own sessions; no finances, no members.",
})
described_enum(OrganizationKind, "Legal entity (10-digit INN), sole proprietor or individual (12 digits).", {
    "LEGAL_ENTITY": "A company (ООО, АО…): a 10-digit INN.",
    "SOLE_PROPRIETOR": "A sole proprietor (ИП): a 12-digit INN.",
    "INDIVIDUAL": "A private person: a 12-digit INN.",
})
described_enum(ModerationStatus, "A newly added organization is PENDING until the provider moderates it.", {
    "PENDING": "Waiting for the provider's check.",
    "APPROVED": "Checked: the organization is served.",
    "REJECTED": "Refused by the provider; the note says why.",
})
described_enum(InviteStatus, "PENDING until accepted, revoked or expired (7 days).", {
    "PENDING": "Sent; the link works.",
    "ACCEPTED": "The invitee joined.",
    "REVOKED": "Withdrawn by an owner or an administrator, or replaced by a newer invitation.",
    "EXPIRED": "Not accepted within 7 days.",
})


@strawberry.type(description="An invitation to join an organization with a role.")
class Invite(Node):
    email: str | None = strawberry.field(description="Address the invitation was sent to.")
    phone: str | None = strawberry.field(description="Phone the invitation was sent to.")
    role: Role = strawberry.field(description="Role the invitee gets on accepting.")
    status: InviteStatus = strawberry.field(description="PENDING, ACCEPTED, REVOKED or EXPIRED.")
    expires_at: dt.datetime = strawberry.field(description="When the invitation link stops working.")
    model: strawberry.Private[InviteModel]

    @classmethod
    def from_model(cls, model: InviteModel) -> Invite:
        return cls(
            id=to_global_id("Invite", model.id), email=model.email, phone=model.phone, role=model.role,
            status=invite_status.effective_status(model), expires_at=model.expires_at, model=model,
        )

    @strawberry.field(description="Who sent the invitation.")
    @batched(resolvers.inviter_of, to=User.from_model)
    def invited_by(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)

    @strawberry.field(description="Cloud databases the invitee may open (those your role sees: none for an ACCOUNTANT).")
    @batched(resolvers.databases_of_invite, to=list_of(Database.from_model))
    def databases(self, info: strawberry.Info) -> list[Database]:
        return loaded(self, info)


def _global_object_id(object_type: str, object_id: str | None) -> str | None:
    """Entries keep the row's own id; clients know objects by global ids."""
    if object_id is None:
        return None
    try:
        return to_global_id(object_type, uuid.UUID(object_id))
    except ValueError:
        return object_id


@strawberry.type(
    description="One change of access, sessions, schedules or the subscription: who made it, what, when, from where. "
    "The log is append-only: nothing edits or deletes an entry."
)
class AuditEntry(Node):
    action: str = strawberry.field(description='What was done, e.g. "invite.create", "member.remove", "session.terminate".')
    object_type: str = strawberry.field(description='The kind of object changed, e.g. "Invite", "Membership", "Session".')
    object_id: strawberry.ID | None = strawberry.field(
        description="The changed object's global id (as `node(id:)` takes it), when there is one."
    )
    details: str = strawberry.field(description="Particulars of the change, a JSON object as text.")
    ip_address: str | None = strawberry.field(description="The address the request came from.")
    created_at: dt.datetime = strawberry.field(description="When the change was made.")
    model: strawberry.Private[AuditEntryModel]

    @classmethod
    def from_model(cls, model: AuditEntryModel) -> AuditEntry:
        return cls(
            id=to_global_id("AuditEntry", model.id), action=model.action, object_type=model.object_type,
            object_id=_global_object_id(model.object_type, model.object_id),
            details=orjson.dumps(model.details or {}).decode(),
            ip_address=model.ip_address, created_at=model.created_at, model=model,
        )

    @strawberry.field(description="Who made the change; null for the system or a deleted account.")
    @batched(resolvers.actor_of, to=User.from_model)
    def actor(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)


@strawberry.type(description="A subscriber of the provider: a company, sole proprietor or individual.")
class Organization(Node):
    name: str = strawberry.field(description="Name, e.g. ООО «Ромашка».")
    inn: str = strawberry.field(description="Taxpayer number: 10 digits (legal entity) or 12.")
    kind: OrganizationKind = strawberry.field(description="Legal form.")
    moderation_status: ModerationStatus = strawberry.field(description="Moderation by the provider.")
    code: str = strawberry.field(description="Subscriber code: the short number the provider knows this organization by.")
    model: strawberry.Private[OrganizationModel]

    @classmethod
    def from_model(cls, model: OrganizationModel) -> Organization:
        return cls(
            id=to_global_id("Organization", model.id), name=model.name, inn=model.inn, kind=model.kind,
            moderation_status=model.moderation_status, code=model.code, model=model,
        )

    @strawberry.field(description="The caller's role in this organization.")
    def viewer_role(self, info: strawberry.Info) -> Role:
        return info.context.role_in(self.model.id)

    @strawberry.field(description="Full legal name (the name when none was given): every member sees it.")
    def legal_name(self) -> str:
        return self.model.legal_name or self.model.name

    @strawberry.field(
        description="Requisites: INN, KPP, OGRN, addresses, bank details, whose they are and a change waiting for the "
        "provider. OWNER, ADMIN and ACCOUNTANT (USER: FORBIDDEN)."
    )
    @batched(requisites_resolvers.requisites_of, to=Requisites.from_model)
    def requisites(self, info: strawberry.Info) -> Requisites | None:
        return loaded(self, info)

    @strawberry.field(description="The provider's personal managers of this organization, by name: every member sees them.")
    @batched(requisites_resolvers.managers_of, to=list_of(Manager.from_model))
    def managers(self, info: strawberry.Info) -> list[Manager]:
        return loaded(self, info)

    @strawberry.field(description="Products the organization uses, by name.")
    @batched(product_resolvers.products_of, to=connection_of(Product.from_model))
    def products(
        self, info: strawberry.Info, category: Annotated[ProductCategory | None, strawberry.argument(description="Only products of this category.")] = None, first: First = None,
        after: After = None,
    ) -> Connection[Product]:
        return loaded(self, info)

    @strawberry.field(description="Contracts of the organization, oldest first.")
    @batched(product_resolvers.contracts_of, to=list_of(Contract.from_model))
    def contracts(self, info: strawberry.Info) -> list[Contract]:
        return loaded(self, info)

    @strawberry.field(description="People in the organization and their roles. Not for USER (FORBIDDEN).")
    @batched(resolvers.members_of, to=connection_of(lambda m: Membership.from_model(m)))
    def members(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[Membership] | None:
        return loaded(self, info)

    @strawberry.field(description="Invitations, newest first. Not for USER (FORBIDDEN).")
    @batched(resolvers.invites_of, to=connection_of(Invite.from_model))
    def invites(
        self, info: strawberry.Info, status: Annotated[InviteStatus | None, strawberry.argument(description="Only invitations in this status.")] = None, first: First = None,
        after: After = None,
    ) -> Connection[Invite] | None:
        return loaded(self, info)

    @strawberry.field(
        name="auditLog",
        description="Who changed access, sessions, schedules or the subscription, newest first. "
        "Only OWNER and ADMIN (others: FORBIDDEN).",
    )
    @batched(resolvers.audit_log_of, to=connection_of(AuditEntry.from_model))
    def audit_log(
        self, info: strawberry.Info,
        action: Annotated[str | None, strawberry.argument(
            description='One action ("member.remove") or a group of them ("member": every "member.…").'
        )] = None,
        from_: Annotated[dt.date | None, strawberry.argument(name="from", description="First UTC day, inclusive.")] = None,
        to: Annotated[dt.date | None, strawberry.argument(description="Last UTC day, inclusive.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[AuditEntry] | None:
        return loaded(self, info)

    @strawberry.field(
        name="notificationSettings",
        description="Your own notification settings in this organization (every role; the defaults until you change them).",
    )
    @batched(notification_resolvers.settings_of, to=NotificationSettings.from_view)
    def notification_settings(self, info: strawberry.Info) -> NotificationSettings | None:
        return loaded(self, info)

    @strawberry.field(
        name="apiTokens",
        description="API tokens made for programs to act in this organization, newest first (at most "
        f"{api_token_resolvers.LISTED}), revoked and expired ones too. Only OWNER and ADMIN (others: FORBIDDEN).",
    )
    @batched(api_token_resolvers.tokens_of, to=list_of(ApiToken.from_model))
    def api_tokens(self, info: strawberry.Info) -> list[ApiToken] | None:
        return loaded(self, info)

    @strawberry.field(description="Deposit balance and prepaid services. Not for USER (FORBIDDEN).")
    @batched(billing_resolvers.balance_of, to=Balance.from_view)
    def balance(self, info: strawberry.Info) -> Balance | None:
        return loaded(self, info)

    @strawberry.field(
        name="balanceTransactions",
        description="The deposit ledger, newest first; `from`/`to` are inclusive UTC days. Not for USER (FORBIDDEN).",
    )
    @batched(billing_resolvers.transactions_of, to=connection_of(BalanceTransaction.from_model))
    def balance_transactions(
        self, info: strawberry.Info,
        from_: Annotated[dt.date | None, strawberry.argument(name="from", description="First day, inclusive.")] = None,
        to: Annotated[dt.date | None, strawberry.argument(description="Last day, inclusive.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[BalanceTransaction] | None:
        return loaded(self, info)

    @strawberry.field(description="Charges, newest month first. period is a month, YYYY-MM. Not for USER (FORBIDDEN).")
    @batched(billing_resolvers.charges_of, to=connection_of(Charge.from_model))
    def charges(
        self, info: strawberry.Info,
        period: Annotated[str | None, strawberry.argument(description="Only charges of this month: YYYY-MM.")] = None,
        kind: Annotated[ChargeKind | None, strawberry.argument(description="Only charges of this kind.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[Charge] | None:
        return loaded(self, info)

    @strawberry.field(
        description="Published invoices, acts and contracts, newest first; `from`/`to` filter the date of issue. "
        "Invoices and acts of a month appear on the 10th of the next month. Not for USER (FORBIDDEN)."
    )
    @batched(billing_resolvers.documents_of, to=connection_of(Document.from_model))
    def documents(
        self, info: strawberry.Info, kind: Annotated[DocumentKind | None, strawberry.argument(description="Only documents of this kind.")] = None,
        from_: Annotated[dt.date | None, strawberry.argument(name="from", description="First day, inclusive.")] = None,
        to: Annotated[dt.date | None, strawberry.argument(description="Last day, inclusive.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[Document] | None:
        return loaded(self, info)

    @strawberry.field(
        description="The home page at a glance: nearest contract end, updates, people, balance runway; each part "
        "for the roles that see what it sums up."
    )
    @batched(dashboard_resolvers.dashboard_of, to=Dashboard.from_model)
    def dashboard(self, info: strawberry.Info) -> Dashboard:
        return loaded(self, info)

    @strawberry.field(
        description="The cloud rental subscription, if the organization has one: of several, the main tariff "
        "(the one opened first); `cloudSubscriptions` lists them all."
    )
    @batched(cloud_subscriptions.subscription_of, to=CloudSubscription.from_view)
    def cloud_subscription(self, info: strawberry.Info) -> CloudSubscription | None:
        return loaded(self, info)

    @strawberry.field(
        description="Every tariff subscription of the cloud rental («Подписки на тарифы»), the main one (opened first) "
        "first. The limits in force are their sum."
    )
    @batched(cloud_subscriptions.subscriptions_of, to=connection_of(CloudSubscription.from_view))
    def cloud_subscriptions(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[CloudSubscription]:
        return loaded(self, info)

    @strawberry.field(description="For a USER: only the databases granted to them. Not for ACCOUNTANT (FORBIDDEN).")
    @batched(cloud_resolvers.databases_of, to=connection_of(Database.from_model))
    def databases(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[Database] | None:
        return loaded(self, info)

    @strawberry.field(description="For a USER: only their own sessions. Newest first. Not for ACCOUNTANT (FORBIDDEN).")
    @batched(cloud_resolvers.sessions_of_organizations, to=connection_of(Session.from_model), ids={"database_id": "Database"})
    def sessions(
        self, info: strawberry.Info,
        database_id: Annotated[strawberry.ID | None, strawberry.argument(description="Only sessions in this database.")] = None,
        status: Annotated[SessionStatus | None, strawberry.argument(description="Only sessions in this status.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[Session] | None:
        return loaded(self, info)

    @strawberry.field(
        description="Support tickets, the last changed first: every one for OWNER and ADMIN, one's own for other roles."
    )
    @batched(ticket_resolvers.tickets_of, to=connection_of(Ticket.from_model))
    def tickets(
        self, info: strawberry.Info,
        status: Annotated[TicketStatus | None, strawberry.argument(description="Only tickets in this status.")] = None,
        first: First = None, after: After = None,
    ) -> Connection[Ticket]:
        return loaded(self, info)


@strawberry.type(description="A person's place in an organization: their role and position.")
class Membership(Node):
    role: Role = strawberry.field(description="Role in the organization.")
    position: str | None = strawberry.field(description="Job title, as the member gave it (the same as `jobTitle`).")
    job_title: str | None = strawberry.field(
        description="Job title («должность») in this organization: set by the member, the owner or an admin (`updateMember`)."
    )
    created_at: dt.datetime = strawberry.field(description="When the person joined.")
    model: strawberry.Private[MembershipModel]

    @classmethod
    def from_model(cls, model: MembershipModel) -> Membership:
        return cls(
            id=to_global_id("Membership", model.id), role=model.role, position=model.position,
            job_title=model.position, created_at=model.created_at, model=model,
        )

    @strawberry.field(description="The member.")
    @batched(resolvers.user_of_membership, to=User.from_model)
    def user(self, info: strawberry.Info) -> User:
        return loaded(self, info)

    @strawberry.field(description="The organization.")
    @batched(resolvers.organization_of, to=Organization.from_model)
    def organization(self, info: strawberry.Info) -> Organization:
        return loaded(self, info)

    @strawberry.field(
        description="Cloud databases granted to this member, by name: they limit what a USER sees "
        "(other roles see every database). For OWNER, ADMIN and the member themselves; others: FORBIDDEN."
    )
    @batched(resolvers.databases_of_membership, to=list_of(Database.from_model))
    def databases(self, info: strawberry.Info) -> list[Database] | None:
        return loaded(self, info)
