"""SELECTs of whole models for the read path, written straight to SQL instead of through QuerySet.

A dashboard query runs a dozen statements, one per batched field. Building each one through
Tortoise (QuerySet cloning, filter resolution, pypika rendering) costs ~150 µs of CPU, more than
asyncpg's round trip for it. The read path needs few shapes: a WHERE made of simple lookups
(`=`, `IN`, `<`, `<=`, `>`, `>=`, `isnull`, combined with AND/OR/NOT), ORDER BY, LIMIT, the first
rows of each parent (a ROW_NUMBER window) and counts per parent. Values are encoded exactly as
Tortoise encodes filter values (the field's own encoder for the database at hand), and rows become
models through the same builder a QuerySet uses. A condition with a lookup this does not know
(`startswith`, a join…) is rendered by a QuerySet instead, with the same result.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from tortoise.expressions import Q
from tortoise.filters import is_in, is_null
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from models.tortoise_internals import is_negated, queryset_sql

M = TypeVar("M", bound=Model)

_COMPARISONS = {operator.eq: "=", operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">="}


class _ReadOnly:
    """What a block that only reads keeps: the rows it read (per model: lists not yet indexed, and
    rows by primary key, indexed only once a lookup by id asks for that model, so a list nobody
    looks into costs nothing) and each connection name's client (Tortoise looks it up anew for
    every statement, ~8 µs; without a transaction in the block it cannot change)."""

    __slots__ = ("rows", "clients")

    def __init__(self) -> None:
        self.rows: dict[type, tuple[list[list[Any]], dict[Any, Any]]] = {}
        self.clients: dict[str, Any] = {}


_read_only: ContextVar[_ReadOnly | None] = ContextVar("kabinet_read_only", default=None)


@contextmanager
def read_only() -> Iterator[None]:
    """A block that only reads and opens no transaction (a query). Inside, rows read by this module
    are remembered by model and key, and `select_by_ids` reads only those it has not seen: within
    one query a dashboard's sessions name the databases its database list has just read."""
    token = _read_only.set(_ReadOnly())
    try:
        yield
    finally:
        _read_only.reset(token)


def _remember(models: list[Any]) -> list[Any]:
    scope = _read_only.get()
    if scope is not None and models:
        scope.rows.setdefault(type(models[0]), ([], {}))[0].append(models)
    return models


def _client_of(meta: Any) -> Any:
    scope = _read_only.get()
    if scope is None:
        return meta.db
    client = scope.clients.get(meta.default_connection)
    if client is None:
        client = scope.clients[meta.default_connection] = meta.db
    return client


async def select_by_ids(model: type[M], ids: Iterable[Any]) -> dict[Any, M]:
    """{primary key: row} of `model` for `ids` (None skipped), in one statement or none at all."""
    wanted = {i for i in ids if i is not None}
    found: dict[Any, M] = {}
    scope = _read_only.get()
    entry = scope.rows.get(model) if scope is not None else None
    if entry is not None:
        pending, index = entry
        for rows in pending:
            index.update((row.pk, row) for row in rows)
        pending.clear()
        for pk in [pk for pk in wanted if pk in index]:
            found[pk] = index[pk]
            wanted.discard(pk)
    if wanted:
        found.update((row.pk, row) for row in await select(model, Q(id__in=list(wanted))))
    return found


class Unsupported(Exception):
    """A condition this module does not compile: a QuerySet renders it."""


class _Statement:
    """One statement being written: the model's table and columns, and the parameters so far."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.meta = model._meta
        self.client = _client_of(self.meta)  # the transaction's connection inside one, as a QuerySet's
        self.dialect = self.client.capabilities.dialect
        self.params: list[Any] = []

    @staticmethod
    def quote(name: str) -> str:
        return f'"{name}"'  # SQLite and PostgreSQL

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.dialect == "postgres" else "?"

    def column(self, field_name: str) -> str:
        return self.quote(self.meta.fields_db_projection[field_name])

    def columns(self) -> str:
        return ",".join(self.quote(column) for column in self.meta.fields_db_projection.values())

    def table(self) -> str:
        return self.quote(self.meta.db_table)

    def where(self, condition: Q | None) -> str:
        return "" if condition is None else f" WHERE {self.condition(condition)}"

    def condition(self, q: Q) -> str:
        parts = [self.lookup(key, value) for key, value in q.filters.items()]
        parts += [self.condition(child) for child in q.children]
        if not parts:
            raise Unsupported("an empty Q")
        sql = f"({f' {q.join_type} '.join(parts)})"
        return f"NOT {sql}" if is_negated(q) else sql

    def lookup(self, key: str, value: Any) -> str:
        filters = self.meta.filters
        if value is None and f"{key}__isnull" in filters:
            key, value = f"{key}__isnull", True
        info = filters.get(key)
        if info is None or "table" in info or "source_field" not in info:
            raise Unsupported(key)
        field = self.meta.fields_map[info["field"]]
        if field.get_for_dialect(self.dialect, "function_cast") is not None:
            raise Unsupported(key)
        column = self.quote(info["source_field"])
        op = info["operator"]
        encoded = (
            info["value_encoder"](value, self.model, field) if "value_encoder" in info else field.to_db_value(value, self.model)
        )
        if op is is_null:
            return f"{column} IS NULL" if encoded else f"{column} IS NOT NULL"
        if op is is_in:
            if not encoded:
                return "1=0"
            return f"{column} IN ({','.join(self.param(v) for v in encoded)})"
        symbol = _COMPARISONS.get(op)
        if symbol is None:
            raise Unsupported(key)
        return f"{column}{symbol}{self.param(encoded)}"

    def order(self, order_by: Sequence[tuple[str, bool]]) -> str:
        return ",".join(f"{self.column(name)} {'DESC' if desc else 'ASC'}" for name, desc in order_by)

    async def rows(self, sql: str) -> list[Any]:
        _, rows = await self.client.execute_query(sql, self.params)
        return rows


async def select(
    model: type[M], where: Q | None, order_by: Sequence[tuple[str, bool]] = (), limit: int | None = None
) -> list[M]:
    """`model` rows matching `where`, in order, at most `limit`."""
    rows, _ = await _select(model, where, order_by, limit, counted=False)
    return rows


async def select_counted(
    model: type[M], where: Q | None, order_by: Sequence[tuple[str, bool]], limit: int
) -> tuple[list[M], int]:
    """(`select`, how many rows match `where` in all), in one statement: a page and its total."""
    rows, total = await _select(model, where, order_by, limit, counted=True)
    return rows, total if total is not None else await count(model, where)


async def _select(
    model: type[M], where: Q | None, order_by: Sequence[tuple[str, bool]], limit: int | None, counted: bool
) -> tuple[list[M], int | None]:
    try:
        s = _Statement(model)
        total = f",(SELECT COUNT(*) FROM {s.table()}{s.where(where)}) AS _total" if counted else ""
        sql = f"SELECT {s.columns()}{total} FROM {s.table()}{s.where(where)}"
        if order_by:
            sql += f" ORDER BY {s.order(order_by)}"
    except Unsupported:
        queryset = _queryset(model, where).order_by(*_order_names(order_by))
        return _remember(await (queryset if limit is None else queryset.limit(limit))), None
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = await s.rows(sql)
    # no row: nothing matches `where` at all (the total has no row to ride on)
    return _remember([model.from_row(row) for row in rows]), (rows[0]["_total"] if rows else 0) if counted else None


async def select_first_per_parent(
    model: type[M], parent_field: str, where: Q | None, order_by: Sequence[tuple[str, bool]], limit: int
) -> list[M]:
    """The first `limit` rows of each parent, in order, by a ROW_NUMBER() window in one statement."""
    rows, _ = await _select_first_per_parent(model, parent_field, where, order_by, limit, counted=False)
    return rows


async def select_first_per_parent_counted(
    model: type[M], parent_field: str, where: Q | None, order_by: Sequence[tuple[str, bool]], limit: int
) -> tuple[list[M], dict[Any, int]]:
    """(`select_first_per_parent`, {parent id: rows matching `where`} for the parents that have any),
    in one statement: the window that numbers each parent's rows counts them as well."""
    return await _select_first_per_parent(model, parent_field, where, order_by, limit, counted=True)


async def _select_first_per_parent(
    model: type[M], parent_field: str, where: Q | None, order_by: Sequence[tuple[str, bool]], limit: int, counted: bool
) -> tuple[list[M], dict[Any, int]]:
    s = _Statement(model)
    partition = s.column(parent_field)
    try:
        inner = f"SELECT {s.columns()}%s FROM {s.table()}{s.where(where)}"
    except Unsupported:  # the QuerySet's own SQL, windowed
        queryset = _queryset(model, where)
        inner, s.params = queryset_sql(queryset)
        inner = inner.replace(" FROM ", "%s FROM ", 1)
    window = f",ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {s.order(order_by)}) AS _rn"
    if counted:
        window += f",COUNT(*) OVER (PARTITION BY {partition}) AS _total"
    sql = f"SELECT * FROM ({inner % window}) AS _w WHERE _rn<={int(limit)} ORDER BY {partition},_rn"
    models, totals = [], {}
    for row in await s.rows(sql):
        item = model.from_row(row)
        models.append(item)
        if counted:
            totals[getattr(item, parent_field)] = row["_total"]
    return _remember(models), totals


async def count(model: type[Model], where: Q | None) -> int:
    try:
        s = _Statement(model)
        sql = f"SELECT COUNT(*) AS n FROM {s.table()}{s.where(where)}"
    except Unsupported:
        return await _queryset(model, where).count()
    return (await s.rows(sql))[0]["n"]


async def count_per_parent(model: type[Model], parent_field: str, where: Q | None) -> dict[Any, int]:
    """{parent id: number of rows}, for the parents that have any."""
    try:
        s = _Statement(model)
        column = s.column(parent_field)
        sql = f"SELECT {column} AS parent,COUNT(*) AS n FROM {s.table()}{s.where(where)} GROUP BY {column}"
    except Unsupported:
        rows = await _queryset(model, where).group_by(parent_field).annotate(n=Count("id")).values(parent_field, "n")
        return {row[parent_field]: row["n"] for row in rows}
    to_python = model._meta.fields_map[parent_field].to_python_value
    return {to_python(row["parent"]): row["n"] for row in await s.rows(sql)}


def _queryset(model: type[M], where: Q | None) -> QuerySet[M]:
    return model.all() if where is None else model.filter(where)


def _order_names(order_by: Sequence[tuple[str, bool]]) -> list[str]:
    return [("-" if desc else "") + name for name, desc in order_by]


# ------------------------------------------------------------ whole answers built by PostgreSQL (schema/sql_json.py)


def is_postgres(model: type[Model]) -> bool:
    """Does `model`'s connection (the block's own, inside `read_only`) speak PostgreSQL?"""
    return _client_of(model._meta).capabilities.dialect == "postgres"


def condition_sql(model: type[Model], condition: Q, params: list[Any]) -> str:
    """`condition` over `model`'s own columns (unqualified, so that it reads the innermost table of
    that name in a nested statement) as SQL, its values appended to `params` ($n): the same
    rendering `select` uses. Raises `Unsupported` for a condition it does not compile."""
    s = _Statement(model)
    s.params = params
    return s.condition(condition)


async def select_row(model: type[Model], sql: str, params: list[Any]) -> Any:
    """The one row of a statement written elsewhere, on `model`'s connection (the block's own)."""
    _, rows = await _client_of(model._meta).execute_query(sql, params)
    return rows[0]
