"""The deposit, its ledger, prepaid services, charges and documents (finance roles only)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from resolvers.common.context import RequestContext
from resolvers.common.errors import bad_user_input
from models.billing import BalanceTransaction, Charge, Document, PrepaidService
from models.organizations import Organization
from models.select import select
from resolvers.common.gates import SELECTED, page_request, related_one, wants_total
from resolvers.common.pagination import Ordering, PageRequest, load_pages

TRANSACTION_ORDER = Ordering(("-seq",))
CHARGE_ORDER = Ordering(("-period", "created_at"))
DOCUMENT_ORDER = Ordering(("-issued_on", "number"))
PREPAID_ORDER = Ordering(("name",))
PERIOD_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CURRENCY = "RUB"


@dataclass
class BalanceView:
    amount: Decimal
    currency: str = CURRENCY
    prepaid_services: list[PrepaidService] = field(default_factory=list)


def today() -> dt.date:
    return utcnow().date()


async def balance_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    """The last ledger entry's `balance_after` (0 with no entries) and the prepaid services."""
    org_ids = [o.id for o in orgs]
    last = await load_pages(BalanceTransaction, "organization_id", org_ids, TRANSACTION_ORDER, PageRequest(1, None))
    prepaid: dict[Any, list[PrepaidService]] = {org_id: [] for org_id in org_ids}
    if org_ids and "prepaid_services" in args.get(SELECTED, ("prepaid_services",)):
        for service in await select(PrepaidService, Q(organization_id__in=org_ids), PREPAID_ORDER.fields()):
            prepaid[service.organization_id].append(service)
    return [
        BalanceView(
            amount=last[o.id].items[0].balance_after if last[o.id].items else Decimal("0.00"),
            prepaid_services=prepaid[o.id],
        )
        for o in orgs
    ]


def _day_range(field_name: str, start: dt.date | None, end: dt.date | None, is_datetime: bool) -> Q | None:
    """Inclusive [start, end] days; for a DateTime column the days are UTC days."""
    if start and end and start > end:
        raise bad_user_input("`from` must not be after `to`.")
    conditions = {}
    if start:
        conditions[f"{field_name}__gte"] = (
            dt.datetime.combine(start, dt.time(), dt.timezone.utc) if is_datetime else start
        )
    if end:
        conditions[f"{field_name}__lt" if is_datetime else f"{field_name}__lte"] = (
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc) if is_datetime else end
        )
    return Q(**conditions) if conditions else None


async def transactions_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    org_ids = [o.id for o in orgs]
    pages = await load_pages(
        BalanceTransaction, "organization_id", org_ids, TRANSACTION_ORDER, page_request(ctx, args),
        filters=_day_range("occurred_at", args.get("from"), args.get("to"), is_datetime=True),
        with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def charges_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    org_ids = [o.id for o in orgs]
    conditions: dict[str, Any] = {}
    if args.get("period") is not None:
        if not PERIOD_PATTERN.match(args["period"]):
            raise bad_user_input("`period` is a month: YYYY-MM, e.g. 2026-10.")
        conditions["period"] = args["period"]
    if args.get("kind"):
        conditions["kind"] = args["kind"]
    pages = await load_pages(
        Charge, "organization_id", org_ids, CHARGE_ORDER, page_request(ctx, args),
        filters=Q(**conditions) if conditions else None, with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


def visible_documents() -> Q:
    """Invoices and acts of month M appear on the 10th of M+1 (`visible_from`); a withdrawn one is gone."""
    return Q(visible_from__lte=today(), withdrawn_at__isnull=True)


def document_filters(args: dict[str, Any]) -> Q:
    """The published documents `Organization.documents`' arguments ask for (also read by schema/sql_json.py)."""
    filters = visible_documents()
    if args.get("kind"):
        filters &= Q(kind=args["kind"])
    days = _day_range("issued_on", args.get("from"), args.get("to"), is_datetime=False)
    if days is not None:
        filters &= days
    return filters


async def documents_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    org_ids = [o.id for o in orgs]
    pages = await load_pages(
        Document, "organization_id", org_ids, DOCUMENT_ORDER, page_request(ctx, args),
        filters=document_filters(args), with_total=wants_total(args),
    )
    return [pages[o.id] for o in orgs]


async def document_of_transaction(ctx: RequestContext, rows: list[BalanceTransaction], args: dict[str, Any]) -> list:
    return await related_one(Document, rows, "document_id")  # an unpublished one: the Document rule hides it
