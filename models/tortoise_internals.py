"""The private parts of Tortoise ORM the code relies on, in one place (pinned: tortoise-orm==1.1.9).

The read path builds models from rows itself and writes its own SELECTs (`models/base.py`,
`models/select.py`), and a request shares one pool connection (`kabinet/db.py`); each needs a
little of Tortoise that is not its public API:

- `Model._init_from_db(**row)`: the classmethod every QuerySet calls to turn a row into a model;
  `use_row_builder` routes it to our compiled builder, `tortoise_init_from_db` is Tortoise's own.
- the instance state a model read from the database carries besides its fields (`_partial`,
  `_saved_in_db`, `_await_when_save`, `_custom_generated_pk`): `loaded_state_source`.
- `Q._is_negated` (`~Q(...)`), and `QuerySet._make_query()` that fills `queryset.query`.
- `Tortoise.init(_enable_global_fallback=True)`: requests run in other tasks than the one that
  initialised Tortoise and must still see its connections: `init_tortoise`.
- the logger every client takes as its `log` when created (`tortoise.backends.base.client.db_client_logger`,
  copied onto its transactions), whose `debug` each statement calls: `count_statements` wraps it.
- the asyncpg client's pool (`_pool`), the lock it is created under (`_pool_init_lock`) with
  `PoolConnectionWrapper.ensure_connection()` that creates it lazily, and `Tortoise._inited`.
- `Migration.apply`, whose copy here clones the migration state only for the operations that read
  the state before them (`clone_migration_state_only_when_read`).

(`Model._meta` and its `MetaInfo` — `fields_map`, `filters`, `db_*_fields` — are used directly:
Tortoise documents `_meta` as the model's metadata.) `tests/test_library_internals.py` checks
every one of these against the installed Tortoise: after an upgrade, a failure there names what
moved. It lives in `models/` because that is the lowest layer using Tortoise (the composition root
imports it, not the other way round). What is fetched here is looked up once, at import: the
row builder and the statement writer are on the read path's hot loop.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base import client as tortoise_client_module
from tortoise.backends.base.client import PoolConnectionWrapper
from tortoise.migrations import operations as migration_operations
from tortoise.migrations.migration import Migration
from tortoise.models import Model
from tortoise.queryset import QuerySet

PINNED = "tortoise-orm==1.1.9"

# Tortoise's own row-to-model function, unbound: `tortoise_init_from_db(cls, **row)`.
tortoise_init_from_db: Callable[..., Any] = Model._init_from_db.__func__  # type: ignore[attr-defined]

# The state `Model._init_from_db` leaves on a model besides its fields, as keyword arguments of
# the row builder's `obj.__dict__.update(...)`; `{}` is a literal, so each model gets its own.
_LOADED_STATE = "_partial=False, _saved_in_db=True, _await_when_save={{}}, _custom_generated_pk={custom_pk!r}"
LOADED_STATE_NAMES = ("_partial", "_saved_in_db", "_await_when_save", "_custom_generated_pk")

# `~Q(...)`: is this Q negated?
is_negated: Callable[[Any], bool] = attrgetter("_is_negated")


def use_row_builder(cls: type[Model]) -> type[Model]:
    """Make every QuerySet of `cls` (and its subclasses) build models with `cls.from_row(row)`."""

    def _init_from_db(model: type[Model], **row: Any) -> Any:
        return model.from_row(row)

    _init_from_db.__doc__ = "A model from a database row, as Tortoise builds it, only faster (see `from_row`)."
    cls._init_from_db = classmethod(_init_from_db)  # type: ignore[method-assign,assignment]
    return cls


def loaded_state_source(custom_generated_pk: bool) -> str:
    """The keyword arguments (source text) that give a model the state of one read from the database."""
    return _LOADED_STATE.format(custom_pk=custom_generated_pk)


def queryset_sql(queryset: QuerySet) -> tuple[str, list[Any]]:
    """(SQL, parameters) the QuerySet would run."""
    queryset._make_query()
    sql, params = queryset.query.get_parameterized_sql()
    return sql, list(params)


async def init_tortoise(config: dict[str, Any]) -> None:
    """`Tortoise.init(config)`, its connections visible to every task (the global fallback)."""
    await Tortoise.init(config=config, _enable_global_fallback=True)


def tortoise_initialised() -> bool:
    """Has `Tortoise.init` run (and not been closed since)?"""
    return Tortoise._inited


async def ensure_pool(client: Any) -> Any:
    """The asyncpg pool of Tortoise's asyncpg client, created if it is not yet (as Tortoise does
    before a statement)."""
    await PoolConnectionWrapper(client, client._pool_init_lock).ensure_connection()
    return client._pool


def pool_of(client: Any) -> Any:
    """The asyncpg pool of Tortoise's asyncpg client (None before its first connection)."""
    return client._pool


_NOT_STATEMENTS = ("Created connection", "Closed connection")


class _CountingLog:
    """The client's logger, counting each statement it is told of (one call and a context variable
    read per statement, whether DEBUG is on or not) before handing the call on."""

    __slots__ = ("log", "on_statement")

    def __init__(self, log: Any, on_statement: Callable[[], None]) -> None:
        self.log, self.on_statement = log, on_statement

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not (isinstance(msg, str) and msg.startswith(_NOT_STATEMENTS)):
            self.on_statement()
        self.log.debug(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def count_statements(on_statement: Callable[[], None]) -> None:
    """Call `on_statement()` for every statement of every client created from now on (and of each
    transaction it opens): for the request's log line (foundation/logs.py)."""
    if not isinstance(tortoise_client_module.db_client_logger, _CountingLog):
        tortoise_client_module.db_client_logger = _CountingLog(tortoise_client_module.db_client_logger, on_statement)


# Tortoise's own `Migration.apply`, which `_apply` copies (tests/test_library_internals.py compares them).
tortoise_migration_apply = Migration.apply

# Operations whose `database_forward` reads only the state after them (or none): a copy of the state
# before them would never be looked at.
FORWARD_READS_ONLY_THE_STATE_AFTER = frozenset({
    migration_operations.CreateModel, migration_operations.AddField, migration_operations.AddIndex,
    migration_operations.AddConstraint, migration_operations.AlterModelOptions,
})
# Operations whose `state_forward` changes nothing: the state before them is the state after.
LEAVE_THE_STATE_AS_IT_IS = frozenset({migration_operations.RunPython, migration_operations.RunSQL})


def _state_before(operation: Any, state: Any) -> Any:
    """What `database_forward` gets as the state before `operation`, taken before `state_forward`."""
    kind = type(operation)  # a subclass may read more: it gets the clone Tortoise makes
    if kind in LEAVE_THE_STATE_AS_IT_IS:
        return state
    if kind in FORWARD_READS_ONLY_THE_STATE_AFTER:
        return None  # read anyway (a Tortoise upgrade), the migration fails loudly, never quietly
    return state.clone()


async def _apply(
    self: Migration, state: Any, *, dry_run: bool = False, schema_editor: Any = None, collect_sql: bool = False
) -> Any:
    """Tortoise's `Migration.apply` (1.1.9), but the state before an operation is cloned only when
    the operation reads it. Tortoise clones it before every operation: each clone renders every
    model anew, ~130 clones for our 24 migrations — ~10 s of CPU to migrate a fresh database, paid
    by every deployment's first start and by every test that starts kabinet on a fresh database."""
    supports_transactions = schema_editor is not None and schema_editor.client.capabilities.supports_transactions
    need_old_state = (collect_sql and schema_editor) or (not dry_run and schema_editor is not None)
    for operation in self.operations:
        old_state = _state_before(operation, state) if need_old_state else None
        operation.state_forward(self.app_label, state)
        if collect_sql and schema_editor:
            schema_editor.collected_sql.append("--")
            schema_editor.collected_sql.append(f"-- {operation.describe()}")
            schema_editor.collected_sql.append("--")
            if not operation.reduces_to_sql:
                schema_editor.collected_sql.append("-- THIS OPERATION CANNOT BE REPRESENTED AS SQL")
                continue
            before = len(schema_editor.collected_sql)
            await self._run_database_forward(operation, old_state, state, schema_editor, supports_transactions)
            if len(schema_editor.collected_sql) == before:
                schema_editor.collected_sql.append("-- (no-op)")
            continue
        if dry_run or not schema_editor:
            continue
        await self._run_database_forward(operation, old_state, state, schema_editor, supports_transactions)
    state.validate_relations_initialized()
    return state


def clone_migration_state_only_when_read() -> None:
    """Every migration applied from now on clones its state only where an operation reads it
    (`_apply`): the same SQL and the same state, a fresh database migrated in a fraction of the CPU."""
    Migration.apply = _apply  # type: ignore[method-assign]
