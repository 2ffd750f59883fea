"""`Organization.dashboard`: the home page's summary (resolvers/organizations/dashboard.py), each part loaded for
all organizations of a query at once and each gated by the role table like the field it sums up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from models.updates import UpdateRunStatus
from resolvers.organizations import dashboard as resolvers
from schema.tickets import TicketStatus  # the model's enum, described for the schema there
from resolvers.organizations.dashboard import ContractEndView, DashboardRow, PeopleView, RunwayView, TicketsView, UpdatesView
from schema.batching import batched, loaded
from schema.products import Contract, Product
from schema.updates import UpdateRun


@strawberry.type(description="The contract that ends soonest, from today on.")
class ContractEnd:
    ends_on: dt.date = strawberry.field(description="Its last day in force.")
    days_left: int = strawberry.field(description="Days from today to `endsOn` (0: it ends today).")
    contract: Contract = strawberry.field(description="The contract.")
    product: Product | None = strawberry.field(description="The first of its products by name; null when it has none.")

    @classmethod
    def from_view(cls, view: ContractEndView) -> ContractEnd:
        return cls(
            ends_on=view.ends_on, days_left=view.days_left, contract=Contract.from_model(view.contract),
            product=Product.from_model(view.product) if view.product is not None else None,
        )


@strawberry.type(description="How many update runs are in one status.")
class UpdateRunStatusCount:
    status: UpdateRunStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Runs in it.")


@strawberry.type(description="Updates and their state: planned and running runs, and those planned within the last 30 days.")
class UpdatesSummary:
    by_status: list[UpdateRunStatusCount] = strawberry.field(description="Runs by status (statuses with none left out).")
    pending: int = strawberry.field(description="Runs planned and not started (QUARANTINE and SCHEDULED).")
    next_run: UpdateRun | None = strawberry.field(description="The planned run that starts first; null when none is planned.")

    @classmethod
    def from_view(cls, view: UpdatesView) -> UpdatesSummary:
        return cls(
            by_status=[UpdateRunStatusCount(status=s, count=n) for s, n in sorted(view.counts.items(), key=lambda i: i[0].value)],
            pending=view.pending, next_run=UpdateRun.from_model(view.next_run) if view.next_run is not None else None,
        )


@strawberry.type(description="How many tickets are in one status.")
class TicketStatusCount:
    status: TicketStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Tickets in it.")


@strawberry.type(description="Support tickets not closed yet, of those the viewer sees.")
class OpenTicketsSummary:
    by_status: list[TicketStatusCount] = strawberry.field(description="Tickets by status (statuses with none left out).")
    total: int = strawberry.field(description="All of them.")

    @classmethod
    def from_view(cls, view: TicketsView) -> OpenTicketsSummary:
        return cls(
            by_status=[TicketStatusCount(status=s, count=n) for s, n in sorted(view.counts.items(), key=lambda i: i[0].value)],
            total=view.open,
        )


@strawberry.type(description="The organization's people.")
class PeopleSummary:
    members_count: int = strawberry.field(description="Members, the owner included.")
    pending_invites_count: int = strawberry.field(description="Invitations sent and still usable (pending, not expired).")

    @classmethod
    def from_view(cls, view: PeopleView) -> PeopleSummary:
        return cls(members_count=view.members, pending_invites_count=view.pending_invites)


@strawberry.type(description="«Средств хватит примерно на N дней»: the balance over the average daily charge of the last 30 days.")
class BalanceRunway:
    days: int = strawberry.field(description="Whole days the balance lasts at that pace (0 when it is used up).")
    runs_out_on: dt.date = strawberry.field(description="Today plus `days`.")
    balance: Decimal = strawberry.field(description="The balance now.")
    charged_last_30_days: Decimal = strawberry.field(description="What was charged in the last 30 days.")
    average_daily_charge: Decimal = strawberry.field(description="That over 30.")

    @classmethod
    def from_view(cls, view: RunwayView) -> BalanceRunway:
        return cls(
            days=view.days, runs_out_on=view.runs_out_on, balance=view.balance, charged_last_30_days=view.charged,
            average_daily_charge=view.daily,
        )


@strawberry.type(
    description="The organization's home page at a glance. Each part is seen by whom the role table lets see what "
    "it sums up (FORBIDDEN on that field otherwise, the rest answers)."
)
class Dashboard:
    model: strawberry.Private[DashboardRow]

    @classmethod
    def from_model(cls, model: DashboardRow) -> Dashboard:
        return cls(model=model)

    @strawberry.field(description="The contract that ends soonest (any member); null when none ends from today on.")
    @batched(resolvers.nearest_contract_end_of, to=ContractEnd.from_view)
    def nearest_contract_end(self, info: strawberry.Info) -> ContractEnd | None:
        return loaded(self, info)

    @strawberry.field(
        description="Update runs by status and the next one planned: OWNER, ADMIN; a USER: of the databases granted "
        "to them. ACCOUNTANT: FORBIDDEN."
    )
    @batched(resolvers.updates_of, to=UpdatesSummary.from_view)
    def updates(self, info: strawberry.Info) -> UpdatesSummary | None:
        return loaded(self, info)

    @strawberry.field(
        description="Support tickets not closed, by status: OWNER and ADMIN count the organization's, every other "
        "member their own."
    )
    @batched(resolvers.open_tickets_of, to=OpenTicketsSummary.from_view)
    def open_tickets(self, info: strawberry.Info) -> OpenTicketsSummary:
        return loaded(self, info)

    @strawberry.field(description="Members and pending invitations: OWNER, ADMIN, ACCOUNTANT (USER: FORBIDDEN).")
    @batched(resolvers.people_of, to=PeopleSummary.from_view)
    def people(self, info: strawberry.Info) -> PeopleSummary | None:
        return loaded(self, info)

    @strawberry.field(
        description="How long the balance lasts at the last 30 days' pace: OWNER, ADMIN, ACCOUNTANT (USER: FORBIDDEN); "
        "null when nothing was charged in those days."
    )
    @batched(resolvers.balance_runway_of, to=BalanceRunway.from_view)
    def balance_runway(self, info: strawberry.Info) -> BalanceRunway | None:
        return loaded(self, info)
