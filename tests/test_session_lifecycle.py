"""One owner of a session's lifecycle: no module but resolvers/cloud/sessions.py changes a session's status.

Every caller (the mutations, a member's removal, the update worker, the simulated cluster, the
cluster agent's API, demo and bulk seeding, the bench) goes through resolvers/cloud/sessions.py, which
records each transition's event; a second place writing a status would be a second copy of the
rule, and a change whose subscribers hear nothing. The sources are read as Python (ast), so a
comment or a string that names these calls does not count, and a new way of writing does."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/cloud/sessions.py")
SESSION_STATUS = Owned(
    models=frozenset({"Session"}), fields=frozenset({"status"}),
    is_row=lambda name: name == "Session" or "session" in name.lower(), enum="SessionStatus", table="session",
)
status_writes = SESSION_STATUS.writes


def test_only_resolvers_sessions_changes_a_session_status():
    offenders = [f"{module}:{where}" for module, found in writers(SESSION_STATUS, OWNER).items() for where in found]
    assert not offenders, (
        "a session's status is changed outside resolvers/cloud/sessions.py; call its transition instead "
        "(it records the event):\n" + "\n".join(offenders)
    )


def test_the_owner_itself_is_seen_writing():
    """The scan finds what it looks for: the owner's own writes, and each kind of write."""
    assert status_writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
    samples = {
        "await Session.create(status=SessionStatus.ACTIVE)": 1,
        "await Session.bulk_create(rows)": 1,
        "await Session.filter(id=x, status=SessionStatus.ACTIVE).update(status=SessionStatus.ENDED)": 1,
        "await Session.filter(id=x).select_for_update().update(**fields)": 1,
        "session.status, session.ended_at = SessionStatus.ENDED, now": 1,
        "row.status = SessionStatus.TERMINATED": 1,
        "await session.save()": 1,
        "await db.execute_query('UPDATE session SET status = $1')": 1,
        # Not writes: reading, other models, a status that is not a session's.
        "await Session.filter(status=SessionStatus.ACTIVE).count()": 0,
        "await Session.filter(id=x).update(user_id=u)": 0,
        "run.status = UpdateRunStatus.FAILED": 0,
        "await UpdateRun.create(status=s)": 0,
        "if session.status == SessionStatus.ACTIVE: pass": 0,
    }
    for source, expected in samples.items():
        assert len(status_writes(source)) == expected, source
