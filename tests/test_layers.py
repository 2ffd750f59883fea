"""Layer rules, held by reading the source (issue 11: a home for every rule)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = ("foundation", "events", "kabinet", "models", "resolvers", "schema", "workers")
CLOCK = ROOT / "foundation" / "clock.py"


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


def test_only_the_foundation_clock_reads_the_wall_clock():
    """Everything else asks foundation.clock for "now", so a test can move time for all of it at once."""
    reads = {
        str(path.relative_to(ROOT)): found
        for path in application_files()
        if path != CLOCK and (found := wall_clock_reads(path.read_text(encoding="utf-8")))
    }
    assert reads == {}, "read the time with foundation.clock (utcnow, today, timestamp) instead"


def test_the_demo_data_imports_no_worker():
    """Seeding calls the domain (resolvers/) and the models, never a worker's internals."""
    assert imported_modules("from workers.documents import render\nimport workers\n") == {
        "workers.documents", "workers.documents.render", "workers",
    }
    modules = set().union(*(imported_modules(p.read_text(encoding="utf-8")) for p in (ROOT / "kabinet" / "demo").glob("*.py")))
    assert sorted(m for m in modules if m == "workers" or m.startswith("workers.")) == []


# ---------------------------------------------------------------- who may import whom

GRAPHQL_LIBRARIES = ("strawberry", "graphql")
# The floors, bottom first. A module imports only from its own floor or the floors below it; two
# packages on one floor (workers/ and schema/) import nothing of each other. No exceptions listed.
FLOORS = (("foundation",), ("models",), ("events",), ("resolvers",), ("workers", "schema"), ("kabinet",))
PACKAGES = tuple(package for floor in FLOORS for package in floor)
# Global ids are the wire format of GraphQL and of the HTTP APIs: the schema and the root use them, the domain never.
GLOBAL_IDS = "foundation.ids"
# The HTTP APIs besides GraphQL: they call resolvers, as the workers do.
HTTP_APIS = ("kabinet/agent_api", "kabinet/http.py", "kabinet/provider_api.py", "kabinet/provider_staff_api.py")


def top_level_imports(source: str) -> set[str]:
    """Modules imported for use at run time: `if TYPE_CHECKING:` blocks (annotations only) skipped."""
    tree = ast.parse(source)
    skipped = {
        id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in node.body for inner in ast.walk(child)
    }
    modules = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def offenders(folders: tuple[str, ...], refused) -> dict[str, list[str]]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else [ROOT / folder]:
            bad = sorted(m for m in top_level_imports(path.read_text(encoding="utf-8")) if refused(m))
            if bad:
                found[str(path.relative_to(ROOT))] = bad
    return found


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_domain_speaks_no_graphql():
    """resolvers/ take plain values and raise domain errors: the GraphQL face is schema/'s alone."""
    below_the_face = ("foundation", "models", "events", "resolvers", "workers")
    assert offenders(below_the_face, lambda m: _in(m, GRAPHQL_LIBRARIES + ("schema", GLOBAL_IDS))) == {}


def test_workers_and_http_apis_call_the_domain_not_the_schema():
    assert offenders(("workers",) + HTTP_APIS, lambda m: _in(m, ("schema",))) == {}


def floor_of(package: str) -> int:
    return next(number for number, floor in enumerate(FLOORS) if package in floor)


def test_every_arrow_points_down():
    """Each floor imports only itself and the floors below it (the foundation nothing of ours); on a
    floor shared by two packages, neither imports the other."""
    found = {}
    for package in PACKAGES:
        def refused(module: str, package: str = package) -> bool:
            target = module.split(".")[0]
            return target in PACKAGES and target != package and floor_of(target) >= floor_of(package)
        found.update(offenders((package,), refused))
    assert found == {}


def test_the_floor_plan_covers_every_package():
    """A new top-level package of ours must be given a floor before anything can import it."""
    ours = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench", "cluster_agent", "examples", "scripts"}
    assert ours == set(PACKAGES)


# The HTTP APIs whose every read and write goes through resolvers/ (annotations may name a model).
CALLS_RESOLVERS_ONLY = ("kabinet/agent_api", "kabinet/provider_api.py", "kabinet/provider_staff_api.py")


def test_http_apis_call_resolvers_not_models():
    """An HTTP API decodes its input, calls resolvers and encodes their answer: a model read there is a
    rule (a lookup, a check) the domain does not know about."""
    assert offenders(CALLS_RESOLVERS_ONLY, lambda m: _in(m, ("models",))) == {}


def test_the_import_reader_skips_annotation_only_imports():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from schema.x import Y\nimport resolvers.z\n"
    assert top_level_imports(source) == {"typing", "typing.TYPE_CHECKING", "resolvers.z"}


def test_the_actor_is_a_protocol_the_domain_states_without_knowing_the_provider():
    """resolvers/common/context.py says what an actor must offer (its viewer and address for the audit, a way
    to record events); every actor meets it, and the provider's package is none of its imports."""
    from resolvers.common.context import Actor, RequestContext, SystemActor
    from resolvers.provider.records import ProviderActor

    assert sorted(m for m in imported_modules((ROOT / "resolvers" / "common" / "context.py").read_text(encoding="utf-8"))
                  if _in(m, ("resolvers.provider",))) == []
    for actor in (RequestContext(settings=None), SystemActor("worker"), ProviderActor("CLI", "cli", frozenset())):
        assert isinstance(actor, Actor), type(actor).__name__
    assert not isinstance(object(), Actor)


def test_a_staff_caller_is_a_signed_in_user_or_a_scoped_caller_the_domain_states_without_knowing_the_provider():
    """resolvers/common/staff_rights.py says what a caller without a sign-in offers (kind, name, scopes); the
    provider's actor meets it, a signed-in request does not (staff_member tells the two apart), and the
    provider's package is none of its module-level imports (the audit's writer is imported when called)."""
    import typing

    from resolvers.common.context import RequestContext
    from resolvers.provider.records import ProviderActor
    from resolvers.common.staff_rights import Caller, ScopedCaller

    module_level = ast.parse((ROOT / "resolvers" / "common" / "staff_rights.py").read_text(encoding="utf-8")).body
    imports = {m for node in module_level if isinstance(node, (ast.Import, ast.ImportFrom)) for m in imported_modules(ast.unparse(node))}
    assert "resolvers.common.context" in imports and sorted(m for m in imports if _in(m, ("resolvers.provider",))) == []
    assert typing.get_args(Caller) == (RequestContext, ScopedCaller)
    assert isinstance(ProviderActor("CLI", "cli", frozenset()), ScopedCaller)
    assert not isinstance(RequestContext(settings=None), ScopedCaller)


def test_every_periodic_worker_runs_on_the_one_loop():
    """workers/loop.py `every` is the one "round, rest, until stop" loop: each `run_…` of workers/ calls it
    (the update worker aside: it waits on the runs it carries out, each with its lease's heartbeat)."""
    own_loops = {}
    for path in sorted((ROOT / "workers").glob("*.py")):
        if path.name in ("loop.py", "runner.py", "updates.py", "__init__.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name.startswith("run_")):
            calls = {c.func.id for c in ast.walk(function) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            loops = [n for n in ast.walk(function) if isinstance(n, ast.While)]
            if "every" not in calls or loops:
                own_loops[f"{path.name}:{function.name}"] = sorted(calls)
    assert own_loops == {}


def test_no_module_outside_the_tests_is_over_500_lines():
    """A module grown past 500 lines holds more than one thing: split it by what it owns (issue 19)."""
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in (*APPLICATION, "bench", "cluster_agent")
        for path in (ROOT / folder).rglob("*.py")
        if ".venv" not in path.parts and "node_modules" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}
