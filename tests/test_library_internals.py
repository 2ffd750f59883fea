"""The private parts of libraries the code relies on still exist and behave as assumed, and only
their adapter modules touch them (issue 11).

The adapters: `models/tortoise_internals.py` (Tortoise), `schema/strawberry_internals.py`
(strawberry and graphql-core), `events/broadcaster_internals.py` (broadcaster). Each names the
version it was written against. A failure here after an upgrade says what moved: fix the adapter
(and only it), or pin the library back.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = ("kabinet", "models", "resolvers", "schema", "workers")
ADAPTERS = {
    ROOT / "models" / "tortoise_internals.py",
    ROOT / "schema" / "strawberry_internals.py",
    ROOT / "events" / "broadcaster_internals.py",
}
# Private names of the libraries that only an adapter may use.
PRIVATE_NAMES = frozenset({
    "_raw_info", "_schema",  # strawberry
    "_init_from_db", "_pool", "_pool_init_lock", "_is_negated", "_make_query", "_inited",  # Tortoise
    "_partial", "_saved_in_db", "_await_when_save", "_custom_generated_pk",  # Tortoise model state
    "_enable_global_fallback",  # Tortoise.init
    "_run_database_forward",  # Tortoise's Migration.apply
    "_backend",  # broadcaster
})
LIBRARIES = ("tortoise", "pypika", "strawberry", "graphql", "broadcaster", "asyncpg", "aiosqlite", "redis", "starlette")


def _installed(distribution: str) -> str:
    from importlib.metadata import version

    return f"{distribution}=={version(distribution)}"


def _pinned(distribution: str) -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.strip().startswith(f'"{distribution}'))
    entry = line.strip().split('"')[1]  # e.g. broadcaster[redis,postgres]==0.3.1
    return entry.split("==")[0].split("[")[0] + "==" + entry.split("==")[1]


# ---------------------------------------------------------------- the pins the adapters name


@pytest.mark.parametrize(
    ("adapter", "distributions"),
    [
        ("models.tortoise_internals", ("tortoise-orm",)),
        ("schema.strawberry_internals", ("strawberry-graphql", "graphql-core")),
        ("events.broadcaster_internals", ("broadcaster",)),
    ],
)
def test_each_adapter_names_the_pinned_and_installed_version(adapter: str, distributions: tuple[str, ...]) -> None:
    import importlib

    module = importlib.import_module(adapter)
    named = module.PINNED if isinstance(module.PINNED, tuple) else (module.PINNED,)
    for distribution in distributions:
        pinned = _pinned(distribution)
        assert pinned in named and pinned in module.__doc__, (
            f"{adapter} was written against {named}, pyproject.toml pins {pinned}: read the adapter's "
            "docstring, check each internal it names against the new version, then update PINNED and the docstring"
        )
        assert _installed(distribution) == pinned, f"installed {_installed(distribution)}, pinned {pinned}"


# ---------------------------------------------------------------- Tortoise


def test_tortoise_builds_models_through_init_from_db() -> None:
    from tortoise.backends.base import executor
    from tortoise.models import Model

    from models.base import Entity
    from models.tortoise_internals import tortoise_init_from_db

    assert isinstance(Model.__dict__.get("_init_from_db"), classmethod), (
        "Tortoise's Model._init_from_db is gone or no longer a classmethod: QuerySets would stop using "
        "the compiled row builder (models/base.py); find what builds a model from a row now"
    )
    assert tortoise_init_from_db is Model.__dict__["_init_from_db"].__func__
    assert "self.model._init_from_db(**row)" in inspect.getsource(executor), (
        "Tortoise's executor no longer builds a QuerySet's models with Model._init_from_db(**row)"
    )
    assert isinstance(Entity.__dict__.get("_init_from_db"), classmethod), "use_row_builder did not route Entity"


def _reads(function: Any, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))))


def test_migrations_clone_the_state_where_tortoise_did_only_when_an_operation_reads_it() -> None:
    """`_apply` is Tortoise's `Migration.apply` but for the clone before each operation: the
    operations it skips the clone for still read only the state after them (or leave the state
    alone), and Tortoise's `apply` is still the one `_apply` was copied from."""
    import hashlib

    from tortoise.migrations.migration import Migration

    from models.tortoise_internals import (
        FORWARD_READS_ONLY_THE_STATE_AFTER, LEAVE_THE_STATE_AS_IT_IS, _apply, tortoise_migration_apply,
    )
    import kabinet.db  # noqa: F401  (installs _apply)

    assert Migration.apply is _apply
    source = textwrap.dedent(inspect.getsource(tortoise_migration_apply))
    assert "old_state = state.clone() if need_old_state else None" in source
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "7e9a19f612241e0e", (
        "Tortoise's Migration.apply changed: bring models/tortoise_internals._apply in line with it, then this digest"
    )
    assert [kind.__name__ for kind in FORWARD_READS_ONLY_THE_STATE_AFTER if _reads(kind.database_forward, "old_state")] == []
    for kind in LEAVE_THE_STATE_AS_IT_IS:
        body = ast.parse(textwrap.dedent(inspect.getsource(kind.state_forward))).body[0].body
        assert ast.unparse(body[-1]) == "return None" and len(body) == 1, f"{kind.__name__}.state_forward now changes the state"

async def test_tortoise_leaves_the_state_the_row_builder_writes(app) -> None:
    """A model Tortoise builds from a row has, besides its fields, exactly the state
    `loaded_state_source` gives (the row builder stores it in one go)."""
    from tortoise import connections

    from models.organizations import Organization
    from models.tortoise_internals import LOADED_STATE_NAMES, loaded_state_source, tortoise_init_from_db

    _, rows = await connections.get("default").execute_query(f'SELECT * FROM "{Organization._meta.db_table}" LIMIT 1')
    theirs = tortoise_init_from_db(Organization, **dict(rows[0]))
    state = {k: v for k, v in theirs.__dict__.items() if k.startswith("_") and k not in Organization._meta.fields_map}
    expected = eval(f"dict({loaded_state_source(Organization._meta.db_pk_column not in Organization._meta.generated_db_fields)})")  # noqa: S307
    assert set(state) == set(LOADED_STATE_NAMES) and state == expected, (
        f"Tortoise now leaves {state} on a model read from the database, the row builder writes {expected}: "
        "update models/tortoise_internals.py (_LOADED_STATE)"
    )
    ours = Organization.from_row(rows[0])
    assert ours._await_when_save is not Organization.from_row(rows[0])._await_when_save  # each its own dict


def test_tortoise_model_metadata_the_read_path_uses() -> None:
    from tortoise import fields

    from models.organizations import Organization

    meta = Organization._meta
    for name in ("db_native_fields", "db_default_fields", "db_complex_fields"):
        entries = getattr(meta, name)
        assert all(len(entry) == 3 for entry in entries), f"MetaInfo.{name} is no longer (column, attribute, field)"
    for name in ("generated_db_fields", "db_pk_column", "fields_db_projection", "filters", "fields_map", "db_table"):
        assert hasattr(meta, name), f"MetaInfo.{name} is gone: models/base.py and models/select.py read it"
    info = meta.filters["name"]
    assert {"field", "source_field", "operator"} <= set(info), f"a filter's description changed: {sorted(info)}"
    assert callable(fields.UUIDField.to_python_value) and callable(fields.DatetimeField.to_python_value)
    assert hasattr(fields.data, "CharEnumFieldInstance"), "CharEnumFieldInstance moved (models/base.py)"


def test_q_negation() -> None:
    from tortoise.expressions import Q

    from models.tortoise_internals import is_negated

    assert is_negated(~Q(id=1)) is True and is_negated(Q(id=1)) is False, "Q._is_negated changed (models/select.py)"
    q = Q(Q(id=1), Q(id=2), join_type="OR")
    assert q.join_type == "OR" and len(q.children) == 2 and Q(id=1).filters == {"id": 1}


async def test_a_querysets_sql(app) -> None:
    from models.organizations import Organization
    from models.tortoise_internals import queryset_sql

    sql, params = queryset_sql(Organization.filter(name__startswith="Ромашка"))
    assert " FROM " in sql and "LIKE" in sql.upper() and isinstance(params, list) and len(params) == 1, (
        "QuerySet._make_query()/query.get_parameterized_sql() changed (models/select.py windows a QuerySet's SQL)"
    )


def test_the_asyncpg_clients_pool_internals() -> None:
    from tortoise.backends.asyncpg import AsyncpgDBClient
    from tortoise.backends.base.client import PoolConnectionWrapper

    client = AsyncpgDBClient(connection_name="probe", user="u", password="p", database="d", host="127.0.0.1", port=1)
    assert client._pool is None and isinstance(client._pool_init_lock, asyncio.Lock), (
        "Tortoise's asyncpg client keeps its pool elsewhere than _pool/_pool_init_lock (kabinet/db.py)"
    )
    assert list(inspect.signature(PoolConnectionWrapper.__init__).parameters) == ["self", "client", "pool_init_lock"]
    assert inspect.iscoroutinefunction(PoolConnectionWrapper.ensure_connection)
    assert callable(AsyncpgDBClient.acquire_connection), "kabinet/db.py overrides acquire_connection"
    import tortoise.connection

    assert "engine_module.client_class" in inspect.getsource(tortoise.connection), (
        "Tortoise no longer takes an engine module's `client_class` (kabinet/db.py is the engine of PostgreSQL URLs)"
    )


async def test_every_client_and_its_transactions_log_statements_through_the_counting_logger(app) -> None:
    """`count_statements` wraps the logger a client takes when created; its transactions copy it, and
    each statement calls its `debug` (tests/test_request_logs.py counts them)."""
    from tortoise import connections
    from tortoise.backends.base import client as base_client
    from tortoise.transactions import in_transaction

    from models.tortoise_internals import _CountingLog

    assert isinstance(base_client.db_client_logger, _CountingLog)
    client = connections.get("default")
    assert client.log is base_client.db_client_logger
    async with in_transaction() as transaction:
        assert transaction.log is client.log


def test_tortoise_init_takes_the_global_fallback() -> None:
    from tortoise import Tortoise

    assert "_enable_global_fallback" in inspect.signature(Tortoise.init).parameters, (
        "Tortoise.init lost _enable_global_fallback: requests (other tasks than the lifespan's) must "
        "still see the connections; see how the new version shares them (models/tortoise_internals.py)"
    )


async def test_tortoise_is_initialised_and_a_pool_is_reached(app) -> None:
    from tortoise import connections

    from kabinet.db import KabinetAsyncpgClient
    from models.tortoise_internals import ensure_pool, pool_of, tortoise_initialised

    assert tortoise_initialised() is True, "Tortoise._inited is not True after Tortoise.init"
    client = connections.get("default")
    if not isinstance(client, KabinetAsyncpgClient):
        pytest.skip("PostgreSQL only")
    import asyncpg

    pool = await ensure_pool(client)
    assert isinstance(pool, asyncpg.Pool) and pool_of(client) is pool
    connection = await pool.acquire()
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await pool.release(connection)


# ---------------------------------------------------------------- strawberry and graphql-core


def test_strawberry_info_wraps_graphql_cores() -> None:
    import strawberry
    from graphql import GraphQLResolveInfo, GraphQLSchema

    from schema.strawberry_internals import STRAWBERRY_FIELD, graphql_core_schema, raw_info

    seen: list[Any] = []

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self, info: strawberry.Info, name: str = "x") -> str:
            seen.append(raw_info(info))
            return name

    schema = strawberry.Schema(Query)
    result = schema.execute_sync('query Q($n: String!) { hello(name: $n) }', variable_values={"n": "мир"})
    assert result.errors is None and result.data == {"hello": "мир"}
    [raw] = seen
    missing = [name for name in GraphQLResolveInfo._fields if not hasattr(raw, name)]
    assert missing == [], f"Info._raw_info is no longer graphql-core's resolve info (it lacks {missing})"
    assert raw.field_name == "hello" and raw.operation.name.value == "Q" and raw.fragments == {}
    core = graphql_core_schema(schema)
    assert isinstance(core, GraphQLSchema), "strawberry's Schema._schema is no longer the GraphQLSchema"
    field = core.type_map["Query"].fields["hello"]
    definition = field.extensions.get(STRAWBERRY_FIELD)
    assert definition is not None, f"strawberry keeps its field definition under another key: {list(field.extensions)}"
    resolver = definition.base_resolver
    for name in ("wrapped_func", "is_async", "self_parameter", "info_parameter", "root_parameter", "parent_parameter", "arguments"):
        assert hasattr(resolver, name), f"StrawberryResolver.{name} is gone (schema/execution.py)"
    assert definition.python_name == "hello" and definition.extensions == []


def test_graphql_cores_executor_as_schema_execution_extends_it() -> None:
    from graphql.execution.values import VariableValues, get_argument_values

    from schema.strawberry_internals import ExecutionContext

    def parameters(name: str) -> list[str]:
        return list(inspect.signature(getattr(ExecutionContext, name)).parameters)

    assert parameters("complete_object_value") == [
        "self", "return_type", "field_details_list", "info", "path", "result", "position_context",
    ], "graphql-core's complete_object_value changed: schema/execution.py overrides it"
    assert parameters("execute_operation") == ["self", "serially"]
    assert parameters("collect_subfields") == ["self", "return_type", "field_details_list"]
    assert parameters("build_resolve_info") == ["self", "field_def", "field_nodes", "parent_type", "path"]
    assert callable(ExecutionContext.is_awaitable) and callable(ExecutionContext.run_async_work_finished_hook)
    assert list(inspect.signature(get_argument_values).parameters) == [
        "type_def", "node", "variable_values", "fragment_variable_values", "hide_suggestions",
    ]
    assert "coerced" in inspect.signature(VariableValues).parameters


def _library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in LIBRARIES]


def _overrides(cls: type, own: set[str]) -> list[str]:
    return [
        name for name, value in vars(cls).items()
        if not name.startswith("_") and name not in own and (callable(value) or isinstance(value, type))
    ]


def test_every_method_we_override_is_one_the_library_defines() -> None:
    """An override of a name the library no longer has (or never calls) would be silently ignored."""
    import asyncpg
    from tortoise.backends.asyncpg import AsyncpgDBClient

    from kabinet.db import KabinetAsyncpgClient, PooledConnection
    from kabinet.graphql_view import KabinetGraphQL, TextWebSocketAdapter
    from events.broker import ReconnectingPostgresBackend, ReconnectingRedisBackend, _Reconnecting
    from kabinet.transport import GraphQLOverHTTP, LegacyWSHandler, LimitedWebSocketAdapter, TransportWSHandler
    from schema.build import KabinetSchema
    from schema.execution import KabinetExecutionContext

    own = {  # names of ours, not overrides
        KabinetGraphQL: {"close_sockets", "viewer_from_token", "viewer_of"},
        LegacyWSHandler: {"initialised"},
        _Reconnecting: {"open", "close", "listen_to", "pump"},
        ReconnectingRedisBackend: {"open", "close", "listen_to", "pump"},
        ReconnectingPostgresBackend: {"open", "close", "listen_to", "pump"},
    }
    classes = [
        KabinetGraphQL, TextWebSocketAdapter, LimitedWebSocketAdapter, TransportWSHandler, LegacyWSHandler,
        KabinetSchema, KabinetExecutionContext, KabinetAsyncpgClient, PooledConnection, _Reconnecting,
        ReconnectingRedisBackend, ReconnectingPostgresBackend,
    ]
    missing = []
    for cls in classes:
        bases = _library_bases(cls)
        assert bases, cls
        names = _overrides(cls, own.get(cls, set()))
        if cls is KabinetGraphQL:
            names += _overrides(GraphQLOverHTTP, set())
        missing += [f"{cls.__name__}.{name}" for name in names if not any(name in vars(base) for base in bases)]
    assert missing == [], f"no library base class defines these any more (check what replaced them): {missing}"
    assert "connection_init_wait_timeout" in inspect.getsource(TransportWSHandler.__mro__[1]), (
        "strawberry's graphql-transport-ws handler no longer reads connection_init_wait_timeout (kabinet/transport.py)"
    )
    assert PooledConnection.get_reset_query is not asyncpg.Connection.get_reset_query
    assert KabinetAsyncpgClient.acquire_connection is not AsyncpgDBClient.acquire_connection


# ---------------------------------------------------------------- broadcaster


async def test_a_broadcast_holds_its_backend() -> None:
    import broadcaster
    from broadcaster import Broadcast, BroadcastBackend, Event

    from events.broadcaster_internals import backend_of
    from events.broker import ReconnectingRedisBackend

    assert set(broadcaster.__all__) >= {"Broadcast", "BroadcastBackend", "Event"}
    ours = ReconnectingRedisBackend("redis://127.0.0.1:1")
    assert backend_of(Broadcast(backend=ours)) is ours, (
        "Broadcast no longer keeps its backend in _backend: resolvers/identity/sign_ins.py would not hear of reconnections"
    )
    memory = Broadcast("memory://")
    assert isinstance(backend_of(memory), BroadcastBackend)
    await memory.connect()
    try:
        async with memory.subscribe("c") as subscriber:
            await backend_of(memory).publish("c", "hello")
            event = await asyncio.wait_for(subscriber.get(), timeout=5)
        assert event == Event("c", "hello")
    finally:
        await memory.disconnect()
    assert backend_of(object()) is None


# ---------------------------------------------------------------- only the adapters touch them


def private_uses(source: str) -> list[str]:
    """Uses of the libraries' private names in a source, as "line: what": an attribute of anything
    but `self`/`cls`, a method overriding one, a keyword argument, a string naming one (`getattr(x, "_backend")`), an import from a library's
    private module or of a private name."""
    found = []
    docstrings = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in PRIVATE_NAMES:
            found.append(f"{node.value.lineno}: {node.arg}=")
        elif isinstance(node, ast.ClassDef):
            found += [
                f"{item.lineno}: def {item.name}" for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in PRIVATE_NAMES
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = set(node.value.replace("=", " ").replace(",", " ").replace("(", " ").replace(".", " ").split())
            found += [f"{node.lineno}: {name!r}" for name in sorted(words & PRIVATE_NAMES)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] in LIBRARIES and (
                any(part.startswith("_") for part in parts) or any(a.name.startswith("_") for a in node.names)
            ):
                found.append(f"{node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
    return sorted(found, key=lambda use: int(use.split(":")[0]))


def test_the_scan_sees_every_kind_of_private_use() -> None:
    source = (
        '"""Mentions info._raw_info in a docstring."""\n'
        "from broadcaster._base import Event\n"
        "from strawberry.types import _private\n"
        "a = info._raw_info\n"
        'b = getattr(broadcast, "_backend", None)\n'
        "c = self._pool\n"
        'd = f"obj.__dict__.update(_partial=False)"\n'
        "e = q._is_negated\n"
        "from tortoise import Tortoise\n"
        "class M:\n    def _init_from_db(cls, **row): ...\n"
        "Tortoise.init(config=c, _enable_global_fallback=True)\n"
    )
    assert private_uses(source) == [
        "2: from broadcaster._base import Event",
        "3: from strawberry.types import _private",
        "4: ._raw_info",
        "5: '_backend'",
        "7: '_partial'",
        "8: ._is_negated",
        "11: def _init_from_db",
        "12: _enable_global_fallback=",
    ]


def test_only_the_adapters_touch_the_libraries_private_names() -> None:
    uses = {
        str(path.relative_to(ROOT)): found
        for folder in APPLICATION
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in ADAPTERS and (found := private_uses(path.read_text(encoding="utf-8")))
    }
    assert uses == {}, (
        "a library's private names belong in its adapter (models/tortoise_internals.py, "
        "schema/strawberry_internals.py, events/broadcaster_internals.py): add a small function there "
        "and a check in tests/test_library_internals.py"
    )
