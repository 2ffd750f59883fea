"""One owner of a session's lifecycle: no module but resolvers/sessions.py changes a session's status.

Every caller (the mutations, a member's removal, the update worker, the simulated cluster, the
cluster agent's API, demo and bulk seeding, the bench) goes through resolvers/sessions.py, which
records each transition's event; a second place writing a status would be a second copy of the
rule, and a change whose subscribers hear nothing. The sources are read as Python (ast), so a
comment or a string that names these calls does not count, and a new way of writing does."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = Path("resolvers/sessions.py")
SCANNED = ("kabinet", "resolvers", "workers", "schema", "models", "bench", "scripts")
WRITES = {"create", "bulk_create", "get_or_create", "update_or_create", "bulk_update", "save"}
RAW_SQL = re.compile(r"\b(UPDATE|INSERT\s+INTO)\s+\"?session\"?\s", re.IGNORECASE)


def _root(node: ast.AST) -> str | None:
    """The name a chain like `Session.filter(...).select_for_update().update` starts from."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _is_session(name: str | None) -> bool:
    return name is not None and (name == "Session" or "session" in name.lower())


def status_writes(source: str) -> list[str]:
    """Where `source` creates a session row or changes one's status: ["line: what", …]."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, root = node.func.attr, _root(node.func.value)
            if method in WRITES and (root == "Session" or (method == "save" and _is_session(root))):
                found.append(f"{node.lineno}: {root}….{method}(…)")
            elif method == "update" and root == "Session" and any(
                k.arg in (None, "status") for k in node.keywords
            ):
                found.append(f"{node.lineno}: Session….update(status=…)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            value = ast.unparse(node.value) if node.value is not None else ""
            for target in flat:
                if isinstance(target, ast.Attribute) and target.attr == "status" and (
                    "SessionStatus" in value or _is_session(_root(target.value))
                ):
                    found.append(f"{node.lineno}: {ast.unparse(target)} = …")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.search(node.value):
            found.append(f"{node.lineno}: SQL writing the session table")
    return found


def test_only_resolvers_sessions_changes_a_session_status():
    offenders = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative == OWNER or "migrations" in relative.parts:
                continue
            offenders += [f"{relative}:{where}" for where in status_writes(path.read_text(encoding="utf-8"))]
    assert not offenders, (
        "a session's status is changed outside resolvers/sessions.py; call its transition instead "
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
