"""Layer rules, held by reading the source (issue 11: a home for every rule)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = ("kabinet", "models", "resolvers", "schema", "workers")
CLOCK = ROOT / "kabinet" / "clock.py"


def application_files() -> list[Path]:
    return sorted(path for folder in APPLICATION for path in (ROOT / folder).rglob("*.py"))


def wall_clock_reads(source: str) -> list[str]:
    """Calls that read the wall clock for "now": `datetime.now()`, `datetime.utcnow()`,
    `date.today()` (however `datetime` is imported) and `time.time()`, as "line: call"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else None
        call = (owner_name, node.func.attr)
        if call in {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time")}:
            found.append(f"{node.lineno}: {owner_name}.{node.func.attr}()")
    return found


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at its top or inside a function."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_the_rule_sees_every_way_of_reading_the_wall_clock():
    source = (
        "import datetime as dt, time\nfrom datetime import datetime, date\n"
        "a = dt.datetime.now(dt.timezone.utc)\nb = datetime.utcnow()\nc = date.today()\nd = time.time()\n"
        "e = time.monotonic()\nf = clock.utcnow()\n"
    )
    assert wall_clock_reads(source) == ["3: datetime.now()", "4: datetime.utcnow()", "5: date.today()", "6: time.time()"]


def test_only_kabinet_clock_reads_the_wall_clock():
    """Everything else asks kabinet.clock for "now", so a test can move time for all of it at once."""
    reads = {
        str(path.relative_to(ROOT)): found
        for path in application_files()
        if path != CLOCK and (found := wall_clock_reads(path.read_text(encoding="utf-8")))
    }
    assert reads == {}, "read the time with kabinet.clock (utcnow, today, timestamp) instead"


def test_the_demo_data_imports_no_worker():
    """Seeding calls the domain (resolvers/) and the models, never a worker's internals."""
    assert imported_modules("from workers.documents import render\nimport workers\n") == {
        "workers.documents", "workers.documents.render", "workers",
    }
    modules = imported_modules((ROOT / "kabinet" / "demo.py").read_text(encoding="utf-8"))
    assert sorted(m for m in modules if m == "workers" or m.startswith("workers.")) == []
