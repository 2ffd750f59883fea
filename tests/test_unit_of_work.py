"""One unit of work (resolvers/common/unit_of_work.py): a change's events are announced once its
transaction has committed, never after a rollback; and no code outside that module announces by hand.

The behaviour runs on the suite's database and broker (SQLite and the in-process broker, or
PostgreSQL and Redis with KABINET_TEST_DATABASE_URL / KABINET_TEST_BROKER_URL).
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from tortoise.backends.base.client import TransactionalDBClient

from models.events import OrganizationEvent
from resolvers.common.context import SystemActor
from events.log import EVENTS_CHANNEL, SESSIONS
from resolvers.common.unit_of_work import change
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("foundation", "events", "kabinet", "resolvers", "workers", "schema", "bench")
UNIT_OF_WORK = Path("resolvers/common/unit_of_work.py")

# Functions that announce events whose transactions committed elsewhere, through the unit of work's
# `announce_committed`, because their transactions are not one block they own. Each with its reason;
# a new one needs a reason here, not a silent copy.
ANNOUNCE_COMMITTED_ALLOWED = {
    # The domain function runs one transaction per subscription itself (resolvers/cloud/subscriptions.py).
    ("workers/periods.py", "roll_over_periods"),
    # A batch, then a line-by-line fallback in savepoints, then kept refusals: several transactions.
    ("resolvers/provider/records.py", "apply"),
    # The CLI commits through `_on_the_database` (its own event loop), then announces on a broker it opens.
    ("kabinet/cli/provider.py", "announce_on_the_broker"),
    # The bench stamps the commit time between the commit and the announcement it measures.
    ("bench/changes.py", "next"),
}


def _sources() -> list[tuple[Path, ast.Module]]:
    files = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            files.append((path.relative_to(ROOT), ast.parse(path.read_text(encoding="utf-8"))))
    return files


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _own_calls(function: ast.AST) -> set[str | None]:
    """The names a function calls itself (lambdas included, nested functions not: they are counted alone)."""
    names, todo = set(), list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Call):
            names.add(_called_name(node))
        todo.extend(ast.iter_child_nodes(node))
    return names


def _functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_only_the_unit_of_work_announces():
    """`.announce(` (or the events module's `announce`) is called in resolvers/common/unit_of_work.py only;
    events/log.py defines it, PendingAnnouncements.announce calls it."""
    found = []
    for path, tree in _sources():
        if path in (UNIT_OF_WORK, Path("events/log.py")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node) == "announce":
                found.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "events.log":
                if any(alias.name == "announce" for alias in node.names):
                    found.append(f"{path}:{node.lineno} imports announce")
    assert not found, f"announce by hand, use resolvers.common.unit_of_work.change: {found}"


def test_events_announce_only_through_pending_announcements():
    """events/log.py's module-level `announce` is called by PendingAnnouncements.announce only."""
    tree = ast.parse((ROOT / "events/log.py").read_text(encoding="utf-8"))
    callers = {
        function.name for function in _functions(tree)
        for node in ast.walk(function) if isinstance(node, ast.Call) and _called_name(node) == "announce"
    }
    assert callers == {"announce"}, callers  # the method of PendingAnnouncements


def test_no_raw_transaction_then_publish():
    """No function opens `in_transaction()` and also publishes (announces, runs after-commit actions or
    calls the broker's publish), outside the unit of work and the listed exceptions."""
    publishing = {"announce", "announce_committed", "publish"}
    found = []
    for path, tree in _sources():
        if path == UNIT_OF_WORK:
            continue
        for function in _functions(tree):
            calls = _own_calls(function)
            if "in_transaction" in calls and calls & publishing and (str(path), function.name) not in ANNOUNCE_COMMITTED_ALLOWED:
                found.append(f"{path}:{function.lineno} {function.name}")
    assert not found, f"a raw transaction followed by publishing, use resolvers.common.unit_of_work.change: {found}"


def test_announce_committed_is_used_only_where_listed():
    used = set()
    for path, tree in _sources():
        if path == UNIT_OF_WORK:
            continue
        for function in _functions(tree):
            if "announce_committed" in _own_calls(function):
                used.add((str(path), function.name))
    assert used <= ANNOUNCE_COMMITTED_ALLOWED, f"announce_committed outside the listed places: {used - ANNOUNCE_COMMITTED_ALLOWED}"


def test_the_mutation_hook_is_a_unit_of_work_too():
    """A mutation's transaction is the unit of work's (`change`), like a worker's: no raw transaction
    runs after-commit actions by hand."""
    hook = [function for path, tree in _sources() if str(path) == "schema/errors.py" for function in _functions(tree) if function.name == "run"]
    assert hook and "change" in _own_calls(hook[0]) and "in_transaction" not in _own_calls(hook[0])
    found = []
    for path, tree in _sources():
        for function in _functions(tree):
            calls = _own_calls(function)
            if "in_transaction" in calls and "run_after_commit" in calls:
                found.append((str(path), function.name))
    # kabinet/cli/provider.py `disable` revokes a staff member through a RequestContext, as a mutation would.
    assert {path for path, _ in found} <= {"kabinet/cli/provider.py"}, found


# ---------------------------------------------------------------- behaviour


class SpyBroadcast:
    """The suite's real broker, with a note of each publish and whether a transaction was still open."""

    def __init__(self, broadcast: Any) -> None:
        self.broadcast = broadcast
        self.published: list[tuple[str, dict[str, Any], bool]] = []

    async def publish(self, channel: str, message: str) -> None:
        in_transaction = isinstance(OrganizationEvent._meta.db, TransactionalDBClient)
        self.published.append((channel, orjson.loads(message), in_transaction))
        await self.broadcast.publish(channel, message)


async def _record(actor: SystemActor, organization_id: uuid.UUID) -> int:
    return await actor.record_event(organization_id, SESSIONS, "STARTED", {"test": "unit of work"})


async def test_events_are_announced_once_committed_through_the_broker(app):
    organization = await factories.create_organization()
    spy = SpyBroadcast(app.state.broadcast)
    async with app.state.broadcast.subscribe(EVENTS_CHANNEL) as notices:
        actor = SystemActor("test")
        async with change(actor, spy):
            seq = await _record(actor, organization.id)
            assert spy.published == [], "nothing is announced before the commit"
        assert spy.published == [(EVENTS_CHANNEL, {"org": str(organization.id), "seq": seq}, False)]
        assert await OrganizationEvent.filter(organization_id=organization.id, seq=seq).exists()

        async def first_of_ours() -> dict[str, Any]:
            async for notice in notices:
                message = orjson.loads(notice.message)
                if message["org"] == str(organization.id):
                    return message
            raise AssertionError("the subscription ended")

        assert await asyncio.wait_for(first_of_ours(), timeout=5) == {"org": str(organization.id), "seq": seq}


async def test_a_rolled_back_change_announces_nothing_and_keeps_nothing(app):
    organization = await factories.create_organization()
    spy = SpyBroadcast(app.state.broadcast)
    actor = SystemActor("test")
    with pytest.raises(RuntimeError):
        async with change(actor, spy):
            await _record(actor, organization.id)
            raise RuntimeError("the change fails")
    assert spy.published == []
    assert actor.announcements.latest == {}
    assert not await OrganizationEvent.filter(organization_id=organization.id).exists()

    # The same actor's next change announces only its own event.
    async with change(actor, spy):
        seq = await _record(actor, organization.id)
    assert [message for _, message, _ in spy.published] == [{"org": str(organization.id), "seq": seq}]


async def test_several_events_of_one_organization_are_announced_once_with_the_latest(app):
    organization = await factories.create_organization()
    spy = SpyBroadcast(app.state.broadcast)
    actor = SystemActor("test")
    async with change(actor, spy):
        await _record(actor, organization.id)
        latest = await _record(actor, organization.id)
    assert [(message, open_) for _, message, open_ in spy.published] == [({"org": str(organization.id), "seq": latest}, False)]
