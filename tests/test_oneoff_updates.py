"""A one-off update beside the schedule (BIT.LK «разовое обновление» while updated on release): the
on-release or monthly schedule stays in force, keeps its runs, and the one-off runs on its own. And why a
run is planned when it is (`UpdateRun.scheduledBecause`)."""

from __future__ import annotations

import datetime as dt

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.organizations import Role
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunOrigin, UpdateRunStatus, UpdateSchedule
from foundation.ids import to_global_id
from resolvers.common.context import SystemActor
from resolvers.updates.releases import plan_quarantined_run
from tests import factories
from tests.test_releases import configuration, publish, staff
from tests.test_schedules import SCHEDULE, SKIP, dbid, errors, parse, signed_in, typical_database, wire
from tests.test_update_worker import updatable_database, worker_for

UTC = dt.timezone.utc
ONE_OFF = """mutation($db: ID!, $at: DateTime!) { scheduleOneOffUpdate(databaseId: $db, at: $at) {
  updateRun { id status scheduledFor targetVersion scheduledBecause { origin explanation } }
  userErrors { code field message } } }"""
REASONS = """query($id: ID!) { node(id: $id) { ... on Database { updateRuns(first: 10) { edges { node { status scheduledFor
  scheduledBecause { origin release { version } quarantineEndsAt latestAt dayOfMonth timeOfDay timezone firstPossibleSlot
  movedByCapacity retry explanation } } } } } } }"""


async def one_off(gql, user, database, at: dt.datetime) -> dict:
    body = await gql.execute(ONE_OFF, {"db": dbid(database), "at": wire(at)}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["scheduleOneOffUpdate"]


async def on_release(gql, user, database) -> None:
    body = await gql.execute(
        SCHEDULE, {"input": {"databaseId": dbid(database), "mode": "ON_RELEASE", "timeOfDay": "03:00"}},
        as_user=await signed_in(gql, user),
    )
    assert body["data"]["scheduleUpdate"]["userErrors"] == [], body


async def test_a_one_off_keeps_the_on_release_schedule_and_its_quarantined_run(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await typical_database(org)
    await on_release(gql, team[Role.OWNER], database)
    await publish(gql, await staff(), database.configuration, "9.9.9.1")
    [quarantined] = await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.QUARANTINE)

    at = utcnow() + dt.timedelta(hours=5)
    payload = await one_off(gql, team[Role.ADMIN], database, at)
    assert payload["userErrors"] == []
    run = payload["updateRun"]
    assert run["status"] == "SCHEDULED" and parse(run["scheduledFor"]) == at.replace(microsecond=at.microsecond)
    assert run["scheduledBecause"]["origin"] == "ONE_OFF" and "дополнительно к расписанию" in run["scheduledBecause"]["explanation"]
    schedule = await UpdateSchedule.get(database_id=database.id)
    assert schedule.mode == UpdateMode.ON_RELEASE, "the one-off left the on-release mode in force"
    await quarantined.refresh_from_db()
    assert quarantined.status == UpdateRunStatus.QUARANTINE, "the release's run is still planned"
    assert await AuditEntry.exists(organization_id=org.id, action="update_run.one_off")

    # A newer release supersedes the schedule's run, never the one-off.
    await publish(gql, await staff(), database.configuration, "9.9.9.2")
    statuses = {r.origin: r.status for r in await UpdateRun.filter(database_id=database.id, status__in=["QUARANTINE", "SCHEDULED"])}
    assert statuses == {UpdateRunOrigin.ONE_OFF: UpdateRunStatus.SCHEDULED, UpdateRunOrigin.ON_RELEASE: UpdateRunStatus.QUARANTINE}


async def test_changing_the_mode_cancels_the_schedules_runs_but_not_a_one_off(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await typical_database(org)
    body = await gql.execute(
        SCHEDULE, {"input": {"databaseId": dbid(database), "mode": "MONTHLY", "dayOfMonth": 3, "timeOfDay": "02:00"}},
        as_user=await signed_in(gql, team[Role.OWNER]),
    )
    assert body["data"]["scheduleUpdate"]["userErrors"] == []
    await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(days=1))
    await on_release(gql, team[Role.OWNER], database)
    runs = {r.origin: r.status for r in await UpdateRun.filter(database_id=database.id)}
    assert runs == {UpdateRunOrigin.MONTHLY: UpdateRunStatus.CANCELLED, UpdateRunOrigin.ONE_OFF: UpdateRunStatus.SCHEDULED}


async def test_after_a_one_off_runs_the_schedule_is_as_it_was(app, gql, settings):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await updatable_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=5, time_of_day="02:00")
    monthly = await UpdateRun.create(  # the schedule's next run, a month away
        organization_id=org.id, database=database, status=UpdateRunStatus.SCHEDULED, origin=UpdateRunOrigin.MONTHLY,
        scheduled_for=utcnow() + dt.timedelta(days=20), target_version="3.0.151.7",
    )
    await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(seconds=1))
    [run] = await UpdateRun.filter(database_id=database.id, origin=UpdateRunOrigin.ONE_OFF)
    await UpdateRun.filter(id=run.id).update(scheduled_for=utcnow() - dt.timedelta(seconds=1))  # due now
    assert await worker_for(app, settings, database).step() == 1
    await run.refresh_from_db()
    assert run.status == UpdateRunStatus.SUCCEEDED
    await monthly.refresh_from_db()
    assert monthly.status == UpdateRunStatus.SCHEDULED
    assert await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.SCHEDULED).count() == 1, "nothing more planned"
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.MONTHLY


async def test_a_one_off_does_not_stop_a_monthly_schedule_from_getting_its_run(app, gql, settings):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await updatable_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=20, time_of_day="04:00")
    await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(days=1))
    assert await worker_for(app, settings, database).plan_missing_monthly_runs() == 1


async def test_skipping_a_one_off_skips_it_alone(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await typical_database(org)
    run_at = utcnow() + dt.timedelta(days=2)
    body = await gql.execute(
        SCHEDULE, {"input": {"databaseId": dbid(database), "mode": "ONCE", "runAt": wire(run_at)}},
        as_user=await signed_in(gql, team[Role.OWNER]),
    )
    assert body["data"]["scheduleUpdate"]["userErrors"] == []
    payload = await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(days=1))
    body = await gql.execute(SKIP, {"id": payload["updateRun"]["id"]}, as_user=team[Role.OWNER].email)
    assert body["data"]["skipUpdateRun"]["userErrors"] == []
    schedule = await UpdateSchedule.get(database_id=database.id)
    assert schedule.mode == UpdateMode.ONCE
    [once] = await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.SCHEDULED)
    assert once.origin == UpdateRunOrigin.ONCE


async def test_one_off_refusals(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await typical_database(org)
    soon = utcnow() + dt.timedelta(hours=1)
    payload = await one_off(gql, team[Role.USER], database, soon)
    assert errors(payload)[0][0] in ("FORBIDDEN", "NOT_FOUND")
    assert errors(await one_off(gql, team[Role.ACCOUNTANT], database, soon))[0][0] in ("FORBIDDEN", "NOT_FOUND")
    assert errors(await one_off(gql, team[Role.OWNER], database, utcnow() - dt.timedelta(minutes=1))) == [("INVALID", ["at"])]
    assert errors(await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(days=91))) == [("INVALID", ["at"])]
    custom = await factories.create_database(org, typical=False)
    refused = await one_off(gql, team[Role.OWNER], custom, soon)
    assert errors(refused) == [("INVALID", ["databaseId"])] and "менеджер" in refused["userErrors"][0]["message"]
    for hours in (1, 2, 3):
        assert (await one_off(gql, team[Role.OWNER], database, utcnow() + dt.timedelta(hours=hours)))["userErrors"] == []
    assert errors(await one_off(gql, team[Role.OWNER], database, soon)) == [("LIMIT_EXCEEDED", ["databaseId"])]
    other, other_team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    assert errors(await one_off(gql, other_team[Role.OWNER], database, soon)) == [("NOT_FOUND", ["databaseId"])]
    bad = await gql.execute(ONE_OFF, {"db": "nonsense", "at": "2031-01-01T00:00:00"}, as_user=team[Role.OWNER].email)
    assert "errors" in bad  # a moment without an offset is refused, not a 500


# ---------------------------------------------------------------------------------------- why then


async def test_an_on_release_run_says_its_release_quarantine_and_slot(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    config = configuration()
    database = await typical_database(org)
    database.configuration, database.version = config, "3.0.150.20"
    await database.save()
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.ON_RELEASE, time_of_day="03:00")
    published = dt.datetime(2031, 6, 10, 9, 0, tzinfo=UTC)
    release = await Release.create(configuration=config, version="3.0.200.1", published_at=published)
    run = await UpdateRun.create(
        organization_id=org.id, database=database, release=release, target_version=release.version,
        status=UpdateRunStatus.QUARANTINE, scheduled_for=published + dt.timedelta(hours=24), origin=UpdateRunOrigin.ON_RELEASE,
    )
    body = await gql.execute(REASONS, {"id": dbid(database)}, as_user=await signed_in(gql, team[Role.OWNER]))
    reason = body["data"]["node"]["updateRuns"]["edges"][0]["node"]["scheduledBecause"]
    assert reason["origin"] == "ON_RELEASE" and reason["release"] == {"version": "3.0.200.1"}
    assert parse(reason["quarantineEndsAt"]) == published + dt.timedelta(hours=24)
    assert parse(reason["latestAt"]) == published + dt.timedelta(days=7)
    assert parse(reason["firstPossibleSlot"]) == dt.datetime(2031, 6, 12, 0, 0, tzinfo=UTC)  # 12 June 03:00 Moscow
    assert "карантине" in reason["explanation"] and reason["movedByCapacity"] is False

    # Full slots: the run lands a day later, and says so.
    schedule = await UpdateSchedule.get(database_id=database.id)
    other = await typical_database(org)
    await UpdateRun.create(
        organization_id=org.id, database=other, status=UpdateRunStatus.SCHEDULED,
        scheduled_for=dt.datetime(2031, 6, 12, 0, 0, tzinfo=UTC), origin=UpdateRunOrigin.MONTHLY,
    )
    await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=1, now=published + dt.timedelta(hours=24))
    body = await gql.execute(REASONS, {"id": dbid(database)}, as_user=team[Role.OWNER].email)
    node = body["data"]["node"]["updateRuns"]["edges"][0]["node"]
    assert parse(node["scheduledFor"]) == dt.datetime(2031, 6, 13, 0, 0, tzinfo=UTC)
    assert node["scheduledBecause"]["movedByCapacity"] is True and "заняты" in node["scheduledBecause"]["explanation"]


async def test_a_monthly_run_says_its_day_and_time(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await typical_database(org)
    body = await gql.execute(
        SCHEDULE, {"input": {"databaseId": dbid(database), "mode": "MONTHLY", "dayOfMonth": 7, "timeOfDay": "01:30",
                             "timezone": "Asia/Almaty"}},
        as_user=await signed_in(gql, team[Role.OWNER]),
    )
    assert body["data"]["scheduleUpdate"]["userErrors"] == []
    body = await gql.execute(REASONS, {"id": dbid(database)}, as_user=team[Role.OWNER].email)
    reason = body["data"]["node"]["updateRuns"]["edges"][0]["node"]["scheduledBecause"]
    assert (reason["origin"], reason["dayOfMonth"], reason["timeOfDay"], reason["timezone"]) == ("MONTHLY", 7, "01:30", "Asia/Almaty")
    assert reason["release"] is None and reason["quarantineEndsAt"] is None and "7-го числа" in reason["explanation"]
