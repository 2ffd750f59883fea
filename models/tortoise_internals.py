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
