"""Products an organization bought and its contracts (every member sees them)."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from resolvers.common.context import RequestContext
from models.organizations import Organization
from models.products import Contract, Product
from resolvers.common.gates import page_request, related_one, wants_total
from resolvers.common.pagination import Ordering, load_pages

PRODUCT_ORDER = Ordering(("name",))


def product_filters(args: dict[str, Any]) -> Q | None:
    """`Organization.products`' arguments as a filter (also read by schema/sql_json.py)."""
    category = args.get("category")
    return Q(category=category) if category else None


async def products_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    pages = await load_pages(
        Product, "organization_id", [o.id for o in orgs], PRODUCT_ORDER, page_request(ctx, args),
        filters=product_filters(args), with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def contracts_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    rows = await Contract.filter(organization_id__in=[o.id for o in orgs]).order_by("starts_on", "number", "id")
    by_org: dict[Any, list[Contract]] = {o.id: [] for o in orgs}
    for row in rows:
        by_org[row.organization_id].append(row)
    return [by_org[o.id] for o in orgs]


async def contract_of_product(ctx: RequestContext, products: list[Product], args: dict[str, Any]) -> list:
    return await related_one(Contract, products, "contract_id")
