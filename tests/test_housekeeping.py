"""Retention (resolvers/common/housekeeping.py): for each kind of row, a dead one is deleted and a live one
kept, on both sides of each border; a second pass deletes nothing; passes side by side delete each
row once; the worker loop and `kabinet housekeeping` run it.

The test database is shared by the whole session: rows are made with their times in the past
(relative to a frozen "now"), and the assertions look at this test's own rows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise.expressions import Q

from foundation.clock import frozen_at, utcnow
from resolvers.identity.sign_ins import LATE_SECONDS
from models.identity import ClientThrottle, CodePurpose, LoginThrottle, RefreshToken, VerificationCode
from models.outbox import Channel, DeliveryStatus, OutboxMessage
from models.provider import RefusedRecord
from resolvers.common import housekeeping
from tests import factories
from workers.housekeeping import run_housekeeping
from workers.runner import Workers

ROOT = Path(__file__).resolve().parent.parent
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _database(app):
    """Every test here writes through the models: the app's database is connected."""


@pytest.fixture
def now():
    with frozen_at(utcnow().replace(microsecond=0)) as moment:
        yield moment


async def exists(model, pk) -> bool:
    return await model.exists(**{model._meta.pk_attr: pk})


async def created_at(model, pk, moment) -> None:
    """Entity.created_at is set by Tortoise on create: moved afterwards."""
    await model.filter(id=pk).update(created_at=moment)


# ---------------------------------------------------------------- refresh tokens


async def token(user, *, expires_at, revoked_at=None, used_at=None) -> uuid.UUID:
    row = await RefreshToken.create(
        user=user, login_id=uuid.uuid4(), token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
        expires_at=expires_at, revoked_at=revoked_at, used_at=used_at,
    )
    return row.id


async def test_refresh_tokens_go_once_expired_or_revoked_beyond_the_retention(settings, now):
    user = await factories.create_user()
    days = timedelta(days=settings.refresh_token_retention_days)
    dead = [
        await token(user, expires_at=now - days - MINUTE),
        await token(user, expires_at=now + days, revoked_at=now - days - MINUTE),
        await token(user, expires_at=now - days - MINUTE, used_at=now - 2 * days, revoked_at=now - days - MINUTE),
    ]
    live = [
        await token(user, expires_at=now + days),  # good
        await token(user, expires_at=now + MINUTE, used_at=now - MINUTE),  # used: presented again, it revokes its login
        await token(user, expires_at=now - days + MINUTE),  # expired, not long enough
        await token(user, expires_at=now + days, revoked_at=now - days + MINUTE),  # revoked, not long enough
        await token(user, expires_at=now - 2 * days, revoked_at=now - days + MINUTE),  # revoked after it expired
    ]
    assert await housekeeping.prune_refresh_tokens(settings) >= len(dead)
    assert [await exists(RefreshToken, pk) for pk in dead] == [False] * len(dead)
    assert [await exists(RefreshToken, pk) for pk in live] == [True] * len(live)
    assert await housekeeping.prune_refresh_tokens(settings) == 0


async def test_a_revoked_token_stays_while_the_ended_sign_ins_may_read_it(settings, now):
    """With access tokens living longer than the retention, the revocation is kept for their lifetime
    (and the ended sign-ins' margin and late reads), not merely the retention."""
    long_lived = settings.model_copy(update={"access_token_minutes": 40 * 24 * 60})
    needed = housekeeping.revocation_needed(long_lived)
    assert needed > timedelta(days=long_lived.refresh_token_retention_days)
    user = await factories.create_user()
    kept = await token(user, expires_at=now - needed, revoked_at=now - needed + MINUTE)
    gone = await token(user, expires_at=now - needed, revoked_at=now - needed - MINUTE)
    await housekeeping.prune_refresh_tokens(long_lived)
    assert (await exists(RefreshToken, kept), await exists(RefreshToken, gone)) == (True, False)


def test_the_revocation_margin_is_what_the_ended_sign_ins_use(app, settings):
    """The retention keeps a revoked token as long as the running ended sign-ins may read it."""
    ended = app.state.ended_logins.keep_seconds
    assert housekeeping.revocation_needed(settings).total_seconds() == ended + LATE_SECONDS


# ---------------------------------------------------------------- verification codes


async def code(*, user=None, expires_at, used_at=None) -> uuid.UUID:
    row = await VerificationCode.create(
        purpose=CodePurpose.PASSWORD_RESET, user=user, target=factories.unique_email(), code_hash="0" * 64,
        expires_at=expires_at, used_at=used_at,
    )
    await created_at(VerificationCode, row.id, expires_at - timedelta(minutes=15))
    return row.id


async def test_codes_go_once_expired_beyond_the_retention_but_not_a_waiting_sign_ups(settings, now):
    days = timedelta(days=settings.verification_code_retention_days)
    active = await factories.create_user()
    signing_up = await factories.create_user()
    signing_up.is_active = False
    await signing_up.save(update_fields=["is_active"])
    dead = [
        await code(user=active, expires_at=now - days - MINUTE),
        await code(expires_at=now - days - MINUTE),  # a released sign-up's, unlinked
        await code(user=active, expires_at=now - days - MINUTE, used_at=now - days - 2 * MINUTE),
    ]
    live = [
        await code(user=active, expires_at=now + MINUTE),  # can still be checked
        await code(user=active, expires_at=now + MINUTE, used_at=now - MINUTE),  # used: an older one must not become "latest"
        await code(user=active, expires_at=now - days + MINUTE),
        await code(expires_at=now - days + MINUTE),
        await code(user=signing_up, expires_at=now - 3 * days),  # its sign-up still waits (the resend reads it)
    ]
    assert await housekeeping.prune_verification_codes(settings) >= len(dead)
    assert [await exists(VerificationCode, pk) for pk in dead] == [False] * len(dead)
    assert [await exists(VerificationCode, pk) for pk in live] == [True] * len(live)
    assert await housekeeping.prune_verification_codes(settings) == 0


async def test_codes_stay_while_the_sending_limits_count_them(settings, now):
    """However short the retention, a code created within the limits' window stays."""
    shortest = settings.model_copy(update={"verification_code_retention_days": 1})
    assert housekeeping.SENDING_WINDOW < timedelta(days=1)  # the day is what binds; the window is a floor
    counted = await code(expires_at=now - timedelta(days=1) + MINUTE)
    gone = await code(expires_at=now - timedelta(days=1) - MINUTE)
    await housekeeping.prune_verification_codes(shortest)
    assert (await exists(VerificationCode, counted), await exists(VerificationCode, gone)) == (True, False)


# ---------------------------------------------------------------- throttles


async def test_login_throttles_go_when_they_say_nothing(settings, now):
    margin = housekeeping.THROTTLE_MARGIN
    rows = {
        "idle": (0, None, False),
        "lock long over": (0, now - margin - MINUTE, False),
        "lock just over": (0, now - margin + MINUTE, True),
        "locked": (0, now + MINUTE, True),
        "counting": (3, None, True),  # wrong passwords in a row: no time to age by
    }
    logins = {}
    for name, (failures, locked_until, _) in rows.items():
        logins[name] = f"{uuid.uuid4().hex}@{name.replace(' ', '-')}.test"
        await LoginThrottle.create(login=logins[name], failures=failures, locked_until=locked_until)
    assert await housekeeping.prune_login_throttles(settings) >= 2
    assert {name: await exists(LoginThrottle, logins[name]) for name in rows} == {
        name: kept for name, (_, _, kept) in rows.items()
    }
    assert await housekeeping.prune_login_throttles(settings) == 0


async def test_client_throttles_go_when_their_window_has_ended(settings, now):
    margin = housekeeping.THROTTLE_MARGIN
    rows = {
        "never started": (0, None, False),
        "ended long ago": (7, now - margin - MINUTE, False),
        "ended just now": (7, now - margin + MINUTE, True),
        "open": (2, now + MINUTE, True),
    }
    addresses = {name: f"192.0.2.{i}:{uuid.uuid4().hex[:8]}" for i, name in enumerate(rows)}
    for name, (failures, window_ends, _) in rows.items():
        await ClientThrottle.create(address=addresses[name], failures=failures, window_ends=window_ends)
    assert await housekeeping.prune_client_throttles(settings) >= 2
    assert {name: await exists(ClientThrottle, addresses[name]) for name in rows} == {
        name: kept for name, (_, _, kept) in rows.items()
    }
    assert await housekeeping.prune_client_throttles(settings) == 0


def vanishing_once(table: str, column: str, dialect: str) -> tuple[str, str]:
    """SQL making a row of `table` whose `column` ends with `@vanishing.test` vanish right after its
    first insert (as if housekeeping deleted it between a claim's statements), and SQL undoing it."""
    name = f"hk_vanish_{table}"
    if dialect == "sqlite":
        make = (
            f"CREATE TABLE {name}_seen (k TEXT PRIMARY KEY);"
            f"CREATE TRIGGER {name} AFTER INSERT ON {table} WHEN NEW.{column} LIKE '%@vanishing.test' "
            f"AND NOT EXISTS (SELECT 1 FROM {name}_seen WHERE k = NEW.{column}) BEGIN "
            f"INSERT INTO {name}_seen VALUES (NEW.{column}); DELETE FROM {table} WHERE {column} = NEW.{column}; END;"
        )
        return make, f"DROP TRIGGER {name}; DROP TABLE {name}_seen;"
    make = (
        f"CREATE TABLE {name}_seen (k TEXT PRIMARY KEY);"
        f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.{column} LIKE '%@vanishing.test' AND NOT EXISTS (SELECT 1 FROM {name}_seen WHERE k = NEW.{column}) THEN "
        f"INSERT INTO {name}_seen VALUES (NEW.{column}); DELETE FROM {table} WHERE {column} = NEW.{column}; END IF; "
        f"RETURN NULL; END $$ LANGUAGE plpgsql;"
        f"CREATE TRIGGER {name} AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();"
    )
    return make, f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}(); DROP TABLE {name}_seen;"


@pytest.mark.parametrize("model", [LoginThrottle, ClientThrottle])
async def test_a_claim_whose_row_is_deleted_under_it_makes_it_again(settings, now, model):
    """A throttle row that says nothing may be deleted at any moment (housekeeping, a password
    reset): a claim that lost its row between statements is not refused for it."""
    from resolvers.identity import throttle

    db = model._meta.db
    column = model._meta.pk_attr
    make, undo = vanishing_once(model._meta.db_table, column, db.capabilities.dialect)
    key = f"{uuid.uuid4().hex[:20]}@vanishing.test"
    await db.execute_script(make)
    try:
        claim = throttle.claim_login if model is LoginThrottle else throttle.claim_address
        assert await claim(settings, key)
    finally:
        await db.execute_script(undo)
    assert (await model.get(**{column: key})).failures == 1


# ---------------------------------------------------------------- outbox, refused records


async def message(status, *, sent_at=None, failed_at=None) -> uuid.UUID:
    row = await OutboxMessage.create(
        channel=Channel.EMAIL, recipient=factories.unique_email(), body="…", status=status,
        next_attempt_at=now_minus_a_year(), sent_at=sent_at, failed_at=failed_at,
    )
    await created_at(OutboxMessage, row.id, now_minus_a_year())
    return row.id


def now_minus_a_year():
    return utcnow() - timedelta(days=365)


async def test_delivered_messages_go_after_the_retention_never_pending_or_failed(settings, now):
    days = timedelta(days=settings.sent_message_retention_days)
    gone = await message(DeliveryStatus.SENT, sent_at=now - days - MINUTE)
    live = [
        await message(DeliveryStatus.SENT, sent_at=now - days + MINUTE),
        await message(DeliveryStatus.PENDING),
        await message(DeliveryStatus.FAILED, failed_at=now_minus_a_year()),
    ]
    assert await housekeeping.prune_sent_messages(settings) >= 1
    assert not await exists(OutboxMessage, gone)
    assert [await exists(OutboxMessage, pk) for pk in live] == [True] * len(live)
    assert await housekeeping.prune_sent_messages(settings) == 0


async def refused(source: str, when) -> uuid.UUID:
    row = await RefusedRecord.create(
        actor_kind="CLI", actor="test", source=source, entity="ledger_entry", line=1, reason="no such organization",
    )
    await created_at(RefusedRecord, row.id, when)
    return row.id


async def test_refused_records_go_after_the_retention(settings, now):
    days = timedelta(days=settings.refused_record_retention_days)
    gone = await refused("api", now - days - MINUTE)
    kept = await refused("api", now - days + MINUTE)
    assert await housekeeping.prune_refused_records(settings) >= 1
    assert (await exists(RefusedRecord, gone), await exists(RefusedRecord, kept)) == (False, True)
    assert await housekeeping.prune_refused_records(settings) == 0


# ---------------------------------------------------------------- batches, passes side by side


async def test_batches_delete_everything_dead_and_count_it(settings, now):
    source = f"batches-{uuid.uuid4().hex}"
    for _ in range(5):
        await refused(source, now_minus_a_year())
    mine = Q(source=source, created_at__lt=now - MINUTE)
    assert await housekeeping.delete_in_batches(RefusedRecord, mine, batch=2) == 5
    assert await RefusedRecord.filter(source=source).count() == 0


async def test_passes_side_by_side_delete_each_row_once(settings, now):
    """Two processes pruning at once: between them every dead row is deleted, and counted, once."""
    source = f"side-by-side-{uuid.uuid4().hex}"
    for _ in range(9):
        await refused(source, now_minus_a_year())
    mine = Q(source=source, created_at__lt=now - MINUTE)
    counts = await asyncio.gather(*(housekeeping.delete_in_batches(RefusedRecord, mine, batch=2) for _ in range(3)))
    assert sum(counts) == 9
    assert await RefusedRecord.filter(source=source).count() == 0


async def test_a_whole_pass_twice_deletes_nothing_more(settings, now):
    await refused("api", now_minus_a_year())
    first = await housekeeping.run_pass(settings)
    assert list(first) == list(housekeeping.PRUNERS) and first["refused_records"] >= 1
    assert await housekeeping.run_pass(settings) == dict.fromkeys(housekeeping.PRUNERS, 0)


# ---------------------------------------------------------------- the worker, the command line


def test_the_workers_run_housekeeping(settings):
    assert "housekeeping" in Workers(settings, broadcast=None).loops()


async def test_the_loop_prunes_at_start_and_stops_when_asked(settings):
    gone = await refused("api", now_minus_a_year())
    stop = asyncio.Event()
    loop = asyncio.create_task(run_housekeeping(settings, stop))
    for _ in range(600):  # a deadline, not a measurement: the first pass runs at once
        if not await exists(RefusedRecord, gone):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, timeout=60)
    assert not await exists(RefusedRecord, gone)


async def test_the_cli_runs_one_pass_and_prints_the_counts(tmp_path, settings):
    gone = [await refused("api", now_minus_a_year()) for _ in range(2)]
    env = {**os.environ, "KABINET_DATABASE_URL": settings.database_url, "KABINET_BROKER_URL": "memory://",
           "KABINET_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT)}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "kabinet.cli", "housekeeping"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    counts = dict(line.split("\t") for line in done.stdout.splitlines())
    assert list(counts) == list(housekeeping.PRUNERS)
    assert int(counts["refused_records"]) >= 2
    assert [await exists(RefusedRecord, pk) for pk in gone] == [False, False]
