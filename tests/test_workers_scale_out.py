"""Worker processes on one PostgreSQL database: every due run is carried out exactly once, and the run
of a worker killed with SIGKILL is taken over when its lease runs out, and finished.

The workers are real `kabinet worker` processes. "Exactly once" is shown two ways: each run was
claimed once (`attempts == 1`), and the update journal (`KABINET_UPDATE_JOURNAL`: one line appended
for each update a worker asks the cluster for) names each run exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from foundation.clock import utcnow
from models.cloud import Database
from models.updates import UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from tests.processes import stop
from tests import factories

pytestmark = pytest.mark.skipif(
    not os.environ.get("KABINET_TEST_DATABASE_URL"), reason="several worker processes need PostgreSQL"
)

ROOT = Path(__file__).resolve().parent.parent
TARGET = "3.0.199.1"


class WorkerProcess:
    """`kabinet worker` in a process of its own, its output in a file."""

    def __init__(self, settings, directory: Path, name: str, journal: Path, **env: str) -> None:
        self.log = directory / f"{name}.log"
        environment = {
            **os.environ,
            "KABINET_DATABASE_URL": settings.database_url,
            "KABINET_BROKER_URL": settings.broker_url,
            "KABINET_SECRET_KEY": settings.secret_key,
            "KABINET_DATA_DIR": str(directory / name),
            "KABINET_MAIL_URL": f"file://{directory / 'mail'}",
            "KABINET_CLUSTER_CHURN": "0",
            "KABINET_UPDATE_JOURNAL": str(journal),
            **env,
        }
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kabinet.cli", "worker"], cwd=ROOT, env=environment,
                stdout=output, stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def started(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while "update worker" not in self.output():
            assert self.process.poll() is None, f"the worker exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{self.output()}"
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop(self.process)

def journal_lines(journal: Path) -> list[dict]:
    return [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []


async def databases_with_due_runs(count: int) -> list[UpdateRun]:
    """`count` databases of a configuration of their own (no releases: the runs' target is installed),
    each with one run due now."""
    org, _ = await factories.create_team()
    configuration = f"Конфигурация масштаба {uuid.uuid4().hex[:8]}"
    databases = [
        Database(organization_id=org.id, name=f"База {i}", configuration=configuration, version="3.0.150.20",
                 is_typical=True, size_mb=100)
        for i in range(count)
    ]
    await Database.bulk_create(databases)
    await UpdateSchedule.bulk_create([UpdateSchedule(database_id=d.id, mode=UpdateMode.DISABLED) for d in databases])
    due = utcnow() - dt.timedelta(seconds=1)
    runs = [
        UpdateRun(organization_id=org.id, database_id=d.id, status=UpdateRunStatus.SCHEDULED, scheduled_for=due,
                  target_version=TARGET)
        for d in databases
    ]
    await UpdateRun.bulk_create(runs)
    return runs


async def wait_until(predicate, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        for worker in processes:
            assert worker.process.poll() is None, f"a worker exited:\n{worker.output()}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.25)


async def test_two_worker_processes_carry_out_200_due_runs_each_exactly_once(settings, app, tmp_path):
    journal = tmp_path / "journal.jsonl"
    workers = [
        WorkerProcess(settings, tmp_path, name, journal, KABINET_UPDATE_STEP_SECONDS="0.02") for name in ("w1", "w2")
    ]
    try:
        for worker in workers:
            await worker.started()
        runs = await databases_with_due_runs(200)
        ids = [run.id for run in runs]

        async def all_done() -> bool:
            return await UpdateRun.filter(id__in=ids, status=UpdateRunStatus.SUCCEEDED).count() == len(ids)

        await wait_until(all_done, 120, "all 200 runs succeeded", workers)
    finally:
        for worker in workers:
            worker.stop()

    finished = await UpdateRun.filter(id__in=ids)
    assert Counter(r.status for r in finished) == {UpdateRunStatus.SUCCEEDED: 200}
    assert {r.attempts for r in finished} == {1}, "each run was claimed once"
    executions = Counter(line["run"] for line in journal_lines(journal) if uuid.UUID(line["run"]) in set(ids))
    assert set(executions) == {str(i) for i in ids} and set(executions.values()) == {1}, "each run executed once"
    pids = {line["pid"] for line in journal_lines(journal)}
    assert pids == {w.pid for w in workers}, "both processes took their share"
    versions = await Database.filter(id__in=[r.database_id for r in finished]).values_list("version", "locked_for_update")
    assert set(versions) == {(TARGET, False)}


async def test_a_run_of_a_worker_killed_mid_run_is_taken_over_after_its_lease_and_finished(settings, app, tmp_path):
    journal = tmp_path / "journal.jsonl"
    lease = {"KABINET_UPDATE_LEASE_SECONDS": "3"}
    doomed = WorkerProcess(settings, tmp_path, "doomed", journal, KABINET_UPDATE_STEP_SECONDS="1.5", **lease)
    survivor = None
    try:
        await doomed.started()
        [run] = await databases_with_due_runs(1)

        async def mid_run() -> bool:
            current = await UpdateRun.get(id=run.id)
            return current.status == UpdateRunStatus.RUNNING and current.progress > 0

        await wait_until(mid_run, 60, "the run is under way", [doomed])
        doomed.kill()
        killed_at = utcnow()
        orphan = await UpdateRun.get(id=run.id)
        assert orphan.status == UpdateRunStatus.RUNNING and str(doomed.pid) in orphan.lease_owner
        assert (await Database.get(id=run.database_id)).locked_for_update

        survivor = WorkerProcess(settings, tmp_path, "survivor", journal, KABINET_UPDATE_STEP_SECONDS="0.05", **lease)
        await survivor.started()

        async def finished() -> bool:
            return (await UpdateRun.get(id=run.id)).status == UpdateRunStatus.SUCCEEDED

        await wait_until(finished, 90, "the survivor finished the run", [survivor])
    finally:
        doomed.stop()
        if survivor is not None:
            survivor.stop()

    done = await UpdateRun.get(id=run.id)
    assert done.attempts == 2 and str(survivor.pid) in done.lease_owner and done.progress == 100
    attempts = [(line["pid"], line["attempt"]) for line in journal_lines(journal) if line["run"] == str(run.id)]
    assert attempts == [(doomed.pid, 1), (survivor.pid, 2)]
    taken_over = dt.datetime.fromisoformat(journal_lines(journal)[-1]["at"])
    assert taken_over >= orphan.lease_expires_at, "not before the dead worker's lease ran out"
    assert taken_over - killed_at < dt.timedelta(seconds=15)
    database = await Database.get(id=run.database_id)
    assert (database.version, database.locked_for_update) == (TARGET, False)
