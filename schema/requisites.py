"""Requisites and the provider's managers: `Organization.requisites`, `Organization.managers`
(fields declared on schema/organizations.py's Organization) and `changeRequisites`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from models.organizations import Organization as OrganizationModel
from models.requisites import Manager as ManagerModel
from models.requisites import RequisitesChange as RequisitesChangeModel
from models.requisites import RequisitesChangeStatus, RequisitesSource
from resolvers.organizations import requisites as resolvers
from schema.batching import batched, expand, loaded
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.identity import User
from schema.relay import Node

described_enum(RequisitesSource, "Whose the requisites are, which decides what a change by the customer does.", {
    "PROVIDER": "Sent by the provider's accounting: a change becomes a request the provider confirms.",
    "CUSTOMER": "Entered by the customer (the provider never sent this organization): a change applies at once.",
})
described_enum(RequisitesChangeStatus, "Where a requested change of the provider's requisites stands.", {
    "PENDING": "Waiting for the provider: the requisites shown are still the old ones.",
    "CONFIRMED": "The provider's records now carry the requested values.",
    "SUPERSEDED": "Replaced: the provider's records changed the requisites otherwise, or a newer request was made.",
})


@strawberry.type(description="A requested change of the provider's requisites: the values proposed, who asked and when.")
class RequisitesChange:
    legal_name: str | None = strawberry.field(description="Proposed full legal name.")
    kpp: str | None = strawberry.field(description="Proposed KPP.")
    ogrn: str | None = strawberry.field(description="Proposed OGRN (13 digits) or OGRNIP (15).")
    legal_address: str | None = strawberry.field(description="Proposed legal address.")
    postal_address: str | None = strawberry.field(description="Proposed postal address.")
    bank_name: str | None = strawberry.field(description="Proposed bank.")
    bic: str | None = strawberry.field(description="Proposed bank BIC.")
    correspondent_account: str | None = strawberry.field(description="Proposed correspondent account.")
    settlement_account: str | None = strawberry.field(description="Proposed settlement account.")
    status: RequisitesChangeStatus = strawberry.field(description="PENDING, CONFIRMED or SUPERSEDED.")
    requested_at: dt.datetime = strawberry.field(description="When the change was requested.")
    decided_at: dt.datetime | None = strawberry.field(description="When the provider's record confirmed or superseded it.")
    model: strawberry.Private[RequisitesChangeModel]

    @classmethod
    def from_model(cls, model: RequisitesChangeModel) -> RequisitesChange:
        values = {name: model.proposed.get(name) for name in resolvers.FIELDS}
        return cls(**values, status=model.status, requested_at=model.created_at, decided_at=model.decided_at, model=model)

    @strawberry.field(description="Who asked for the change; null when their account is gone or not yours to see.")
    @batched(resolvers.requester_of, to=User.from_model)
    def requested_by(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)


@strawberry.type(
    description="The organization's requisites: what invoices and acts are made out to. OWNER, ADMIN and ACCOUNTANT."
)
class Requisites:
    legal_name: str = strawberry.field(description="Full legal name (the short name when none was given).")
    inn: str = strawberry.field(description="INN: 10 digits (legal entity) or 12.")
    kpp: str | None = strawberry.field(description="KPP (a legal entity's), 9 characters.")
    ogrn: str | None = strawberry.field(description="OGRN (13 digits) or a sole proprietor's OGRNIP (15).")
    legal_address: str | None = strawberry.field(description="Legal address.")
    postal_address: str | None = strawberry.field(description="Postal address, where it differs.")
    bank_name: str | None = strawberry.field(description="The bank of the settlement account.")
    bic: str | None = strawberry.field(description="The bank's BIC: 9 digits beginning with 04.")
    correspondent_account: str | None = strawberry.field(description="The bank's correspondent account, 20 digits.")
    settlement_account: str | None = strawberry.field(description="The organization's settlement account, 20 digits.")
    source: RequisitesSource | None = strawberry.field(description="Whose they are; null while nobody entered any.")
    confirmed_at: dt.datetime | None = strawberry.field(
        description="When the provider's records last set or confirmed them; null for the customer's own."
    )
    model: strawberry.Private[OrganizationModel]

    @classmethod
    def from_model(cls, model: OrganizationModel) -> Requisites:
        values = {name: getattr(model, name) for name in resolvers.FIELDS}
        values["legal_name"] = values["legal_name"] or model.name
        return cls(
            **values, inn=model.inn, source=model.requisites_source, confirmed_at=model.requisites_confirmed_at, model=model,
        )

    @strawberry.field(description="A change the customer asked for that waits for the provider; null when none waits.")
    @batched(resolvers.pending_change_of, to=RequisitesChange.from_model)
    def pending_change(self, info: strawberry.Info) -> RequisitesChange | None:
        return loaded(self, info)


@strawberry.type(description="A personal manager the provider assigned to the organization: whom to call or write to.")
class Manager(Node):
    full_name: str = strawberry.field(description="Full name.")
    title: str | None = strawberry.field(description="Role, e.g. «Персональный менеджер», «Менеджер по сопровождению».")
    phone: str | None = strawberry.field(description="Phone, +7 and 10 digits.")
    email: str | None = strawberry.field(description="E-mail address.")
    model: strawberry.Private[ManagerModel]

    @classmethod
    def from_model(cls, model: ManagerModel) -> Manager:
        return cls(
            id=to_global_id("Manager", model.id), full_name=model.full_name, title=model.title, phone=model.phone,
            email=model.email, model=model,
        )


@strawberry.input(description="The requisites to change: a field left out stays as it is; an empty string clears it.")
class ChangeRequisitesInput:
    legal_name: str | None = strawberry.field(default=None, description="Full legal name, at most 500 characters.")
    kpp: str | None = strawberry.field(default=None, description="KPP, a legal entity's only.")
    ogrn: str | None = strawberry.field(default=None, description="OGRN (13 digits) or OGRNIP (15), check digit right.")
    legal_address: str | None = strawberry.field(default=None, description="Legal address, at most 500 characters.")
    postal_address: str | None = strawberry.field(default=None, description="Postal address, at most 500 characters.")
    bank_name: str | None = strawberry.field(default=None, description="The bank's name (needed with a BIC).")
    bic: str | None = strawberry.field(default=None, description="The bank's BIC: 9 digits beginning with 04.")
    correspondent_account: str | None = strawberry.field(
        default=None, description="20 digits beginning with 301, its control key right with the BIC."
    )
    settlement_account: str | None = strawberry.field(default=None, description="20 digits, its control key right with the BIC.")


@strawberry.type(description="The result of `changeRequisites`.")
class ChangeRequisitesPayload:
    requisites: Requisites | None = strawberry.field(
        default=None, description="The requisites now: changed when they are the customer's, unchanged when a request was made."
    )
    requested_change: RequisitesChange | None = strawberry.field(
        default=None, description="The request to the provider, when the requisites are the provider's."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="Requisites.")
class RequisitesMutations:
    @strawberry.mutation(
        description="Change the organization's requisites (check digits of INN, KPP, OGRN, BIC and accounts checked). "
        "The customer's own are changed at once; the provider's become a request the provider's next record confirms. "
        "OWNER, ADMIN and ACCOUNTANT; at most 10 a day."
    )
    @transactional(ChangeRequisitesPayload)
    async def change_requisites(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
        input: Annotated[ChangeRequisitesInput, strawberry.argument(description="The fields to change.")],
    ) -> ChangeRequisitesPayload:
        changes = {name: getattr(input, name) for name in resolvers.FIELDS}
        organization, change = await resolvers.change_requisites(
            info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID, changes
        )
        return await expand(info, ChangeRequisitesPayload(
            requisites=Requisites.from_model(organization),
            requested_change=RequisitesChange.from_model(change) if change else None,
        ))
