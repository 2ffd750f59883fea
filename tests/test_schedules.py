"""«Настроить обновление»: one update mode per database, its planned runs, and skipping one run."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from foundation.clock import utcnow
from resolvers.cloud.credentials import CredentialsUnreadable, decrypt_credentials, encrypt_credentials
from models.audit import AuditEntry
from models.organizations import Role
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from foundation.ids import to_global_id
from resolvers.updates.schedules import next_monthly_run
from tests import factories

UTC = dt.timezone.utc
SCHEDULE = """mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) {
  database { id updateSchedule { mode runAt dayOfMonth timeOfDay timezone nextRunAt hasCredentials }
             updateRuns(first: 10) { edges { node { id status scheduledFor targetVersion message } } } }
  userErrors { code field message } } }"""
SKIP = """mutation($id: ID!) { skipUpdateRun(updateRunId: $id) {
  updateRun { id status message database { updateSchedule { mode nextRunAt } } } userErrors { code field message } } }"""


async def signed_in(gql, user) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


def dbid(database) -> str:
    return to_global_id("Database", database.id)


def wire(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def typical_database(org, **kwargs):
    """A typical database of a configuration of its own, so releases published here touch nothing else."""
    database = await factories.create_database(org, **kwargs)
    database.configuration = f"Тестовая конфигурация {uuid.uuid4().hex[:8]}"
    await database.save()
    return database


async def schedule(gql, user, database, **fields) -> dict:
    body = await gql.execute(SCHEDULE, {"input": {"databaseId": dbid(database), **fields}}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["scheduleUpdate"]


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def runs(payload: dict) -> list[dict]:
    return [edge["node"] for edge in payload["database"]["updateRuns"]["edges"]]


async def planned_runs(database) -> list[UpdateRun]:
    return await UpdateRun.filter(database_id=database.id, status__in=["QUARANTINE", "SCHEDULED"]).order_by("scheduled_for")


# ---------------------------------------------------------------------------------------- modes


async def test_an_owner_schedules_a_monthly_update_in_moscow_time_by_default(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=15, timeOfDay="03:00")
    assert payload["userErrors"] == []
    result = payload["database"]["updateSchedule"]
    assert (result["mode"], result["dayOfMonth"], result["timeOfDay"], result["timezone"]) == ("MONTHLY", 15, "03:00", "Europe/Moscow")
    expected = next_monthly_run(15, "03:00", "Europe/Moscow", utcnow())
    assert parse(result["nextRunAt"]) == expected
    assert expected.astimezone(dt.timezone(dt.timedelta(hours=3))).strftime("%d %H:%M") == "15 03:00"
    [run] = runs(payload)
    assert run["status"] == "SCHEDULED" and parse(run["scheduledFor"]) == expected


async def test_a_planned_run_targets_the_newest_release_that_is_not_recalled(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    now = utcnow()
    for version, recalled in (("3.0.151.3", None), ("3.0.152.15", None), ("3.0.153.1", now), ("3.0.99.9", None)):
        await Release.create(configuration=database.configuration, version=version, published_at=now, recalled_at=recalled)
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=1, timeOfDay="02:00")
    assert runs(payload)[0]["targetVersion"] == "3.0.152.15"


async def test_without_a_newer_release_a_run_targets_the_installed_version(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=1, timeOfDay="02:00")
    assert runs(payload)[0]["targetVersion"] == database.version


async def test_an_admin_schedules_a_one_time_update(gql):
    org, team = await factories.create_team(Role.ADMIN)
    database = await typical_database(org)
    when = (utcnow() + dt.timedelta(days=2)).replace(microsecond=0)
    payload = await schedule(gql, team[Role.ADMIN], database, mode="ONCE", runAt=when.isoformat())
    assert payload["userErrors"] == []
    result = payload["database"]["updateSchedule"]
    assert result["mode"] == "ONCE" and parse(result["runAt"]) == when and parse(result["nextRunAt"]) == when
    assert [(r["status"], parse(r["scheduledFor"])) for r in runs(payload)] == [("SCHEDULED", when)]


async def test_a_one_time_update_in_the_past_is_invalid(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="ONCE", runAt=wire(utcnow() - dt.timedelta(minutes=1)))
    assert errors(payload) == [("INVALID", ["input", "runAt"])] and payload["database"] is None
    assert await planned_runs(database) == []


async def test_a_one_time_update_needs_run_at(gql):
    org, team = await factories.create_team()
    payload = await schedule(gql, team[Role.OWNER], await typical_database(org), mode="ONCE")
    assert errors(payload) == [("INVALID", ["input", "runAt"])]


async def test_run_at_without_an_offset_is_refused_by_the_scalar(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    body = await gql.execute(
        SCHEDULE, {"input": {"databaseId": dbid(database), "mode": "ONCE", "runAt": "2099-01-01T03:00:00"}},
        as_user=await signed_in(gql, team[Role.OWNER]),
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("day", [0, 29, 31, None])
async def test_a_monthly_update_needs_a_day_from_1_to_28(gql, day):
    org, team = await factories.create_team()
    fields = {"mode": "MONTHLY", "timeOfDay": "03:00", **({"dayOfMonth": day} if day is not None else {})}
    payload = await schedule(gql, team[Role.OWNER], await typical_database(org), **fields)
    assert errors(payload) == [("INVALID", ["input", "dayOfMonth"])]


@pytest.mark.parametrize("time_of_day", ["24:00", "3:00", "03:60", "noon", None])
async def test_a_monthly_update_needs_a_time_of_day_hh_mm(gql, time_of_day):
    org, team = await factories.create_team()
    fields = {"mode": "MONTHLY", "dayOfMonth": 10, **({"timeOfDay": time_of_day} if time_of_day is not None else {})}
    payload = await schedule(gql, team[Role.OWNER], await typical_database(org), **fields)
    assert errors(payload) == [("INVALID", ["input", "timeOfDay"])]


async def test_updating_on_each_release_needs_a_time_of_day(gql):
    org, team = await factories.create_team()
    payload = await schedule(gql, team[Role.OWNER], await typical_database(org), mode="ON_RELEASE")
    assert errors(payload) == [("INVALID", ["input", "timeOfDay"])]


async def test_updating_on_each_release_plans_nothing_until_a_release_appears(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="ON_RELEASE", timeOfDay="01:30", timezone="Asia/Yekaterinburg")
    assert payload["userErrors"] == []
    result = payload["database"]["updateSchedule"]
    assert (result["mode"], result["timeOfDay"], result["timezone"], result["nextRunAt"]) == ("ON_RELEASE", "01:30", "Asia/Yekaterinburg", None)
    assert runs(payload) == []


async def test_an_unknown_time_zone_is_invalid(gql):
    org, team = await factories.create_team()
    payload = await schedule(
        gql, team[Role.OWNER], await typical_database(org), mode="MONTHLY", dayOfMonth=1, timeOfDay="03:00", timezone="Mars/Olympus"
    )
    assert errors(payload) == [("INVALID", ["input", "timezone"])]


async def test_an_omitted_time_zone_keeps_the_one_chosen_before(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=1, timeOfDay="03:00", timezone="Europe/Berlin")
    payload = await schedule(gql, team[Role.OWNER], database, mode="ON_RELEASE", timeOfDay="04:00")
    assert payload["database"]["updateSchedule"]["timezone"] == "Europe/Berlin"


async def test_a_non_typical_database_may_not_be_updated_automatically(gql):
    org, team = await factories.create_team()
    database = await factories.create_database(org, typical=False)
    for fields in ({"mode": "MONTHLY", "dayOfMonth": 1, "timeOfDay": "03:00"}, {"mode": "ON_RELEASE", "timeOfDay": "03:00"},
                   {"mode": "ONCE", "runAt": wire(utcnow() + dt.timedelta(days=1))}):
        payload = await schedule(gql, team[Role.OWNER], database, **fields)
        assert errors(payload) == [("INVALID", ["input", "mode"])], fields
        assert "manager" in payload["userErrors"][0]["message"]
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.DISABLED


async def test_a_non_typical_database_may_be_set_to_disabled(gql):
    org, team = await factories.create_team()
    payload = await schedule(gql, team[Role.OWNER], await factories.create_database(org, typical=False), mode="DISABLED")
    assert payload["userErrors"] == [] and payload["database"]["updateSchedule"]["mode"] == "DISABLED"


async def test_a_database_without_a_schedule_row_gets_one(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await UpdateSchedule.filter(database_id=database.id).delete()
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=5, timeOfDay="03:00")
    assert payload["userErrors"] == [] and (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.MONTHLY


# ---------------------------------------------------------------------------------------- changing modes


async def test_switching_from_monthly_to_on_release_cancels_the_planned_monthly_run(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    [monthly] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=20, timeOfDay="03:00"))
    payload = await schedule(gql, team[Role.OWNER], database, mode="ON_RELEASE", timeOfDay="03:00")
    [cancelled] = runs(payload)
    assert cancelled["id"] == monthly["id"] and cancelled["status"] == "CANCELLED" and cancelled["message"]
    assert payload["database"]["updateSchedule"]["nextRunAt"] is None


async def test_disabling_updates_cancels_the_planned_run(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="ONCE", runAt=wire(utcnow() + dt.timedelta(days=3)))
    payload = await schedule(gql, team[Role.OWNER], database, mode="DISABLED")
    assert [r["status"] for r in runs(payload)] == ["CANCELLED"]
    assert payload["database"]["updateSchedule"]["nextRunAt"] is None and await planned_runs(database) == []


async def test_a_new_monthly_day_replaces_the_planned_run(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=10, timeOfDay="03:00")
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=11, timeOfDay="03:00")
    [planned] = await planned_runs(database)
    assert planned.scheduled_for == next_monthly_run(11, "03:00", "Europe/Moscow", utcnow())
    assert parse(payload["database"]["updateSchedule"]["nextRunAt"]) == planned.scheduled_for
    assert sorted(r["status"] for r in runs(payload)) == ["CANCELLED", "SCHEDULED"]


async def test_saving_the_same_schedule_keeps_its_planned_run(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=10, timeOfDay="03:00")
    [before] = await planned_runs(database)
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=10, timeOfDay="03:00", baseLogin="Админ")
    assert [run.id for run in await planned_runs(database)] == [before.id]
    assert await UpdateRun.filter(database_id=database.id).count() == 1


async def test_saving_a_monthly_schedule_that_had_no_planned_run_plans_one(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=9, time_of_day="03:00")
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=9, timeOfDay="03:00")
    [planned] = await planned_runs(database)
    assert planned.scheduled_for == next_monthly_run(9, "03:00", "Europe/Moscow", utcnow())

async def test_changing_the_schedule_is_audited_without_the_credentials(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=3, timeOfDay="04:00",
                   baseLogin="Бухгалтер", basePassword="s3cret-pass")
    entry = await AuditEntry.get(action="update_schedule.change", object_id=str(database.id))
    assert entry.actor_id == team[Role.OWNER].id and entry.organization_id == org.id
    assert entry.details["mode"] == "MONTHLY" and entry.details["credentialsChanged"] is True
    assert "s3cret-pass" not in str(entry.details) and "Бухгалтер" not in str(entry.details)


# ---------------------------------------------------------------------------------------- who may


async def test_an_accountant_may_not_change_an_update_schedule(gql):
    org, team = await factories.create_team(Role.ACCOUNTANT)
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.ACCOUNTANT], database, mode="MONTHLY", dayOfMonth=1, timeOfDay="03:00")
    assert errors(payload) == [("FORBIDDEN", None)]
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.DISABLED


async def test_a_user_may_not_change_an_update_schedule(gql):
    org, team = await factories.create_team(Role.USER)
    payload = await schedule(gql, team[Role.USER], await typical_database(org), mode="DISABLED")
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_database_of_another_organization_is_not_found(gql):
    org, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, stranger[Role.OWNER], database, mode="MONTHLY", dayOfMonth=1, timeOfDay="03:00")
    assert errors(payload) == [("NOT_FOUND", ["input", "databaseId"])]
    assert await planned_runs(database) == []


# ---------------------------------------------------------------------------------------- credentials


async def test_credentials_are_stored_encrypted_and_only_their_presence_is_shown(gql, settings):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="DISABLED", baseLogin="Администратор", basePassword="Пароль-123")
    assert payload["database"]["updateSchedule"]["hasCredentials"] is True
    assert "Пароль-123" not in str(payload)
    stored = (await UpdateSchedule.get(database_id=database.id)).credentials_encrypted
    assert "Пароль-123".encode() not in bytes(stored) and "Администратор".encode() not in bytes(stored)
    assert decrypt_credentials(settings, stored) == ("Администратор", "Пароль-123")


async def test_empty_credentials_are_credentials_too(gql, settings):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="DISABLED", baseLogin="", basePassword="")
    assert payload["database"]["updateSchedule"]["hasCredentials"] is True
    assert decrypt_credentials(settings, (await UpdateSchedule.get(database_id=database.id)).credentials_encrypted) == ("", "")


async def test_omitted_credentials_keep_the_stored_ones(gql, settings):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="DISABLED", baseLogin="Кассир", basePassword="old")
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=2, timeOfDay="03:00")
    await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=2, timeOfDay="03:00", basePassword="new")
    stored = (await UpdateSchedule.get(database_id=database.id)).credentials_encrypted
    assert decrypt_credentials(settings, stored) == ("Кассир", "new")


async def test_a_database_without_credentials_says_so(gql):
    org, team = await factories.create_team()
    payload = await schedule(gql, team[Role.OWNER], await typical_database(org), mode="DISABLED")
    assert payload["database"]["updateSchedule"]["hasCredentials"] is False


async def test_credentials_encrypted_under_another_secret_do_not_decrypt(settings):
    other = settings.model_copy(update={"secret_key": "another-secret-key-that-is-long-enough-for-hs256"})
    other.__dict__.pop("resolved_secret_key", None)
    blob = encrypt_credentials(other, "login", "password")
    with pytest.raises(CredentialsUnreadable):
        decrypt_credentials(settings, blob)


# ---------------------------------------------------------------------------------------- next run across DST


def test_a_monthly_run_keeps_its_local_time_across_the_spring_change_in_berlin():
    before = next_monthly_run(15, "03:00", "Europe/Berlin", dt.datetime(2026, 3, 1, tzinfo=UTC))
    after = next_monthly_run(15, "03:00", "Europe/Berlin", dt.datetime(2026, 3, 16, tzinfo=UTC))
    assert before == dt.datetime(2026, 3, 15, 2, 0, tzinfo=UTC)  # CET, UTC+1
    assert after == dt.datetime(2026, 4, 15, 1, 0, tzinfo=UTC)  # CEST, UTC+2


def test_a_monthly_run_keeps_its_local_time_across_the_autumn_change_in_berlin():
    september = next_monthly_run(28, "03:00", "Europe/Berlin", dt.datetime(2026, 9, 1, tzinfo=UTC))
    october = next_monthly_run(28, "03:00", "Europe/Berlin", september)
    assert september == dt.datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
    assert october == dt.datetime(2026, 10, 28, 2, 0, tzinfo=UTC)  # after 25 October: CET again


def test_a_time_that_does_not_exist_on_the_day_of_the_spring_change_runs_just_after_the_gap():
    # 28 March 2027 is the last Sunday of March: Berlin clocks jump from 02:00 to 03:00.
    run = next_monthly_run(28, "02:30", "Europe/Berlin", dt.datetime(2027, 3, 1, tzinfo=UTC))
    assert run == dt.datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 summer time


def test_a_monthly_run_keeps_its_local_time_across_the_changes_in_new_york():
    zone = "America/New_York"
    february = next_monthly_run(10, "09:00", zone, dt.datetime(2026, 2, 1, tzinfo=UTC))
    march = next_monthly_run(10, "09:00", zone, february)
    november = next_monthly_run(10, "09:00", zone, dt.datetime(2026, 10, 11, tzinfo=UTC))
    assert february == dt.datetime(2026, 2, 10, 14, 0, tzinfo=UTC)  # EST, UTC-5
    assert march == dt.datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # EDT since 8 March
    assert november == dt.datetime(2026, 11, 10, 14, 0, tzinfo=UTC)  # EST since 1 November


def test_a_time_that_happens_twice_on_the_day_of_the_autumn_change_runs_the_first_time():
    run = next_monthly_run(1, "01:30", "America/New_York", dt.datetime(2026, 10, 15, tzinfo=UTC))
    assert run == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, before the clocks go back


def test_day_28_comes_in_february_too():
    assert next_monthly_run(28, "03:00", "Europe/Moscow", dt.datetime(2027, 1, 28, 1, tzinfo=UTC)) == dt.datetime(
        2027, 2, 28, 0, 0, tzinfo=UTC
    )


def test_the_next_run_is_strictly_after_the_given_moment():
    moment = dt.datetime(2026, 5, 15, 0, 0, tzinfo=UTC)  # exactly 15 May 03:00 in Moscow
    assert next_monthly_run(15, "03:00", "Europe/Moscow", moment) == dt.datetime(2026, 6, 15, 0, 0, tzinfo=UTC)


async def test_next_run_at_of_a_berlin_schedule_is_the_planned_runs_time(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    payload = await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=28, timeOfDay="02:30", timezone="Europe/Berlin")
    expected = next_monthly_run(28, "02:30", "Europe/Berlin", utcnow())
    assert parse(payload["database"]["updateSchedule"]["nextRunAt"]) == expected
    assert (await planned_runs(database))[0].scheduled_for == expected


# ---------------------------------------------------------------------------------------- skipping a run


async def skip(gql, user, run_id: str) -> dict:
    body = await gql.execute(SKIP, {"id": run_id}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["skipUpdateRun"]


async def test_skipping_a_monthly_run_plans_the_following_months(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=7, timeOfDay="03:00"))
    payload = await skip(gql, team[Role.OWNER], planned["id"])
    assert payload["userErrors"] == [] and payload["updateRun"]["status"] == "SKIPPED"
    [following] = await planned_runs(database)
    assert following.scheduled_for == next_monthly_run(7, "03:00", "Europe/Moscow", parse(planned["scheduledFor"]))
    schedule_now = payload["updateRun"]["database"]["updateSchedule"]
    assert schedule_now["mode"] == "MONTHLY" and parse(schedule_now["nextRunAt"]) == following.scheduled_for


async def test_skipping_a_run_is_audited(gql):
    org, team = await factories.create_team(Role.ADMIN)
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=7, timeOfDay="03:00"))
    await skip(gql, team[Role.ADMIN], planned["id"])
    entry = await AuditEntry.get(action="update_run.skip", organization_id=org.id)
    assert entry.actor_id == team[Role.ADMIN].id


async def test_skipping_the_run_of_a_release_skips_that_release_only(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    await schedule(gql, team[Role.OWNER], database, mode="ON_RELEASE", timeOfDay="03:00")
    run = await UpdateRun.create(
        organization_id=org.id, database=database, status=UpdateRunStatus.QUARANTINE, target_version="3.0.160.1",
        scheduled_for=utcnow() + dt.timedelta(hours=20),
    )
    payload = await skip(gql, team[Role.OWNER], to_global_id("UpdateRun", run.id))
    assert payload["updateRun"]["status"] == "SKIPPED"
    assert payload["updateRun"]["database"]["updateSchedule"] == {"mode": "ON_RELEASE", "nextRunAt": None}


async def test_skipping_the_one_time_run_turns_updates_off(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="ONCE", runAt=wire(utcnow() + dt.timedelta(days=1))))
    payload = await skip(gql, team[Role.OWNER], planned["id"])
    assert payload["updateRun"]["database"]["updateSchedule"] == {"mode": "DISABLED", "nextRunAt": None}


async def test_only_a_planned_run_can_be_skipped(gql):
    org, team = await factories.create_team()
    database = await typical_database(org)
    for status in (UpdateRunStatus.RUNNING, UpdateRunStatus.SUCCEEDED, UpdateRunStatus.CANCELLED, UpdateRunStatus.SKIPPED):
        run = await UpdateRun.create(organization_id=org.id, database=database, status=status, scheduled_for=utcnow())
        payload = await skip(gql, team[Role.OWNER], to_global_id("UpdateRun", run.id))
        assert errors(payload) == [("INVALID", ["updateRunId"])], status
        assert status.value in payload["userErrors"][0]["message"]
        await run.refresh_from_db()
        assert run.status == status


async def test_an_accountant_may_not_skip_a_run(gql):
    org, team = await factories.create_team(Role.ACCOUNTANT)
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=7, timeOfDay="03:00"))
    assert errors(await skip(gql, team[Role.ACCOUNTANT], planned["id"])) == [("FORBIDDEN", None)]
    assert len(await planned_runs(database)) == 1


async def test_a_user_may_not_skip_a_run(gql):
    org, team = await factories.create_team(Role.USER)
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=7, timeOfDay="03:00"))
    assert errors(await skip(gql, team[Role.USER], planned["id"])) == [("FORBIDDEN", None)]


async def test_a_run_of_another_organization_is_not_found(gql):
    org, team = await factories.create_team()
    _, stranger = await factories.create_team()
    database = await typical_database(org)
    [planned] = runs(await schedule(gql, team[Role.OWNER], database, mode="MONTHLY", dayOfMonth=7, timeOfDay="03:00"))
    assert errors(await skip(gql, stranger[Role.OWNER], planned["id"])) == [("NOT_FOUND", ["updateRunId"])]
    assert len(await planned_runs(database)) == 1

