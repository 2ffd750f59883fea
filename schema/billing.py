"""The deposit balance and its ledger, prepaid services, charges and documents."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from resolvers.identity.tokens import sign_download
from models.billing import BalanceTransaction as TransactionModel
from models.billing import Charge as ChargeModel
from models.billing import ChargeKind, DocumentKind, TransactionKind
from models.billing import Document as DocumentModel
from models.billing import PrepaidService as PrepaidServiceModel
from resolvers.billing import reads as resolvers
from resolvers.cloud import reads as cloud_resolvers
from resolvers.billing.reads import BalanceView
from schema.batching import batched, loaded
from schema.cloud import Database
from schema.enums import described_enum
from foundation.ids import to_global_id
from schema.relay import Node

described_enum(TransactionKind, "Why the deposit changed: top-up, charge, refund or adjustment.", {
    "TOP_UP": "Money paid in (a bank transfer or a card payment).",
    "CHARGE": "Money taken for a service: cloud rental, support, a prepaid package.",
    "REFUND": "Money given back.",
    "ADJUSTMENT": "A correction made by the provider.",
})
described_enum(ChargeKind, "What a charge is for: cloud rental or support services.", {
    "CLOUD_RENTAL": "Rent of the cloud: workplaces and databases for the period.",
    "SUPPORT_SERVICE": "Support: consultations, updates by the provider, other services.",
})
described_enum(DocumentKind, "Invoice, act of services rendered, or contract.", {
    "INVOICE": "An invoice to pay («счёт»).",
    "ACT": "An act of services rendered («акт»), issued for a month after it ends.",
    "CONTRACT": "A signed contract.",
})


@strawberry.type(description="A prepaid service package and how much of it is left.")
class PrepaidService:
    name: str = strawberry.field(description="Service name.")
    unit: str = strawberry.field(description="Unit of measure (hours, visits…).")
    total: Decimal = strawberry.field(description="Amount bought.")
    used: Decimal = strawberry.field(description="Amount used.")
    remaining: Decimal = strawberry.field(description="Amount left: total − used.")
    valid_until: dt.date | None = strawberry.field(description="Last day the package may be used.")

    @classmethod
    def from_model(cls, model: PrepaidServiceModel) -> PrepaidService:
        return cls(
            name=model.name, unit=model.unit, total=model.total, used=model.used,
            remaining=model.total - model.used, valid_until=model.valid_until,
        )


@strawberry.type(description="The deposit and the prepaid services of an organization.")
class Balance:
    amount: Decimal = strawberry.field(description="Deposit balance; negative means debt.")
    currency: str = strawberry.field(description="ISO 4217 currency code (RUB).")
    prepaid_services: list[PrepaidService] = strawberry.field(description="Prepaid service packages.")

    @classmethod
    def from_view(cls, view: BalanceView) -> Balance:
        return cls(
            amount=view.amount, currency=view.currency,
            prepaid_services=[PrepaidService.from_model(m) for m in view.prepaid_services],
        )


@strawberry.type(description="An invoice, act or contract, downloadable as a file.")
class Document(Node):
    kind: DocumentKind = strawberry.field(description="What the document is.")
    number: str = strawberry.field(description="Document number.")
    issued_on: dt.date = strawberry.field(description="Date of issue.")
    period: str | None = strawberry.field(description="Billing month, YYYY-MM, where the document belongs to one.")
    amount: Decimal = strawberry.field(description="Total amount.")
    currency: str = strawberry.field(description="ISO 4217 currency code (RUB).")
    model: strawberry.Private[DocumentModel]

    @classmethod
    def from_model(cls, model: DocumentModel) -> Document:
        return cls(
            id=to_global_id("Document", model.id), kind=model.kind, number=model.number, issued_on=model.issued_on,
            period=model.period, amount=model.amount, currency=model.currency, model=model,
        )

    @strawberry.field(description="Short-lived URL that downloads the file (GET, no other credentials needed).")
    def download_url(self, info: strawberry.Info) -> str:
        return sign_download(info.context.settings, self.model.id)


@strawberry.type(description="One entry of the deposit ledger.")
class BalanceTransaction(Node):
    kind: TransactionKind = strawberry.field(description="Why the deposit changed.")
    amount: Decimal = strawberry.field(description="Signed: positive adds to the deposit.")
    balance_after: Decimal = strawberry.field(description="The deposit balance right after this entry.")
    description: str = strawberry.field(description="What the entry is for.")
    occurred_at: dt.datetime = strawberry.field(description="When it happened.")
    model: strawberry.Private[TransactionModel]

    @classmethod
    def from_model(cls, model: TransactionModel) -> BalanceTransaction:
        return cls(
            id=to_global_id("BalanceTransaction", model.id), kind=model.kind, amount=model.amount,
            balance_after=model.balance_after, description=model.description, occurred_at=model.occurred_at,
            model=model,
        )

    @strawberry.field(description="The invoice or act behind the entry, once published.")
    @batched(resolvers.document_of_transaction, to=Document.from_model)
    def document(self, info: strawberry.Info) -> Document | None:
        return loaded(self, info)


@strawberry.type(description="A charge for a month: cloud rental of a database or a support service.")
class Charge(Node):
    kind: ChargeKind = strawberry.field(description="What is charged for.")
    period: str = strawberry.field(description="Billing month, YYYY-MM.")
    description: str = strawberry.field(description="What exactly was provided.")
    quantity: Decimal = strawberry.field(description="How many units.")
    unit_price: Decimal = strawberry.field(description="Price of one unit.")
    amount: Decimal = strawberry.field(description="quantity × unitPrice.")
    model: strawberry.Private[ChargeModel]

    @classmethod
    def from_model(cls, model: ChargeModel) -> Charge:
        return cls(
            id=to_global_id("Charge", model.id), kind=model.kind, period=model.period, description=model.description,
            quantity=model.quantity, unit_price=model.unit_price, amount=model.amount, model=model,
        )

    @strawberry.field(description="The cloud database the charge is for, if any.")
    @batched(cloud_resolvers.database_of, to=Database.from_model)
    def database(self, info: strawberry.Info) -> Database | None:
        return loaded(self, info)
