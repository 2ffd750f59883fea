"""One owner of an update run's lifecycle: no module but resolvers/update_runs.py creates a run or
changes its status.

Schedules, releases, the update worker and the demo data call its transitions, which record each
change's updateRuns event; a second place writing a run would be a second copy of the rule, and a
change whose subscribers hear nothing. Read as Python (ast), as tests/test_session_lifecycle.py does."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = Path("resolvers/update_runs.py")
SCANNED = ("kabinet", "resolvers", "workers", "schema", "models", "bench", "scripts")
WRITES = {"create", "bulk_create", "get_or_create", "update_or_create", "bulk_update", "save"}
RAW_SQL = re.compile(r"\b(UPDATE|INSERT\s+INTO)\s+\"?update_run\"?\s", re.IGNORECASE)


def _root(node: ast.AST) -> str | None:
    """The name a chain like `UpdateRun.filter(...).select_for_update().update` starts from."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _is_run(name: str | None) -> bool:
    return name is not None and (name == "UpdateRun" or name.lower().endswith("run"))


def run_writes(source: str) -> list[str]:
    """Where `source` creates an update run or changes one's status: ["line: what", …]."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, root = node.func.attr, _root(node.func.value)
            if method in WRITES and (root == "UpdateRun" or (method == "save" and _is_run(root))):
                found.append(f"{node.lineno}: {root}….{method}(…)")
            elif method == "update" and (root == "UpdateRun" or ".fenced(" in ast.unparse(node.func.value)) and any(
                k.arg in (None, "status") for k in node.keywords
            ):
                found.append(f"{node.lineno}: {root}….update(status=…)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            value = ast.unparse(node.value) if node.value is not None else ""
            for target in flat:
                if isinstance(target, ast.Attribute) and target.attr == "status" and (
                    "UpdateRunStatus" in value or _is_run(_root(target.value))
                ):
                    found.append(f"{node.lineno}: {ast.unparse(target)} = …")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.search(node.value):
            found.append(f"{node.lineno}: SQL writing the update_run table")
    return found


def test_only_resolvers_update_runs_changes_an_update_run():
    offenders = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative == OWNER or "migrations" in relative.parts:
                continue
            offenders += [f"{relative}:{where}" for where in run_writes(path.read_text(encoding="utf-8"))]
    assert not offenders, (
        "an update run is written outside resolvers/update_runs.py; call its transition instead "
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
