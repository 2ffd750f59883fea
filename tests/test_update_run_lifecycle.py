"""One owner of an update run's lifecycle: no module but resolvers/updates/runs.py creates a run or
changes its status.

Schedules, releases, the update worker and the demo data call its transitions, which record each
change's updateRuns event; a second place writing a run would be a second copy of the rule, and a
change whose subscribers hear nothing. Read as Python (ast), as tests/test_session_lifecycle.py does."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/updates/runs.py")
UPDATE_RUN = Owned(
    models=frozenset({"UpdateRun"}), fields=frozenset({"status"}),
    is_row=lambda name: name == "UpdateRun" or name.lower().endswith("run"), enum="UpdateRunStatus",
    querysets=(".fenced(",), table="update_run",
)
run_writes = UPDATE_RUN.writes


def test_only_resolvers_update_runs_changes_an_update_run():
    offenders = [f"{module}:{where}" for module, found in writers(UPDATE_RUN, OWNER).items() for where in found]
    assert not offenders, (
        "an update run is written outside resolvers/updates/runs.py; call its transition instead "
        "(it records the event):\n" + "\n".join(offenders)
    )


def test_the_owner_itself_is_seen_writing():
    """The scan finds what it looks for: the owner's own writes, and each kind of write."""
    assert run_writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
    samples = {
        "await UpdateRun.create(status=UpdateRunStatus.SCHEDULED)": 1,
        "await UpdateRun.bulk_create(runs)": 1,
        "await UpdateRun.filter(id=x).update(status=UpdateRunStatus.FAILED)": 1,
        "await UpdateRun.filter(id=x).update(**lease)": 1,
        "await claim.fenced().update(status=UpdateRunStatus.SUCCEEDED)": 1,
        "run.status, run.scheduled_for = UpdateRunStatus.SCHEDULED, moment": 1,
        "await run.save(update_fields=['target_version'])": 1,
        "await db.execute_query('UPDATE update_run SET status = $1')": 1,
        # Not writes: reading, other models, a status that is not a run's.
        "await UpdateRun.filter(status=UpdateRunStatus.RUNNING).exists()": 0,
        "await UpdateRun.filter(id=x).update(lease_expires_at=t)": 0,
        "await schedule.save()": 0,
        "session.status = SessionStatus.ENDED": 0,
        "if run.status == UpdateRunStatus.RUNNING: pass": 0,
    }
    for source, expected in samples.items():
        assert len(run_writes(source)) == expected, source
