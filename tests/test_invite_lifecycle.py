"""One owner of an invite's lifecycle: no module but resolvers/invitations.py writes an invite.

Created, resent, revoked, accepted: each transition is one function there, which writes the rows
and the audit record; expired is never written, only read (`invitations.is_expired`). The sources
are read as Python (ast), so a comment or a string naming these calls does not count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = Path("resolvers/invitations.py")
SCANNED = ("kabinet", "resolvers", "workers", "schema", "models", "bench", "scripts")
MODELS = {"Invite", "InviteDatabase"}
WRITES = {"create", "bulk_create", "get_or_create", "update_or_create", "bulk_update", "update", "delete"}
# Writers still to be moved onto the owner's functions, with how many writes each holds: the lead
# empties this (resolvers/registration.py `_claim_again` should call `invitations.withdraw`).
NOT_YET_MOVED: dict[str, int] = {}


def _root(node: ast.AST) -> str | None:
    """The name a chain like `Invite.filter(...).select_for_update().update` starts from."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def invite_writes(source: str) -> list[str]:
    """Where `source` writes an invite's rows or changes one's status: ["line: what", …]."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, root = node.func.attr, _root(node.func.value)
            if (method in WRITES and root in MODELS) or (method == "save" and root and "invite" in root.lower()):
                found.append(f"{node.lineno}: {root}….{method}(…)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = ast.unparse(node.value) if node.value is not None else ""
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status" and (
                    "InviteStatus" in value or "invite" in (_root(target.value) or "").lower()
                ):
                    found.append(f"{node.lineno}: {ast.unparse(target)} = …")
    return found


def test_only_resolvers_invitations_writes_an_invite():
    offenders: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative == OWNER or "migrations" in relative.parts:
                continue
            if found := invite_writes(path.read_text(encoding="utf-8")):
                offenders[str(relative)] = found
    assert {name: len(found) for name, found in offenders.items()} == NOT_YET_MOVED, (
        "an invite is written outside resolvers/invitations.py; call its transition instead "
        f"(it records the audit entry): {offenders}"
    )


def test_the_owner_itself_is_seen_writing():
    """The scan finds what it looks for: the owner's own writes, and each kind of write."""
    assert invite_writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
    samples = {
        "await Invite.create(status=InviteStatus.PENDING)": 1,
        "await InviteDatabase.create(invite_id=i, database_id=d)": 1,
        "await Invite.filter(id=x, status=InviteStatus.PENDING).update(status=InviteStatus.REVOKED)": 1,
        "await Invite.filter(organization_id=o).delete()": 1,
        "invite.status = InviteStatus.ACCEPTED": 1,
        "await invite.save(update_fields=['expires_at'])": 1,
        # Not writes: reading, other models, a status that is not an invite's.
        "await Invite.filter(status=InviteStatus.PENDING).count()": 0,
        "await Invite.get_or_none(token_hash=h)": 0,
        "request.status = JoinRequestStatus.APPROVED": 0,
        "await Membership.create(role=r)": 0,
        "if invite.status == InviteStatus.PENDING: pass": 0,
    }
    for source, expected in samples.items():
        assert len(invite_writes(source)) == expected, source
