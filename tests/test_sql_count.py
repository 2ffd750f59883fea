"""The full dashboard costs the same number of SQL statements for 2 organizations or 20."""

from __future__ import annotations

import uuid

from kabinet.bulk_data import seed_many_organizations

# Pages as large as the largest data set below (20 organizations of 20 rows, 4 databases each): the
# query's estimated cost must stay under `max_query_cost` (schema/limits.py).
FULL_DASHBOARD = """{
  me { fullName memberships { role } }
  organizations(first: 20) { totalCount edges { node {
    name viewerRole legalName managers { fullName phone }
    requisites { inn bic settlementAccount pendingChange { status requestedBy { fullName } } }
    products(first: 20) { totalCount edges { node { name contract { number status } } } }
    balance { amount prepaidServices { name remaining } }
    notificationSettings { enabledKinds windowStart digestHours }
    documents(first: 10) { totalCount edges { node { number amount downloadUrl } } }
    cloudSubscription { canExtend extendBlockedReason nextExtendAt extensionTerms { endsAt } }
    cloudSubscriptions(first: 3) { edges { node { tariff sessionsLimit } } }
    databases(first: 5) { edges { node { name updateSchedule { mode nextRunAt }
      updateRuns(first: 2) { edges { node { status scheduledBecause { origin explanation release { version } } } } }
      cluster { name connected lastReportAt } sessionsAsOf
      sessions(first: 20) { totalCount edges { node { userName } } } } } }
    sessions(first: 20) { edges { node { userName database { name cluster { name } } user { email } } } }
  } } }
}"""


async def on_clusters(email: str) -> None:
    """Half the user's databases on clusters (one each), half on none: Database.cluster and sessionsAsOf read both."""
    from models.cloud import Database
    from models.identity import User
    from models.organizations import Membership
    from resolvers.cloud import clusters

    user = await User.get(email=email)
    organization_ids = await Membership.filter(user_id=user.id).values_list("organization_id", flat=True)
    for i, database in enumerate(await Database.filter(organization_id__in=organization_ids).order_by("id")):
        if i % 2 == 0:
            await clusters.place(database, await clusters.add(f"sql-{uuid.uuid4().hex[:12]}"), "base")


async def statements_for(gql, sql_counter, organizations: int, rows: int) -> tuple[list[str], dict]:
    email = f"bulk-{uuid.uuid4().hex[:8]}@example.com"
    await seed_many_organizations(email, "bulk-password", organizations=organizations, rows=rows)
    await on_clusters(email)
    await gql.token_for_password(email, "bulk-password")
    with sql_counter() as counter:
        body = await gql.execute(FULL_DASHBOARD, as_user=email)
    assert "errors" not in body, body["errors"]
    return counter.statements, body


async def test_the_dashboard_query_costs_the_same_statements_at_ten_times_the_data(gql, sql_counter):
    small_statements, small_body = await statements_for(gql, sql_counter, organizations=2, rows=2)
    large_statements, large_body = await statements_for(gql, sql_counter, organizations=20, rows=20)
    small, large = len(small_statements), len(large_statements)
    assert small_body["data"]["organizations"]["totalCount"] == 2
    assert large_body["data"]["organizations"]["totalCount"] == 20
    first = large_body["data"]["organizations"]["edges"][0]["node"]
    assert first["products"]["totalCount"] == 20 and len(first["products"]["edges"]) == 20
    assert all(e["node"]["contract"] for e in first["products"]["edges"])
    assert large == small, f"{small} statements for the small data set, {large} for the large one"
    assert small <= 25, "\n".join(small_statements)


# The dashboard summary (issue 20, resolvers/organizations/dashboard.py) of every organization at once.
DASHBOARD_SUMMARY = """{ organizations(first: 20) { totalCount edges { node { name dashboard {
  nearestContractEnd { endsOn daysLeft contract { number } product { name } }
  updates { pending byStatus { status count } nextRun { scheduledFor database { name } } }
  people { membersCount pendingInvitesCount }
  balanceRunway { days balance chargedLast30Days }
  openTickets { total byStatus { status count } }
} } } } }"""


async def with_update_runs(email: str) -> None:
    """Each database of the user's organizations: one run planned, one done (the summary counts both)."""
    import datetime as dt

    from foundation.clock import utcnow
    from models.cloud import Database
    from models.identity import User
    from models.organizations import Membership
    from models.updates import UpdateRun, UpdateRunStatus

    user = await User.get(email=email)
    organization_ids = await Membership.filter(user_id=user.id).values_list("organization_id", flat=True)
    now = utcnow()
    for i, database in enumerate(await Database.filter(organization_id__in=organization_ids)):
        await UpdateRun.create(organization_id=database.organization_id, database=database, status=UpdateRunStatus.SCHEDULED,
                               scheduled_for=now + dt.timedelta(hours=i + 1))
        await UpdateRun.create(organization_id=database.organization_id, database=database, status=UpdateRunStatus.SUCCEEDED,
                               scheduled_for=now - dt.timedelta(days=1))


async def summary_statements(gql, sql_counter, organizations: int, rows: int) -> tuple[list[str], dict]:
    email = f"bulk-{uuid.uuid4().hex[:8]}@example.com"
    await seed_many_organizations(email, "bulk-password", organizations=organizations, rows=rows)
    await with_update_runs(email)
    await gql.token_for_password(email, "bulk-password")
    with sql_counter() as counter:
        body = await gql.execute(DASHBOARD_SUMMARY, as_user=email)
    assert "errors" not in body, body["errors"]
    return counter.statements, body


async def test_the_dashboard_summary_costs_the_same_statements_for_every_organization_at_once(gql, sql_counter):
    small_statements, small_body = await summary_statements(gql, sql_counter, organizations=2, rows=2)
    large_statements, large_body = await summary_statements(gql, sql_counter, organizations=20, rows=20)
    first = large_body["data"]["organizations"]["edges"][0]["node"]["dashboard"]
    assert first["nearestContractEnd"]["product"] and first["updates"]["pending"] == 4
    assert first["updates"]["nextRun"]["database"]["name"] and first["people"]["membersCount"] == 1
    assert len(large_statements) == len(small_statements), (
        f"{len(small_statements)} statements for 2 organizations, {len(large_statements)} for 20:\n" + "\n".join(large_statements)
    )
    assert len(small_statements) <= 16, "\n".join(small_statements)
