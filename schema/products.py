"""Products and contracts."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from foundation import clock
from models.products import Contract as ContractModel
from models.products import ContractKind, Product as ProductModel, ProductCategory
from resolvers.organizations import reads as org_resolvers
from resolvers.billing import products as resolvers
from schema.batching import batched, loaded
from schema.enums import described_enum
from foundation.ids import to_global_id
from schema.relay import Node

if TYPE_CHECKING:
    from schema.organizations import Organization

described_enum(ProductCategory, "What kind of product: local 1C, cloud rental, partner product, service, license or module.", {
    "LOCAL_1C": "A 1C program installed at the customer's.",
    "CLOUD_RENTAL": "1C in the provider's cloud.",
    "PARTNER_PRODUCT": "A product of a 1C partner.",
    "SERVICE": "A service (1C:ИТС services, reporting, EDI…).",
    "LICENSE": "A license (client or server).",
    "MODULE": "An extension or module of a configuration.",
})
described_enum(ContractKind, "ITS (support of 1C), PTS, cloud rental or service contract.", {
    "ITS": "1C:ИТС: information and technology support of 1C programs, with updates.",
    "PTS": "A prepaid support package («пакет технической поддержки»).",
    "CLOUD_RENTAL": "Rent of the cloud.",
    "SERVICE": "Another service contract.",
})


@strawberry.enum(description="Where a contract stands today.")
class ContractStatus(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="In force.")
    EXPIRING = strawberry.enum_value("EXPIRING", description="In force, ends within 30 days.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="Ended.")


EXPIRING_WITHIN = dt.timedelta(days=30)


def contract_status(ends_on: dt.date | None, today: dt.date) -> ContractStatus:
    if ends_on is None or ends_on - today > EXPIRING_WITHIN:
        return ContractStatus.ACTIVE
    return ContractStatus.EXPIRING if ends_on >= today else ContractStatus.EXPIRED


def contract_status_sql(ends_on: str, today: str) -> str:
    """`contract_status` said in SQL (PostgreSQL; schema/sql_json.py), over a date column and a date
    parameter: tests/test_sql_json.py holds the two to the same answers."""
    return (
        f"CASE WHEN {ends_on} IS NULL OR {ends_on} - {today}::date > {EXPIRING_WITHIN.days} THEN 'ACTIVE' "
        f"WHEN {ends_on} >= {today}::date THEN 'EXPIRING' ELSE 'EXPIRED' END"
    )


@strawberry.type(description="A contract between the organization and the provider.")
class Contract(Node):
    kind: ContractKind = strawberry.field(description="What the contract is for.")
    number: str = strawberry.field(description="Contract number.")
    status: ContractStatus = strawberry.field(description="Derived from the dates: ACTIVE, EXPIRING (30 days) or EXPIRED.")
    starts_on: dt.date = strawberry.field(description="First day in force.")
    ends_on: dt.date | None = strawberry.field(description="Last day in force; null for an open-ended contract.")
    model: strawberry.Private[ContractModel]

    @classmethod
    def from_model(cls, model: ContractModel) -> Contract:
        return cls(
            id=to_global_id("Contract", model.id), kind=model.kind, number=model.number,
            status=contract_status(model.ends_on, clock.today()), starts_on=model.starts_on,
            ends_on=model.ends_on, model=model,
        )


def _organization(model: Any) -> Any:
    from schema.organizations import Organization

    return Organization.from_model(model)


@strawberry.type(description="A product the organization uses: a 1C program, a cloud rental, a service…")
class Product(Node):
    name: str = strawberry.field(description="Product name.")
    category: ProductCategory = strawberry.field(description="Product category.")
    registration_number: str | None = strawberry.field(description="Registration number of a 1C program.")
    workplaces: int | None = strawberry.field(description="Number of workplaces (licenses).")
    updates_available_until: dt.date | None = strawberry.field(
        description="Last day on which updates are available (local products under an ITS contract)."
    )
    model: strawberry.Private[ProductModel]

    @classmethod
    def from_model(cls, model: ProductModel) -> Product:
        return cls(
            id=to_global_id("Product", model.id), name=model.name, category=model.category,
            registration_number=model.registration_number, workplaces=model.workplaces,
            updates_available_until=model.updates_available_until, model=model,
        )

    @strawberry.field(description="The contract the product is supported or rented under.")
    @batched(resolvers.contract_of_product, to=Contract.from_model)
    def contract(self, info: strawberry.Info) -> Contract | None:
        return loaded(self, info)

    @strawberry.field(description="The organization that holds the product.")
    @batched(org_resolvers.organization_of, to=_organization)
    def organization(self, info: strawberry.Info) -> Annotated[Organization, strawberry.lazy("schema.organizations")]:
        return loaded(self, info)
