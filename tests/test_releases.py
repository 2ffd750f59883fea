"""Releases: the provider publishes one, ON_RELEASE databases wait 24 h in quarantine, a recall cancels."""

from __future__ import annotations

import datetime as dt
import uuid

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.organizations import Role
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from foundation.ids import from_global_id, to_global_id
from resolvers.common.context import SystemActor
from resolvers.updates.releases import plan_quarantined_run, version_key
from tests import factories

UTC = dt.timezone.utc
PUBLISH = """mutation($c: String!, $v: String!) { publishRelease(configuration: $c, version: $v) {
  release { id configuration version publishedAt recalledAt } userErrors { code field message } } }"""
RECALL = """mutation($id: ID!) { recallRelease(releaseId: $id) {
  release { id version recalledAt } userErrors { code field message } } }"""
NEXT_RUN = """query($id: ID!) { node(id: $id) { ... on Database { updateSchedule { nextRunAt } } } }"""


def configuration() -> str:
    return f"Тестовая конфигурация {uuid.uuid4().hex[:8]}"


async def staff() -> str:
    user = await factories.create_user(factories.unique_email("staff"))
    user.is_staff = True
    await user.save()
    return user.email


async def signed_in(gql, email: str) -> str:
    await gql.token_for_password(email, factories.PASSWORD)
    return email


async def publish(gql, email: str, config: str, version: str) -> dict:
    body = await gql.execute(PUBLISH, {"c": config, "v": version}, as_user=await signed_in(gql, email))
    assert "errors" not in body, body
    return body["data"]["publishRelease"]


async def recall(gql, email: str, release_id: str) -> dict:
    body = await gql.execute(RECALL, {"id": release_id}, as_user=await signed_in(gql, email))
    assert "errors" not in body, body
    return body["data"]["recallRelease"]


async def database_updated(org, config: str, mode: UpdateMode, *, typical: bool = True, version: str = "3.0.150.20",
                           time_of_day: str = "03:00", timezone: str = "Europe/Moscow"):
    database = await factories.create_database(org, typical=typical)
    database.configuration, database.version = config, version
    await database.save()
    await UpdateSchedule.filter(database_id=database.id).update(mode=mode, time_of_day=time_of_day, timezone=timezone)
    return database


def payload_pk(payload: dict) -> uuid.UUID:
    return from_global_id(payload["release"]["id"])[1]


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def runs_of(database) -> list[UpdateRun]:
    return await UpdateRun.filter(database_id=database.id).order_by("created_at")


# ---------------------------------------------------------------------------------------- versions


def test_versions_compare_as_dotted_numbers():
    assert version_key("3.0.152.15") > version_key("3.0.150.20")
    assert version_key("3.0.100.1") > version_key("3.0.99.9")
    assert version_key("11.5.18.30") > version_key("3.0.152.15")
    assert max(["3.0.9.1", "3.0.10.0", "3.0.1.99"], key=version_key) == "3.0.10.0"


# ---------------------------------------------------------------------------------------- publishing


async def test_staff_publish_a_release(gql):
    config, before = configuration(), utcnow()
    payload = await publish(gql, await staff(), config, "3.0.152.15")
    assert payload["userErrors"] == []
    release = payload["release"]
    assert (release["configuration"], release["version"], release["recalledAt"]) == (config, "3.0.152.15", None)
    assert before - dt.timedelta(seconds=1) <= parse(release["publishedAt"]) <= utcnow()
    assert await Release.exists(configuration=config, version="3.0.152.15")


async def test_a_release_puts_each_on_release_database_in_quarantine_for_24_hours(gql):
    config = configuration()
    org, team = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE)
    payload = await publish(gql, await staff(), config, "3.0.152.15")
    [run] = await runs_of(database)
    assert run.status == UpdateRunStatus.QUARANTINE and run.target_version == "3.0.152.15"
    assert run.scheduled_for == parse(payload["release"]["publishedAt"]) + dt.timedelta(hours=24)
    assert run.organization_id == org.id and to_global_id("Release", run.release_id) == payload["release"]["id"]
    await gql.token_for_password(team[Role.OWNER].email, factories.PASSWORD)
    body = await gql.execute(NEXT_RUN, {"id": to_global_id("Database", database.id)}, as_user=team[Role.OWNER].email)
    assert parse(body["data"]["node"]["updateSchedule"]["nextRunAt"]) == run.scheduled_for


async def test_a_release_plans_nothing_for_databases_updated_otherwise(gql):
    config = configuration()
    org, _ = await factories.create_team()
    monthly = await database_updated(org, config, UpdateMode.MONTHLY)
    disabled = await database_updated(org, config, UpdateMode.DISABLED)
    modified = await database_updated(org, config, UpdateMode.ON_RELEASE, typical=False)
    other_configuration = await database_updated(org, configuration(), UpdateMode.ON_RELEASE)
    await publish(gql, await staff(), config, "3.0.152.15")
    for database in (monthly, disabled, modified, other_configuration):
        assert await runs_of(database) == []


async def test_a_release_no_newer_than_the_installed_version_plans_nothing(gql):
    config = configuration()
    org, _ = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE, version="3.0.152.15")
    await publish(gql, await staff(), config, "3.0.99.1")
    assert await runs_of(database) == []


async def test_a_newer_release_supersedes_the_run_planned_for_an_older_one(gql):
    config, email = configuration(), await staff()
    org, _ = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE)
    await publish(gql, email, config, "3.0.151.1")
    await publish(gql, email, config, "3.0.152.2")
    older, newer = await runs_of(database)
    assert (older.status, older.target_version) == (UpdateRunStatus.CANCELLED, "3.0.151.1") and "3.0.152.2" in older.message
    assert (newer.status, newer.target_version) == (UpdateRunStatus.QUARANTINE, "3.0.152.2")


async def test_an_older_release_published_late_leaves_the_newer_planned_run(gql):
    config, email = configuration(), await staff()
    org, _ = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE)
    await publish(gql, email, config, "3.0.152.2")
    await publish(gql, email, config, "3.0.151.9")
    [run] = await runs_of(database)
    assert (run.status, run.target_version) == (UpdateRunStatus.QUARANTINE, "3.0.152.2")


async def test_publishing_is_audited(gql):
    config = configuration()
    org, _ = await factories.create_team()
    await database_updated(org, config, UpdateMode.ON_RELEASE)
    payload = await publish(gql, await staff(), config, "3.0.152.15")
    [entry] = await AuditEntry.filter(action="release.publish", object_id=str(payload_pk(payload)))
    assert entry.organization_id is None and entry.details == {
        "configuration": config, "version": "3.0.152.15", "plannedRuns": 1, "supersededRuns": 0,
    }


async def test_a_version_that_is_not_dotted_numbers_is_invalid(gql):
    email = await staff()
    for version in ("3.0.x", "", "3..1", "v3.0.1"):
        payload = await publish(gql, email, configuration(), version)
        assert errors(payload) == [("INVALID", ["version"])], version


async def test_a_configuration_is_required(gql):
    assert errors(await publish(gql, await staff(), "  ", "1.0")) == [("INVALID", ["configuration"])]


async def test_publishing_the_same_version_twice_is_a_conflict(gql):
    config, email = configuration(), await staff()
    await publish(gql, email, config, "3.0.152.15")
    assert errors(await publish(gql, email, config, "3.0.152.15")) == [("CONFLICT", ["version"])]


async def test_an_owner_who_is_not_staff_may_not_publish_a_release(gql):
    config = configuration()
    _, team = await factories.create_team()
    payload = await publish(gql, team[Role.OWNER].email, config, "3.0.152.15")
    assert errors(payload) == [("FORBIDDEN", None)] and payload["release"] is None
    assert not await Release.exists(configuration=config)


# ---------------------------------------------------------------------------------------- recalling


async def test_recalling_a_release_cancels_its_runs_in_quarantine(gql):
    config, email = configuration(), await staff()
    org, _ = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE)
    published = await publish(gql, email, config, "3.0.152.15")
    payload = await recall(gql, email, published["release"]["id"])
    assert payload["userErrors"] == [] and payload["release"]["recalledAt"] is not None
    [run] = await runs_of(database)
    assert run.status == UpdateRunStatus.CANCELLED and "3.0.152.15" in run.message


async def test_a_recalled_release_is_never_installed_even_when_already_scheduled(gql):
    config, email = configuration(), await staff()
    org, _ = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.ON_RELEASE)
    published = await publish(gql, email, config, "3.0.152.15")
    await UpdateRun.filter(database_id=database.id).update(status=UpdateRunStatus.SCHEDULED)
    await recall(gql, email, published["release"]["id"])
    assert [run.status for run in await runs_of(database)] == [UpdateRunStatus.CANCELLED]


async def test_a_monthly_run_aimed_at_a_recalled_release_falls_back_to_the_newest_one_still_out(gql):
    config, email = configuration(), await staff()
    org, team = await factories.create_team()
    database = await database_updated(org, config, UpdateMode.DISABLED)
    await publish(gql, email, config, "3.0.151.4")
    newest = await publish(gql, email, config, "3.0.152.15")
    run = await UpdateRun.create(
        organization_id=org.id, database=database, status=UpdateRunStatus.SCHEDULED, target_version="3.0.152.15",
        scheduled_for=utcnow() + dt.timedelta(days=5),
    )
    await recall(gql, email, newest["release"]["id"])
    await run.refresh_from_db()
    assert (run.status, run.target_version) == (UpdateRunStatus.SCHEDULED, "3.0.151.4")


async def test_recalling_is_audited(gql):
    config, email = configuration(), await staff()
    published = await publish(gql, email, config, "3.0.152.15")
    await recall(gql, email, published["release"]["id"])
    assert await AuditEntry.filter(action="release.recall", object_id=str(payload_pk(published))).count() == 1


async def test_a_release_cannot_be_recalled_twice(gql):
    email = await staff()
    published = await publish(gql, email, configuration(), "3.0.152.15")
    await recall(gql, email, published["release"]["id"])
    assert errors(await recall(gql, email, published["release"]["id"])) == [("INVALID", ["releaseId"])]


async def test_an_unknown_release_is_not_found(gql):
    email = await staff()
    assert errors(await recall(gql, email, to_global_id("Release", uuid.uuid4()))) == [("NOT_FOUND", ["releaseId"])]


async def test_an_owner_who_is_not_staff_may_not_recall_a_release(gql):
    published = await publish(gql, await staff(), configuration(), "3.0.152.15")
    _, team = await factories.create_team()
    assert errors(await recall(gql, team[Role.OWNER].email, published["release"]["id"])) == [("FORBIDDEN", None)]
    assert (await Release.get(version="3.0.152.15", configuration=published["release"]["configuration"])).recalled_at is None


# ---------------------------------------------------------------------------------------- leaving quarantine


async def quarantined(org, config: str, published_at: dt.datetime, **kwargs) -> tuple[UpdateRun, UpdateSchedule]:
    database = await database_updated(org, config, UpdateMode.ON_RELEASE, **kwargs)
    release = await Release.get_or_none(configuration=config, version="3.0.200.1") or await Release.create(
        configuration=config, version="3.0.200.1", published_at=published_at
    )
    run = await UpdateRun.create(
        organization_id=org.id, database=database, release=release, target_version=release.version,
        status=UpdateRunStatus.QUARANTINE, scheduled_for=published_at + dt.timedelta(hours=24),
    )
    return run, await UpdateSchedule.get(database_id=database.id)


async def test_after_quarantine_a_run_is_scheduled_at_the_time_of_day_on_the_first_day_after_it():
    org, _ = await factories.create_team()
    published = dt.datetime(2031, 6, 10, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
    run, schedule = await quarantined(org, configuration(), published, time_of_day="03:00")
    planned = await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=5, now=published + dt.timedelta(hours=24))
    assert planned.status == UpdateRunStatus.SCHEDULED
    assert planned.scheduled_for == dt.datetime(2031, 6, 12, 0, 0, tzinfo=UTC)  # 12 June 03:00 Moscow
    await run.refresh_from_db()
    assert (run.status, run.scheduled_for) == (UpdateRunStatus.SCHEDULED, planned.scheduled_for)


async def test_runs_are_spread_so_that_no_slot_exceeds_its_capacity():
    org, _ = await factories.create_team()
    config = configuration()
    published = dt.datetime(2031, 7, 10, 9, 0, tzinfo=UTC)
    pairs = [await quarantined(org, config, published, time_of_day="02:00") for _ in range(5)]
    slots = []
    for run, schedule in pairs:
        planned = await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=2, now=published + dt.timedelta(hours=24))
        slots.append(planned.scheduled_for)
    first = dt.datetime(2031, 7, 11, 23, 0, tzinfo=UTC)  # 12 July 02:00 Moscow
    assert slots == [first, first, first + dt.timedelta(days=1), first + dt.timedelta(days=1), first + dt.timedelta(days=2)]


async def test_when_every_slot_within_seven_days_is_full_the_least_loaded_one_is_taken():
    org, _ = await factories.create_team()
    config = configuration()
    published = dt.datetime(2031, 8, 10, 9, 0, tzinfo=UTC)
    pairs = [await quarantined(org, config, published, time_of_day="04:00") for _ in range(8)]
    slots = [
        (await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=1, now=published + dt.timedelta(hours=24))).scheduled_for
        for run, schedule in pairs
    ]
    deadline = published + dt.timedelta(days=7)
    assert all(published + dt.timedelta(hours=24) <= slot <= deadline for slot in slots)
    assert len(set(slots[:6])) == 6, "one run per day while days have room"
    assert slots[6] == slots[0], "then the least loaded, earliest slot"


async def test_a_run_released_before_a_dst_change_is_planned_at_local_time_after_it():
    org, _ = await factories.create_team()
    published = dt.datetime(2031, 3, 29, 10, 0, tzinfo=UTC)  # Sunday 30 March 2031 is Berlin's change
    run, schedule = await quarantined(org, configuration(), published, time_of_day="03:00", timezone="Europe/Berlin")
    planned = await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=5, now=published + dt.timedelta(hours=24))
    assert planned.scheduled_for == dt.datetime(2031, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 CEST


async def test_a_run_no_longer_planned_is_left_alone():
    org, _ = await factories.create_team()
    published = dt.datetime(2031, 9, 10, 9, 0, tzinfo=UTC)
    run, schedule = await quarantined(org, configuration(), published)
    await UpdateRun.filter(id=run.id).update(status=UpdateRunStatus.CANCELLED)
    assert await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=5, now=published + dt.timedelta(hours=24)) is None
    await run.refresh_from_db()
    assert run.status == UpdateRunStatus.CANCELLED


async def test_changing_the_time_of_day_moves_a_scheduled_release_run(gql):
    org, team = await factories.create_team()
    published = utcnow() - dt.timedelta(hours=30)
    run, schedule = await quarantined(org, configuration(), published, time_of_day="03:00")
    await plan_quarantined_run(SystemActor("test"), run, schedule, capacity_per_slot=50)
    await gql.token_for_password(team[Role.OWNER].email, factories.PASSWORD)
    body = await gql.execute(
        """mutation($id: ID!) { scheduleUpdate(input: {databaseId: $id, mode: ON_RELEASE, timeOfDay: "05:15"}) {
        userErrors { code } } }""",
        {"id": to_global_id("Database", run.database_id)}, as_user=team[Role.OWNER].email,
    )
    assert body["data"]["scheduleUpdate"]["userErrors"] == []
    await run.refresh_from_db()
    assert run.status == UpdateRunStatus.SCHEDULED
    moscow = run.scheduled_for.astimezone(dt.timezone(dt.timedelta(hours=3)))
    assert moscow.strftime("%H:%M") == "05:15" and run.scheduled_for <= published + dt.timedelta(days=7)
