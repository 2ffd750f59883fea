"""Databases for the tests: empty ones, and migrated ones copied from the test run's one template.

Migrating an empty database costs seconds of CPU (Tortoise builds its model state anew for each
operation), and the suite needs a migrated database for each xdist worker's session and for several
real `kabinet serve` processes. So the first process of a run to ask migrates a template — a SQLite
file in the run's temporary folder, or on the PostgreSQL run a database `kabinet_template_<random>`
— under a file lock the run's workers share; every migrated database after is a copy of it (SQLite's
backup, PostgreSQL's `CREATE DATABASE … TEMPLATE`). A copy is what `kabinet migrate` would leave.

The tests of migrating an empty database itself keep an empty one: `empty_postgres_database`, or a
SQLite path nothing has written (test_query_limits's readiness, test_doctor's bad configuration,
test_provider_end_to_end, test_deployment).
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_SQLITE = "template.sqlite3"
TEMPLATE_POSTGRES = "template.postgres"  # the name of the run's PostgreSQL template database, once made


async def run_admin_sql(admin_url: str, sql: str) -> None:
    """One statement on the admin database (CREATE / DROP DATABASE of a test's own)."""
    connection = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def database_url_named(admin_url: str, name: str) -> str:
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def empty_postgres_database(admin_url: str, *, template: str | None = None) -> str:
    """Create `kabinet_test_<random>` beside the admin database (a copy of `template` if given); dropped at exit."""
    name = f"kabinet_test_{uuid.uuid4().hex[:12]}"
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(50):
        try:
            asyncio.run(run_admin_sql(admin_url, sql))
            break
        except asyncpg.ObjectInUseError:  # the template's maker's connections are still closing
            if attempt == 49:
                raise
            time.sleep(0.1)
    atexit.register(lambda: asyncio.run(run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    return database_url_named(admin_url, name)


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this test run that all its xdist workers share (each worker's own is in it)."""
    basetemp = tmp_path_factory.getbasetemp()
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


@contextmanager
def _run_lock(folder: Path) -> Iterator[None]:
    with (folder / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _migrate(database_url: str, data_dir: Path) -> None:
    """`kabinet migrate` in a process of its own (this one's Tortoise may be serving a test's app)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("KABINET_")}
    environment.update({"KABINET_DATABASE_URL": database_url, "KABINET_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-m", "kabinet.cli", "migrate"], env=environment, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"migrating the tests' template failed:\n{done.stdout}{done.stderr}"


def _sqlite_template(folder: Path) -> Path:
    template = folder / TEMPLATE_SQLITE
    with _run_lock(folder):
        if not template.exists():
            building = folder / f"building-{uuid.uuid4().hex[:8]}.sqlite3"
            _migrate(f"sqlite://{building}", folder / "template-data")
            building.rename(template)  # whole or not at all: a crashed build leaves no template
    return template


def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory, path: Path) -> str:
    """A migrated SQLite database at `path` (a copy of the run's template): its URL."""
    template = _sqlite_template(run_folder(tmp_path_factory))
    path.parent.mkdir(parents=True, exist_ok=True)
    source, copy = sqlite3.connect(template), sqlite3.connect(path)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return f"sqlite://{path}"


def _postgres_template(folder: Path, admin_url: str) -> str:
    named = folder / TEMPLATE_POSTGRES
    with _run_lock(folder):
        if not named.exists():
            name = f"kabinet_template_{uuid.uuid4().hex[:12]}"
            asyncio.run(run_admin_sql(admin_url, f'CREATE DATABASE "{name}"'))
            named.write_text(f"{admin_url}\n{name}\n")  # dropped at the run's end even if migrating fails
            _migrate(database_url_named(admin_url, name), folder / "template-data")
            (folder / f"{TEMPLATE_POSTGRES}.ready").touch()
    assert (folder / f"{TEMPLATE_POSTGRES}.ready").exists(), "migrating the tests' PostgreSQL template failed earlier"
    return named.read_text().split()[1]


def migrated_postgres_database(tmp_path_factory: pytest.TempPathFactory, admin_url: str) -> str:
    """A migrated PostgreSQL database of its own (a copy of the run's template), dropped at exit: its URL."""
    return empty_postgres_database(admin_url, template=_postgres_template(run_folder(tmp_path_factory), admin_url))


def migrated_database(tmp_path_factory: pytest.TempPathFactory, sqlite_path: Path) -> str:
    """A migrated database of its own: on the PostgreSQL run a PostgreSQL one, else SQLite at `sqlite_path`."""
    admin_url = os.environ.get("KABINET_TEST_DATABASE_URL")
    if admin_url:
        return migrated_postgres_database(tmp_path_factory, admin_url)
    return migrated_sqlite(tmp_path_factory, sqlite_path)


def drop_the_runs_template(folder: Path) -> None:
    """At the end of the run (its controlling process): the PostgreSQL template goes."""
    named = folder / TEMPLATE_POSTGRES
    if named.exists():
        admin_url, name = named.read_text().split()
        asyncio.run(run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
