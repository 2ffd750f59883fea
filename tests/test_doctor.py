"""`kabinet doctor` (issue 18): a configured deployment's blockers and warnings, each with its fix; exit 1
when anything blocks. The rules on settings alone in-process; a bad and a good configuration as real
`kabinet doctor` processes on a database of their own (SQLite, or PostgreSQL on that run): an empty
one for the bad configuration, which migrates it, and for the good one a migrated copy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kabinet.doctor import BLOCKS, WARNS, settings_findings
from foundation.settings import Settings
from tests.databases import migrated_database, run_admin_sql

ROOT = Path(__file__).resolve().parent.parent
SUPPLIER = ROOT / "examples" / "provider" / "supplier.toml"
GOOD_SECRET = "doctor-test-secret-key-" + "x" * 40
POSTGRES = "postgres://kabinet@127.0.0.1:5432/kabinet"


def findings(**values) -> dict[str, list[str]]:
    found = settings_findings(Settings(_env_file=None, **{"cluster": None, **values}))  # not the tests' KABINET_CLUSTER
    return {level: [f.what for f in found if f.level == level] for level in (BLOCKS, WARNS)}


def test_the_settings_that_block_a_deployment(tmp_path):
    bad = findings(database_url=POSTGRES, data_dir=tmp_path, cluster="simulated", seed_demo=True)
    assert [what.split(":")[0].split(" is ")[0] for what in bad[BLOCKS]] == [
        "KABINET_SECRET_KEY", "KABINET_PUBLIC_URL", "KABINET_SEED_DEMO", "KABINET_CLUSTER=simulated",
    ]
    assert not (tmp_path / "secret_key").exists(), "the doctor generates no key"
    short = findings(database_url=POSTGRES, secret_key="kabinet", public_url="https://cabinet.example.ru")
    assert short[BLOCKS] == ["KABINET_SECRET_KEY is 7 characters: short enough to guess, and whoever guesses it signs in as anyone"]
    embedded = findings(data_dir=tmp_path, secret_key=GOOD_SECRET, public_url="https://cabinet.example.ru")
    assert any(what.startswith("KABINET_SEED_DEMO is on (the default on SQLite)") for what in embedded[BLOCKS])


def test_the_settings_that_only_warn(tmp_path):
    good = dict(database_url=POSTGRES, secret_key=GOOD_SECRET, public_url="https://cabinet.example.ru")
    found = findings(**good, data_dir=tmp_path)
    assert found[BLOCKS] == []
    assert [what.split(":")[0] for what in found[WARNS]] == [
        "no SMS gateway", f"e-mail goes to files in {tmp_path}/outbox", "KABINET_BROKER_URL is memory",
    ]
    assert "phone sign-up is off" in found[WARNS][0]
    served = findings(
        **good, broker_url="redis://127.0.0.1:6379", mail_url="smtp://kabinet:pw@smtp.example.ru:587",
        sms_url="https://sms.example.ru/send",
    )
    assert served == {BLOCKS: [], WARNS: []}
    plain = findings(**{**good, "public_url": "http://cabinet.example.ru"}, broker_url="redis://127.0.0.1:6379",
                     mail_url="console://", sms_url="https://sms.example.ru/send")
    assert plain[BLOCKS] == [] and len(plain[WARNS]) == 2 and "plain HTTP" in plain[WARNS][0]


# ---------------------------------------------------------------------------------------- real processes


@pytest.fixture
def fresh_database(tmp_path):
    """An empty database of this test's own: a SQLite file, or on the PostgreSQL run a PostgreSQL database."""
    admin_url = os.environ.get("KABINET_TEST_DATABASE_URL")
    if not admin_url:
        yield f"sqlite://{tmp_path / 'doctor.sqlite3'}"
        return
    name = f"kabinet_doctor_{uuid.uuid4().hex[:10]}"
    asyncio.run(run_admin_sql(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def migrated(tmp_path, tmp_path_factory):
    """A migrated database of this test's own (a copy of the run's template, tests/databases.py)."""
    return migrated_database(tmp_path_factory, tmp_path / "doctor.sqlite3")


def deployment(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    """A process environment with no KABINET_* of the tests' own (KABINET_CLUSTER among them) but these."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("KABINET_")}
    return {
        **inherited, "PYTHONPATH": str(ROOT), "KABINET_DATABASE_URL": database_url,
        "KABINET_DATA_DIR": str(tmp_path / "data"), "KABINET_BROKER_URL": os.environ.get("KABINET_TEST_BROKER_URL", "memory://"),
        **settings,
    }


def kabinet(env: dict[str, str], *args: str, status: int = 0) -> str:
    done = subprocess.run([sys.executable, "-m", "kabinet.cli", *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == status, (args, done.returncode, done.stdout, done.stderr)
    return done.stdout


def blocking(output: str) -> list[str]:
    return [line[len(BLOCKS):].strip() for line in output.splitlines() if line.startswith(BLOCKS)]


def test_a_bad_configuration_blocks_with_every_reason(fresh_database, tmp_path):
    env = deployment(fresh_database, tmp_path, KABINET_SECRET_KEY="short-key", KABINET_SEED_DEMO="false")
    assert "the database" in blocking(kabinet(env, "doctor", status=1))[-1], "not migrated yet"
    kabinet(env, "migrate")
    kabinet(env, "seed", "--demo")

    output = kabinet(env, "doctor", status=1)
    blocks = blocking(output)
    assert [b.split(" ")[0] for b in blocks] == ["KABINET_SECRET_KEY", "KABINET_PUBLIC_URL", "this", "the"], output
    assert "9 characters" in blocks[0]
    assert "the demo data set" in blocks[2] and "kabinet-demo" in blocks[2] and "demo releases" in blocks[2]
    assert blocks[3].startswith("the supplier requisites in force are the demo's")
    assert "fix: kabinet supplier set" in output
    # Unasked, the mode is the embedded default's demo on SQLite, and agent on PostgreSQL.
    expected = "simulated (the embedded default's demo" if fresh_database.startswith("sqlite") else "agent (PostgreSQL"
    assert f"cluster mode: {expected}" in output
    assert output.splitlines()[-1].startswith("kabinet doctor: not ready for production (4 blocking, "), output

    asked = kabinet({**env, "KABINET_CLUSTER": "simulated"}, "doctor", status=1)
    assert any(b.startswith("KABINET_CLUSTER=simulated") for b in blocking(asked))
    assert "cluster mode: simulated (KABINET_CLUSTER=simulated)" in asked


def test_a_good_configuration_passes(migrated, tmp_path):
    env = deployment(
        migrated, tmp_path, KABINET_SECRET_KEY=GOOD_SECRET, KABINET_PUBLIC_URL="https://cabinet.example.ru",
        KABINET_SEED_DEMO="false", KABINET_MAIL_URL="smtp://kabinet:pw@smtp.example.ru:587?starttls=true",
        KABINET_SMS_URL="https://sms.example.ru/send",
    )
    kabinet(env, "migrate")
    first = kabinet(env, "doctor", status=1)
    assert [b.split(":")[0] for b in blocking(first)] == ["no supplier requisites"], first
    assert "WARNS  no agent token yet" in first
    assert "cluster mode: agent (" in first  # fresh: no demo, whatever the database

    kabinet(env, "supplier", "set", str(SUPPLIER))
    kabinet(env, "agent", "token", "create", "--name", "cluster-1", "--all-organizations")
    output = kabinet(env, "doctor")
    assert blocking(output) == [], output
    assert "no agent token" not in output and "cluster mode: agent (an agent token exists" in output
    assert output.splitlines()[-1].startswith("kabinet doctor: nothing blocks (0 blocking, ")
