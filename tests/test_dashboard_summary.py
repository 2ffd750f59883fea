"""`Organization.dashboard` (issue 20, BIT.LK's home page): nearest contract end, updates, people and the
balance runway, each part for the roles the role table lets see what it sums up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from foundation.clock import today, utcnow
from foundation.ids import to_global_id
from models.billing import BalanceTransaction, TransactionKind
from models.organizations import DatabaseGrant, Invite, InviteStatus, Membership, Role
from models.products import Contract, ContractKind, Product, ProductCategory
from models.updates import UpdateRun, UpdateRunStatus
from tests import factories
from tests.factories import PASSWORD

SUMMARY = """query($id: ID!) { organization(id: $id) { dashboard {
  nearestContractEnd { endsOn daysLeft contract { number } product { name } }
  updates { pending byStatus { status count } nextRun { id scheduledFor } }
  people { membersCount pendingInvitesCount }
  balanceRunway { days runsOutOn balance chargedLast30Days averageDailyCharge }
} } }"""


async def summary(gql, organization, user) -> dict:
    await gql.token_for_password(user.email, PASSWORD)
    return await gql.execute(SUMMARY, {"id": to_global_id("Organization", organization.id)}, as_user=user.email)


def forbidden_fields(body: dict) -> set[str]:
    return {e["path"][-1] for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"}


async def furnished():
    """An organization with contracts, update runs on two databases, an invitation and a ledger."""
    organization, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    now, day = utcnow(), today()
    await Contract.create(organization=organization, kind=ContractKind.ITS, number="ИТС-1", starts_on=day - dt.timedelta(days=300), ends_on=day + dt.timedelta(days=65))
    soon = await Contract.create(organization=organization, kind=ContractKind.SERVICE, number="СЕРВ-2", starts_on=day - dt.timedelta(days=30), ends_on=day + dt.timedelta(days=20))
    await Contract.create(organization=organization, kind=ContractKind.PTS, number="ПТС-0", starts_on=day - dt.timedelta(days=400), ends_on=day - dt.timedelta(days=5))
    for name in ("Я-продукт", "Б-продукт"):
        await Product.create(organization=organization, name=name, category=ProductCategory.SERVICE, contract=soon)
    granted, other = await factories.create_database(organization, name="Своя"), await factories.create_database(organization, name="Чужая")
    membership = await Membership.get(organization_id=organization.id, user_id=team[Role.USER].id)
    await DatabaseGrant.create(membership=membership, database=granted)
    runs = [
        (granted, UpdateRunStatus.SCHEDULED, now + dt.timedelta(days=3)),
        (other, UpdateRunStatus.SCHEDULED, now + dt.timedelta(days=1)),
        (other, UpdateRunStatus.QUARANTINE, now + dt.timedelta(hours=20)),
        (granted, UpdateRunStatus.SUCCEEDED, now - dt.timedelta(days=2)),
        (granted, UpdateRunStatus.FAILED, now - dt.timedelta(days=90)),  # long ago: not counted
    ]
    created = []
    for database, status, when in runs:
        created.append(await UpdateRun.create(organization=organization, database=database, status=status, scheduled_for=when))
    await Invite.create(organization=organization, email=factories.unique_email(), role=Role.USER, status=InviteStatus.PENDING,
                        token_hash=factories.unique_email(), expires_at=now + dt.timedelta(days=3))
    await Invite.create(organization=organization, email=factories.unique_email(), role=Role.USER, status=InviteStatus.PENDING,
                        token_hash=factories.unique_email(), expires_at=now - dt.timedelta(days=1))  # expired
    ledger = [
        (now - dt.timedelta(days=40), TransactionKind.TOP_UP, Decimal("10000.00")),
        (now - dt.timedelta(days=35), TransactionKind.CHARGE, Decimal("-5000.00")),  # outside the 30 days
        (now - dt.timedelta(days=20), TransactionKind.CHARGE, Decimal("-1500.00")),
        (now - dt.timedelta(days=5), TransactionKind.CHARGE, Decimal("-1500.00")),
        (now - dt.timedelta(days=1), TransactionKind.TOP_UP, Decimal("3000.00")),
    ]
    balance = Decimal("0.00")
    for seq, (when, kind, amount) in enumerate(ledger, start=1):
        balance += amount
        await BalanceTransaction.create(organization=organization, seq=seq, kind=kind, amount=amount, balance_after=balance,
                                        description="тест", occurred_at=when)
    return organization, team, created


async def test_an_owner_sees_every_part(gql):
    organization, team, runs = await furnished()
    body = await summary(gql, organization, team[Role.OWNER])
    assert "errors" not in body, body
    dashboard = body["data"]["organization"]["dashboard"]
    assert dashboard["nearestContractEnd"] == {
        "endsOn": (today() + dt.timedelta(days=20)).isoformat(), "daysLeft": 20,
        "contract": {"number": "СЕРВ-2"}, "product": {"name": "Б-продукт"},
    }
    updates = dashboard["updates"]
    assert updates["pending"] == 3
    assert {c["status"]: c["count"] for c in updates["byStatus"]} == {"SCHEDULED": 2, "QUARANTINE": 1, "SUCCEEDED": 1}
    assert updates["nextRun"]["id"] == to_global_id("UpdateRun", runs[2].id)
    assert dashboard["people"] == {"membersCount": 4, "pendingInvitesCount": 1}
    runway = dashboard["balanceRunway"]
    # 5000 left, 3000 charged in 30 days: 100 a day, 50 days
    assert (runway["days"], Decimal(runway["balance"]), Decimal(runway["chargedLast30Days"])) == (50, Decimal("5000.00"), Decimal("3000.00"))
    assert Decimal(runway["averageDailyCharge"]) == Decimal("100.00")
    assert runway["runsOutOn"] == (today() + dt.timedelta(days=50)).isoformat()


async def test_each_role_sees_its_parts(gql):
    organization, team, runs = await furnished()
    admin = await summary(gql, organization, team[Role.ADMIN])
    assert "errors" not in admin and admin["data"]["organization"]["dashboard"]["updates"]["pending"] == 3
    accountant = await summary(gql, organization, team[Role.ACCOUNTANT])
    assert forbidden_fields(accountant) == {"updates"}
    dashboard = accountant["data"]["organization"]["dashboard"]
    assert dashboard["updates"] is None and dashboard["people"]["membersCount"] == 4 and dashboard["balanceRunway"]["days"] == 50
    user = await summary(gql, organization, team[Role.USER])
    assert forbidden_fields(user) == {"people", "balanceRunway"}
    dashboard = user["data"]["organization"]["dashboard"]
    assert dashboard["nearestContractEnd"]["contract"]["number"] == "СЕРВ-2"
    # a USER: only the runs of the database granted to them
    assert dashboard["updates"]["pending"] == 1
    assert {c["status"]: c["count"] for c in dashboard["updates"]["byStatus"]} == {"SCHEDULED": 1, "SUCCEEDED": 1}
    assert dashboard["updates"]["nextRun"]["id"] == to_global_id("UpdateRun", runs[0].id)


async def test_another_organization_sees_nothing(gql):
    organization, _, _ = await furnished()
    _, strangers = await factories.create_team()
    body = await summary(gql, organization, strangers[Role.OWNER])
    assert body["data"]["organization"] is None and "errors" not in body


async def test_an_empty_organization_answers_nulls_and_zeros(gql):
    organization, team = await factories.create_team()
    body = await summary(gql, organization, team[Role.OWNER])
    assert "errors" not in body, body
    assert body["data"]["organization"]["dashboard"] == {
        "nearestContractEnd": None, "updates": {"pending": 0, "byStatus": [], "nextRun": None},
        "people": {"membersCount": 1, "pendingInvitesCount": 0}, "balanceRunway": None,
    }


async def test_a_used_up_balance_lasts_zero_days(gql):
    organization, team = await factories.create_team()
    now = utcnow()
    await BalanceTransaction.create(organization=organization, seq=1, kind=TransactionKind.CHARGE, amount=Decimal("-300.00"),
                                    balance_after=Decimal("-300.00"), description="тест", occurred_at=now - dt.timedelta(days=3))
    body = await summary(gql, organization, team[Role.OWNER])
    assert body["data"]["organization"]["dashboard"]["balanceRunway"]["days"] == 0


async def test_the_demo_dashboard_of_romashka(gql):
    body = await gql.execute("""{ organizations(first: 5) { edges { node { inn dashboard {
      nearestContractEnd { endsOn contract { number } } people { membersCount } balanceRunway { days } } } } } }""",
                             as_user="owner@romashka.example")
    assert "errors" not in body, body
    romashka = next(e["node"] for e in body["data"]["organizations"]["edges"] if e["node"]["inn"] == "7707083893")
    assert romashka["dashboard"]["nearestContractEnd"] is not None
    assert romashka["dashboard"]["people"]["membersCount"] >= 4


async def with_tickets():
    """Open tickets of every kind of author, and a closed one (not counted)."""
    from models.tickets import SupportTicket, TicketStatus

    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    tickets = [
        (team[Role.USER], TicketStatus.OPEN), (team[Role.USER], TicketStatus.ANSWERED), (team[Role.USER], TicketStatus.CLOSED),
        (team[Role.ADMIN], TicketStatus.OPEN), (team[Role.OWNER], TicketStatus.WAITING),
    ]
    for author, status in tickets:
        await SupportTicket.create(
            organization=organization, author_id=author.id, author_name=author.full_name, subject="Вопрос", status=status,
            updated_at=utcnow(),
        )
    return organization, team


async def test_open_tickets_on_the_dashboard_count_what_each_viewer_sees_of_them(gql):
    """OWNER and ADMIN count the organization's open tickets, any other member their own."""
    organization, team = await with_tickets()
    query = SUMMARY.replace("people {", "openTickets { total byStatus { status count } }\n  people {")
    for role, total, by_status in (
        (Role.OWNER, 4, {"OPEN": 2, "ANSWERED": 1, "WAITING": 1}), (Role.USER, 2, {"OPEN": 1, "ANSWERED": 1}),
    ):
        await gql.token_for_password(team[role].email, PASSWORD)
        body = await gql.execute(query, {"id": to_global_id("Organization", organization.id)}, as_user=team[role].email)
        tickets = body["data"]["organization"]["dashboard"]["openTickets"]
        assert tickets["total"] == total and {c["status"]: c["count"] for c in tickets["byStatus"]} == by_status, role
