"""One owner of a queued message's delivery status: no module but resolvers/outbox.py changes it.

The mail worker (sent, a failed try, given up) and the staff's retry (workers/mail.py, the staff
desk in GraphQL and the provider HTTP API) all go through resolvers/outbox.py. Read as Python (ast),
so a comment that names these calls does not count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = Path("resolvers/outbox.py")
SCANNED = ("kabinet", "resolvers", "workers", "schema", "models", "bench", "scripts")


def _root(node: ast.AST) -> str | None:
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def status_writes(source: str) -> list[str]:
    """Where `source` changes a message's status: an update naming `status` on an OutboxMessage
    query, or `….status = DeliveryStatus.…`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("update", "bulk_update") and _root(node.func.value) == "OutboxMessage" and any(
                k.arg in (None, "status") for k in node.keywords
            ):
                found.append(f"{node.lineno}: OutboxMessage….{node.func.attr}(status=…)")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "status" and "DeliveryStatus" in ast.unparse(node.value):
                    found.append(f"{node.lineno}: {ast.unparse(target)} = …")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_the_reader_sees_the_ways_of_writing_a_status():
    source = (
        "await OutboxMessage.filter(id=1).update(status=DeliveryStatus.SENT)\n"
        "message.status = DeliveryStatus.FAILED\n"
        "await OutboxMessage.filter(id=1).update(lease_owner=None)\n"
    )
    assert status_writes(source) == ["1: OutboxMessage….update(status=…)", "2: message.status = …"]


def test_only_resolvers_outbox_changes_a_messages_status():
    writers = {
        str(path.relative_to(ROOT)): found
        for folder in SCANNED if (ROOT / folder).is_dir()
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.relative_to(ROOT) != OWNER and (found := status_writes(path.read_text(encoding="utf-8")))
    }
    assert writers == {}, "change a message's status through resolvers/outbox.py"
    assert status_writes((ROOT / OWNER).read_text(encoding="utf-8")), "the owner writes the status"
