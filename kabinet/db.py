"""Tortoise configuration and the database's life cycle (connect, migrate, close)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.asyncpg import AsyncpgDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate

from models import MODEL_MODULES
from models.base import Entity, compile_row_builder
from models.tortoise_internals import (
    clone_migration_state_only_when_read, count_statements, ensure_pool, init_tortoise, pool_of, tortoise_initialised,
)

from foundation.logs import statement_ran
from foundation.settings import Settings


CONNECTION_LABEL = "default"
count_statements(statement_ran)  # every client counts its statements for the request's log line
clone_migration_state_only_when_read()  # a fresh database migrates in ~1/3 of the CPU


class PooledConnection(asyncpg.Connection):
    """A pool connection handed back without asyncpg's reset statement.

    asyncpg's pool sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on
    every release: one more round trip for each statement Tortoise runs outside a transaction,
    i.e. for every read. Nothing here leaves session state behind (advisory locks and settings are
    transaction-scoped, LISTEN has its own connection, no cursor outlives its transaction), and an
    open transaction is still rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


class _Pin:
    """The pool connection one request's statements share, taken at its first statement; a
    statement waits for the one before it (a request's statements never hold it while waiting
    for each other, so this cannot deadlock, and a request never needs a second connection)."""

    __slots__ = ("client", "connection", "lock")

    def __init__(self, client: KabinetAsyncpgClient) -> None:
        self.client = client
        self.connection: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()


_pin: ContextVar[_Pin | None] = ContextVar("kabinet_pinned_connection", default=None)


class _PinnedConnection:
    """What `acquire_connection()` gives inside `one_connection()`."""

    __slots__ = ("pin",)

    def __init__(self, pin: _Pin) -> None:
        self.pin = pin

    async def __aenter__(self) -> asyncpg.Connection:
        pin = self.pin
        await pin.lock.acquire()
        try:
            if pin.connection is None:
                pin.connection = await (await ensure_pool(pin.client)).acquire()
        except BaseException:
            pin.lock.release()
            raise
        return pin.connection

    async def __aexit__(self, *exc_info: Any) -> None:
        self.pin.lock.release()


class KabinetAsyncpgClient(AsyncpgDBClient):
    """Tortoise's asyncpg client, whose statements inside `one_connection()` share one connection.

    Outside a transaction Tortoise takes a pool connection for every statement and hands it back
    after; asyncpg's release goes through `asyncio.shield` (a task each time). Sharing one took W2
    from ~3.7 to ~3.15 ms of CPU a request (in-process). Transactions take their own connection.
    """

    def acquire_connection(self) -> Any:
        pin = _pin.get()
        if pin is None or pin.client is not self:
            return super().acquire_connection()
        return _PinnedConnection(pin)


client_class = KabinetAsyncpgClient  # this module is the Tortoise engine of PostgreSQL URLs


@asynccontextmanager
async def one_connection() -> AsyncIterator[None]:
    """The block's statements outside transactions share one pool connection, taken at the first
    and given back at the end (a no-op on SQLite, whose client has a single connection anyway).

    Only for blocks that open no transaction: one would wait for a second pool connection while
    holding the first, and enough such requests at once would hold the whole pool."""
    client = connections.get(CONNECTION_LABEL) if tortoise_initialised() else None
    if not isinstance(client, KabinetAsyncpgClient) or _pin.get() is not None:
        yield
        return
    pin = _Pin(client)
    token = _pin.set(pin)
    try:
        yield
    finally:
        _pin.reset(token)
        if pin.connection is not None:
            await pool_of(client).release(pin.connection)


def _connection(database_url: str) -> str | dict[str, Any]:
    if not database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        return database_url
    connection = expand_db_url(database_url)
    connection["engine"] = __name__
    connection["credentials"]["connection_class"] = PooledConnection
    return connection


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The one Tortoise config."""
    return {
        "connections": {CONNECTION_LABEL: _connection(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": CONNECTION_LABEL,
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def apply_migrations(database_url: str) -> None:
    """Bring the database schema up to the latest migration (idempotent). Its connections are
    closed after (an open SQLite connection's thread would keep `kabinet migrate` from exiting)."""
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def connect(settings: Settings) -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await init_tortoise(tortoise_config(settings.resolved_database_url))  # seen by every task
    for app in Tortoise.apps.values():
        for model in app.values():
            if issubclass(model, Entity):
                compile_row_builder(model)


async def prepare(settings: Settings) -> None:
    """Connect; on the embedded default also migrate and seed the demo data set on first start."""
    if settings.should_migrate_on_start:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        await apply_migrations(settings.resolved_database_url)
        await Tortoise.close_connections()
    await connect(settings)
    if settings.should_seed_demo:
        from kabinet.demo import seed_demo

        await seed_demo()


async def disconnect() -> None:
    await Tortoise.close_connections()


# For `kabinet makemigrations`: Tortoise's CLI needs a config importable by name; the database
# is only read for the migration history, so a throwaway SQLite file in memory serves.
CLI_CONFIG = tortoise_config("sqlite://:memory:")


async def pending_migration_operations() -> list:
    """Operations `makemigrations` would write: empty when models and migrations agree."""
    from tortoise.cli.cli import tortoise_cli_context
    from tortoise.migrations.autodetector import MigrationAutodetector

    async with tortoise_cli_context(CLI_CONFIG) as ctx:
        writers = await MigrationAutodetector(ctx.apps, CLI_CONFIG["apps"]).changes()
    return [operation for writer in writers for operation in writer.operations]


# The counters collecting in this context: a task started inside `count_sql` (a request's gathered
# loads) inherits it; the process's background loops (the event hub's and the ended sign-ins' polls),
# started before, do not.
_COUNTING: ContextVar[tuple[_StatementLog, ...]] = ContextVar("kabinet_counting_sql", default=())


class _StatementLog(logging.Handler):
    def __init__(self, every_task: bool) -> None:
        super().__init__(logging.DEBUG)
        self.every_task = every_task
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not self.every_task and self not in _COUNTING.get():
            return
        message = record.getMessage()
        if not message.startswith(("Created connection pool", "Closed connection pool")):
            self.statements.append(message)


@contextmanager
def count_sql(*, every_task: bool = False) -> Iterator[_StatementLog]:
    """Collect the SQL statements Tortoise sends meanwhile (`.statements`): for the tests and the
    benchmark that hold the number of statements per request constant. Only this context's (and the
    tasks it starts), unless `every_task`: a poll of a background loop that falls into the window is
    not the request's cost."""
    logger = logging.getLogger("tortoise.db_client")
    counter, previous = _StatementLog(every_task), logger.level
    token = _COUNTING.set((*_COUNTING.get(), counter))
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
        _COUNTING.reset(token)
