"""The dashboard summary of an organization (BIT.LK's home page, «главная страница»): its nearest
contract end, its updates and their state, its people, and how long its balance lasts.

Each part is a loader for a whole list of organizations at once, a fixed number of statements
whatever the number of organizations and rows (tests/test_sql_count.py). Who sees which part is the
role table's (resolvers/common/permissions.py FIELD_RULES on `Dashboard`): the people as members are seen,
the balance runway as the balance is, the updates as update runs are (a USER: the databases granted
to them, narrowed in SQL by the same rule's `scope`), the open support tickets as tickets are (OWNER
and ADMIN: the organization's; every other member: their own).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from foundation.clock import today, utcnow
from models.billing import BalanceTransaction, TransactionKind
from models.organizations import Invite, InviteStatus, Membership
from models.products import Contract, Product
from models.select import count_per_parent
from models.tickets import SupportTicket, TicketStatus
from models.updates import PLANNED_RUN_STATUSES, UpdateRun, UpdateRunStatus
from resolvers.common import permissions
from resolvers.common.context import RequestContext
from resolvers.common.pagination import Ordering, PageRequest, load_pages
from resolvers.common.permissions import Sight

RUNWAY_WINDOW_DAYS = 30  # the charges the runway is worked out from
RECENT_RUNS = dt.timedelta(days=30)  # finished runs counted: those planned within this past window
CONTRACT_END_ORDER = Ordering(("ends_on",))
FIRST_PRODUCT_ORDER = Ordering(("name",))
NEXT_RUN_ORDER = Ordering(("scheduled_for",))
LAST_ENTRY_ORDER = Ordering(("-seq",))


@dataclass(frozen=True)
class DashboardRow:
    """What the `Dashboard` object stands on: its organization (every part is loaded from it)."""

    organization_id: uuid.UUID

    @property
    def id(self) -> uuid.UUID:
        return self.organization_id


async def dashboard_of(ctx: RequestContext, orgs: list[Any], args: dict[str, Any]) -> list[DashboardRow]:
    """No statement: each part loads itself, for every organization at once."""
    return [DashboardRow(o.id) for o in orgs]


# ---------------------------------------------------------------------------------------- contract end


@dataclass
class ContractEndView:
    ends_on: dt.date
    days_left: int
    contract: Contract
    product: Product | None


async def nearest_contract_end_of(ctx: RequestContext, rows: list[DashboardRow], args: dict[str, Any]) -> list:
    """The contract that ends soonest from today on (an open-ended one never ends), with the first of
    its products by name: two statements."""
    org_ids = [r.organization_id for r in rows]
    now = today()
    contracts = await load_pages(
        Contract, "organization_id", org_ids, CONTRACT_END_ORDER, PageRequest(1, None),
        filters=Q(ends_on__gte=now),
    )
    nearest = {org_id: page.items[0] for org_id, page in contracts.items() if page.items}
    products = await load_pages(
        Product, "contract_id", [c.id for c in nearest.values()], FIRST_PRODUCT_ORDER, PageRequest(1, None),
    ) if nearest else {}
    answers: list[ContractEndView | None] = []
    for row in rows:
        contract = nearest.get(row.organization_id)
        if contract is None:
            answers.append(None)
            continue
        page = products.get(contract.id)
        answers.append(ContractEndView(
            contract.ends_on, (contract.ends_on - now).days, contract, page.items[0] if page and page.items else None,
        ))
    return answers


# ---------------------------------------------------------------------------------------- updates


@dataclass
class UpdatesView:
    counts: dict[UpdateRunStatus, int] = field(default_factory=dict)
    next_run: UpdateRun | None = None

    @property
    def pending(self) -> int:
        return sum(self.counts.get(status, 0) for status in PLANNED_RUN_STATUSES)


def _seen(ctx: RequestContext, org_ids: list[uuid.UUID], rule: permissions.InOrganization) -> Q | None:
    """The rows `rule` lets the viewer see in these organizations, as one filter (its `scope` per
    organization); None: none at all."""
    alternatives = []
    for org_id in org_ids:
        seen = rule.scope(ctx, org_id)
        if seen.sight is not Sight.SEE:
            continue
        alternatives.append(Q(organization_id=org_id) if seen.narrowing is None else Q(Q(organization_id=org_id), seen.narrowing))
    return Q(*alternatives, join_type="OR") if alternatives else None


async def updates_of(ctx: RequestContext, rows: list[DashboardRow], args: dict[str, Any]) -> list:
    """Runs by status (planned and running ones, and those planned within the last 30 days) and the
    next planned one: two statements."""
    await ctx.memberships()
    org_ids = [r.organization_id for r in rows]
    views = {org_id: UpdatesView() for org_id in org_ids}
    seen = _seen(ctx, org_ids, permissions.TYPE_RULES["UpdateRun"])
    if seen is not None:
        current = Q(status__in=[*PLANNED_RUN_STATUSES, UpdateRunStatus.RUNNING]) | Q(scheduled_for__gte=utcnow() - RECENT_RUNS)
        counted = await (
            UpdateRun.filter(seen, current).annotate(n=Count("id")).group_by("organization_id", "status")
            .values("organization_id", "status", "n")
        )
        for line in counted:
            views[_uuid(line["organization_id"])].counts[UpdateRunStatus(line["status"])] = line["n"]
        upcoming = await load_pages(
            UpdateRun, "organization_id", org_ids, NEXT_RUN_ORDER, PageRequest(1, None),
            filters=Q(seen, status__in=list(PLANNED_RUN_STATUSES)),
        )
        for org_id, page in upcoming.items():
            views[org_id].next_run = page.items[0] if page.items else None
    return [views[r.organization_id] for r in rows]


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# ---------------------------------------------------------------------------------------- support tickets


@dataclass
class TicketsView:
    counts: dict[TicketStatus, int] = field(default_factory=dict)

    @property
    def open(self) -> int:
        return sum(self.counts.values())


async def open_tickets_of(ctx: RequestContext, rows: list[DashboardRow], args: dict[str, Any]) -> list:
    """Tickets not CLOSED, by status, of those the viewer sees (the Ticket rule: OWNER and ADMIN the
    organization's, every other member their own): one statement."""
    await ctx.memberships()
    org_ids = [r.organization_id for r in rows]
    views = {org_id: TicketsView() for org_id in org_ids}
    seen = _seen(ctx, org_ids, permissions.TICKETS_IN_ORGANIZATION)
    if seen is not None:
        counted = await (
            SupportTicket.filter(seen).exclude(status=TicketStatus.CLOSED).annotate(n=Count("id"))
            .group_by("organization_id", "status").values("organization_id", "status", "n")
        )
        for line in counted:
            views[_uuid(line["organization_id"])].counts[TicketStatus(line["status"])] = line["n"]
    return [views[r.organization_id] for r in rows]


# ---------------------------------------------------------------------------------------- people


@dataclass
class PeopleView:
    members: int
    pending_invites: int


async def people_of(ctx: RequestContext, rows: list[DashboardRow], args: dict[str, Any]) -> list:
    """Members, and invitations still usable (PENDING and not expired): two statements."""
    org_ids = [r.organization_id for r in rows]
    members = await count_per_parent(Membership, "organization_id", Q(organization_id__in=org_ids))
    invites = await count_per_parent(
        Invite, "organization_id", Q(organization_id__in=org_ids, status=InviteStatus.PENDING, expires_at__gt=utcnow()),
    )
    return [PeopleView(members.get(r.organization_id, 0), invites.get(r.organization_id, 0)) for r in rows]


# ---------------------------------------------------------------------------------------- balance runway


@dataclass
class RunwayView:
    balance: Decimal
    charged: Decimal  # over the last RUNWAY_WINDOW_DAYS days
    daily: Decimal
    days: int
    runs_out_on: dt.date


async def balance_runway_of(ctx: RequestContext, rows: list[DashboardRow], args: dict[str, Any]) -> list:
    """«Средств хватит примерно на N дней»: the balance over the average daily charge of the last 30
    days (the ledger's CHARGE entries); null without charges in that time. Two statements."""
    org_ids = [r.organization_id for r in rows]
    last = await load_pages(BalanceTransaction, "organization_id", org_ids, LAST_ENTRY_ORDER, PageRequest(1, None))
    sums = await (
        BalanceTransaction.filter(
            organization_id__in=org_ids, kind=TransactionKind.CHARGE,
            occurred_at__gt=utcnow() - dt.timedelta(days=RUNWAY_WINDOW_DAYS),
        ).annotate(total=Sum("amount")).group_by("organization_id").values("organization_id", "total")
    )
    charged = {_uuid(line["organization_id"]): abs(Decimal(str(line["total"] or 0))) for line in sums}
    answers: list[RunwayView | None] = []
    for row in rows:
        spent = charged.get(row.organization_id, Decimal(0))
        if spent <= 0:
            answers.append(None)
            continue
        page = last[row.organization_id]
        balance = page.items[0].balance_after if page.items else Decimal("0.00")
        daily = spent / RUNWAY_WINDOW_DAYS
        days = max(int(balance / daily), 0)
        answers.append(RunwayView(
            balance, spent.quantize(Decimal("0.01")), daily.quantize(Decimal("0.01"), ROUND_HALF_UP), days,
            today() + dt.timedelta(days=days),
        ))
    return answers
