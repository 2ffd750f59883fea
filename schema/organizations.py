"""Organizations, their members and invites — and every list an organization holds."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from kabinet.auth import utcnow
from models.billing import ChargeKind, DocumentKind
from models.cloud import SessionStatus
from models.organizations import Invite as InviteModel
from models.organizations import InviteStatus, Membership as MembershipModel, ModerationStatus
from models.organizations import Organization as OrganizationModel
from models.organizations import OrganizationKind, Role
from models.products import ProductCategory
from resolvers import billing as billing_resolvers
from resolvers import cloud as cloud_resolvers
from resolvers import organizations as resolvers
from resolvers import products as product_resolvers
from schema.batching import batched, loaded
from schema.billing import Balance, BalanceTransaction, Charge, Document
from schema.cloud import CloudSubscription, Database, Session
from schema.identity import User
from schema.products import Contract, Product
from schema.relay import Connection, Node, connection_of, list_of, to_global_id

strawberry.enum(Role, description="A member's role: OWNER (exactly one), ADMIN, ACCOUNTANT or USER.")
strawberry.enum(OrganizationKind, description="Legal entity (10-digit INN), sole proprietor or individual (12 digits).")
strawberry.enum(ModerationStatus, description="A newly added organization is PENDING until the provider moderates it.")
strawberry.enum(InviteStatus, description="PENDING until accepted, revoked or expired (7 days).")


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
        status = model.status
        if status == InviteStatus.PENDING and model.expires_at <= utcnow():
            status = InviteStatus.EXPIRED
        return cls(
            id=to_global_id("Invite", model.id), email=model.email, phone=model.phone, role=model.role,
            status=status, expires_at=model.expires_at, model=model,
        )

    @strawberry.field(description="Who sent the invitation.")
    @batched(resolvers.inviter_of, to=User.from_model)
    def invited_by(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)

    @strawberry.field(description="Cloud databases the invitee may open.")
    @batched(resolvers.databases_of_invite, to=list_of(Database.from_model))
    def databases(self, info: strawberry.Info) -> list[Database]:
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

    @strawberry.field(description="Products the organization uses, by name.")
    @batched(product_resolvers.products_of, to=connection_of(Product.from_model))
    def products(
        self, info: strawberry.Info, category: ProductCategory | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[Product]:
        return loaded(self, info)

    @strawberry.field(description="Contracts of the organization, oldest first.")
    @batched(product_resolvers.contracts_of, to=list_of(Contract.from_model))
    def contracts(self, info: strawberry.Info) -> list[Contract]:
        return loaded(self, info)

    @strawberry.field(description="People in the organization and their roles. Not for USER (FORBIDDEN).")
    @batched(resolvers.members_of, to=connection_of(lambda m: Membership.from_model(m)))
    def members(self, info: strawberry.Info, first: int | None = None, after: str | None = None) -> Connection[Membership] | None:
        return loaded(self, info)

    @strawberry.field(description="Invitations, newest first. Not for USER (FORBIDDEN).")
    @batched(resolvers.invites_of, to=connection_of(Invite.from_model))
    def invites(
        self, info: strawberry.Info, status: InviteStatus | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[Invite] | None:
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
        first: int | None = None, after: str | None = None,
    ) -> Connection[BalanceTransaction] | None:
        return loaded(self, info)

    @strawberry.field(description="Charges, newest month first. period is a month, YYYY-MM. Not for USER (FORBIDDEN).")
    @batched(billing_resolvers.charges_of, to=connection_of(Charge.from_model))
    def charges(
        self, info: strawberry.Info, period: str | None = None, kind: ChargeKind | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Charge] | None:
        return loaded(self, info)

    @strawberry.field(
        description="Published invoices, acts and contracts, newest first; `from`/`to` filter the date of issue. "
        "Invoices and acts of a month appear on the 10th of the next month. Not for USER (FORBIDDEN)."
    )
    @batched(billing_resolvers.documents_of, to=connection_of(Document.from_model))
    def documents(
        self, info: strawberry.Info, kind: DocumentKind | None = None,
        from_: Annotated[dt.date | None, strawberry.argument(name="from", description="First day, inclusive.")] = None,
        to: Annotated[dt.date | None, strawberry.argument(description="Last day, inclusive.")] = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Document] | None:
        return loaded(self, info)

    @strawberry.field(description="The cloud rental subscription, if the organization has one.")
    @batched(cloud_resolvers.subscription_of, to=CloudSubscription.from_view)
    def cloud_subscription(self, info: strawberry.Info) -> CloudSubscription | None:
        return loaded(self, info)

    @strawberry.field(description="For a USER: only the databases granted to them. Not for ACCOUNTANT (FORBIDDEN).")
    @batched(cloud_resolvers.databases_of, to=connection_of(Database.from_model))
    def databases(self, info: strawberry.Info, first: int | None = None, after: str | None = None) -> Connection[Database] | None:
        return loaded(self, info)

    @strawberry.field(description="For a USER: only their own sessions. Newest first. Not for ACCOUNTANT (FORBIDDEN).")
    @batched(cloud_resolvers.sessions_of_organizations, to=connection_of(Session.from_model))
    def sessions(
        self, info: strawberry.Info, database_id: strawberry.ID | None = None, status: SessionStatus | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Session] | None:
        return loaded(self, info)


@strawberry.type(description="A person's place in an organization: their role and position.")
class Membership(Node):
    role: Role = strawberry.field(description="Role in the organization.")
    position: str | None = strawberry.field(description="Job title, as the member gave it.")
    created_at: dt.datetime = strawberry.field(description="When the person joined.")
    model: strawberry.Private[MembershipModel]

    @classmethod
    def from_model(cls, model: MembershipModel) -> Membership:
        return cls(
            id=to_global_id("Membership", model.id), role=model.role, position=model.position,
            created_at=model.created_at, model=model,
        )

    @strawberry.field(description="The member.")
    @batched(resolvers.user_of_membership, to=User.from_model)
    def user(self, info: strawberry.Info) -> User:
        return loaded(self, info)

    @strawberry.field(description="The organization.")
    @batched(resolvers.organization_of, to=Organization.from_model)
    def organization(self, info: strawberry.Info) -> Organization:
        return loaded(self, info)
