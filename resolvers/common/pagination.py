"""Relay cursor pagination for many parents at once: one query per connection level.

A connection is ordered by a fixed key ending in the primary key, so the order is stable and the
cursor is the key of the last row seen (keyset pagination: page N costs what page 1 costs). For
one parent the query is a plain `ORDER BY … LIMIT`; for many, a `ROW_NUMBER()` window keeps
`first + 1` rows per parent in the same single statement. `totalCount` rides along: a scalar
subquery for one parent, a `COUNT(*)` over the same window for many.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.models import Model

from resolvers.common.errors import bad_user_input
from models.select import (
    count, count_per_parent, select, select_counted, select_first_per_parent, select_first_per_parent_counted,
)

M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[M]):
    ordering: Ordering
    items: list[M] = field(default_factory=list)
    has_next_page: bool = False
    has_previous_page: bool = False
    total_count: int | None = None

    def cursor(self, index: int) -> str:
        """The cursor of `items[index]`, encoded when a client asks for it (most queries never do)."""
        return encode_cursor(self.ordering.key_of(self.items[index]))


@dataclass(frozen=True)
class PageRequest:
    """`first`/`after` as a client sent them, checked against the page size limit."""

    first: int
    after: tuple[Any, ...] | None

    @classmethod
    def from_args(cls, args: dict[str, Any], max_page_size: int) -> PageRequest:
        first = args.get("first")
        if first is None:
            first = max_page_size
        if first < 0:
            raise bad_user_input("`first` must not be negative.")
        if first > max_page_size:
            raise bad_user_input(f"`first` may be at most {max_page_size}.")
        after = args.get("after")
        return cls(first=first, after=decode_cursor(after) if after is not None else None)


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_plain(v) for v in values])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or not values:
            raise ValueError
        # the values are compared with columns in SQL: plain ones, no text PostgreSQL refuses (NUL)
        if any(isinstance(v, (list, dict)) or (isinstance(v, str) and "\x00" in v) for v in values):
            raise ValueError
        return tuple(values)
    except (ValueError, TypeError):
        raise bad_user_input("`after` is not a cursor this API gave out.") from None


def _plain(value: Any) -> Any:
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


@dataclass(frozen=True)
class Ordering:
    """Sort keys of a connection, e.g. `Ordering(("-seq",))`; the primary key is appended."""

    keys: tuple[str, ...]

    def fields(self) -> list[tuple[str, bool]]:
        parsed = [(k.lstrip("-"), k.startswith("-")) for k in self.keys]
        if parsed[-1][0] != "id":
            parsed.append(("id", parsed[-1][1]))
        return parsed

    def key_of(self, row: Model) -> list[Any]:
        return [getattr(row, name) for name, _ in self.fields()]

    def after_filter(self, model: type[Model], cursor: tuple[Any, ...]) -> Q:
        """Rows strictly after the cursor in this order."""
        fields = self.fields()
        if len(cursor) != len(fields):
            raise bad_user_input("`after` is not a cursor of this list.")
        try:
            values = [model._meta.fields_map[name].to_python_value(v) for (name, _), v in zip(fields, cursor)]
        except (ValueError, TypeError, ArithmeticError):
            raise bad_user_input("`after` is not a cursor of this list.") from None
        alternatives = []
        for i, (name, desc) in enumerate(fields):
            equal = {f"{fields[j][0]}": values[j] for j in range(i)}
            equal[f"{name}__{'lt' if desc else 'gt'}"] = values[i]
            alternatives.append(Q(**equal))
        # The same condition with a plain range on the first key in front: the index on it can then
        # start the scan at the cursor, and page N costs what page 1 costs (the OR alone cannot).
        first_name, first_desc = fields[0]
        bound = Q(**{f"{first_name}__{'lte' if first_desc else 'gte'}": values[0]})
        return bound & Q(*alternatives, join_type="OR")


async def load_pages(
    model: type[M],
    parent_field: str | None,
    parent_ids: Sequence[Any],
    ordering: Ordering,
    request: PageRequest,
    *,
    filters: Q | None = None,
    with_total: bool = False,
) -> dict[Any, Page[M]]:
    """A page of `model` rows for every parent id, and the lists' totals if asked: one statement (two
    for the totals of a page after a cursor).

    `parent_field=None` pages the whole filtered table as one list, keyed by None.
    """
    if parent_field is None:
        parent_ids = [None]
    pages: dict[Any, Page[M]] = {
        pid: Page(ordering=ordering, has_previous_page=request.after is not None) for pid in parent_ids
    }
    if not parent_ids:
        return pages
    where = filters if parent_field is None else _and(Q(**{f"{parent_field}__in": list(parent_ids)}), filters)
    totals: dict[Any, int] | None = None
    if with_total and (request.first == 0 or request.after is not None):
        # the total is the whole list's, the rows come after the cursor: a statement each
        totals = {None: await count(model, where)} if parent_field is None else await count_per_parent(model, parent_field, where)
    rows: list[M] = []
    if request.first > 0:
        if request.after is not None:
            where = _and(where, ordering.after_filter(model, request.after))
        order_by, limit = ordering.fields(), request.first + 1
        counted = with_total and totals is None  # the statement that reads the page counts the list too
        if len(parent_ids) == 1 and counted:
            rows, total = await select_counted(model, where, order_by, limit)
            totals = {parent_ids[0]: total}
        elif len(parent_ids) == 1:
            rows = await select(model, where, order_by, limit)
        elif counted:
            rows, totals = await select_first_per_parent_counted(model, parent_field, where, order_by, limit)
        else:
            rows = await select_first_per_parent(model, parent_field, where, order_by, limit)
    if totals is not None:
        for pid, page in pages.items():
            page.total_count = totals.get(pid, 0)
    for row in rows:
        page = pages[getattr(row, parent_field) if parent_field else None]
        if len(page.items) == request.first:
            page.has_next_page = True
            continue
        page.items.append(row)
    return pages


def _and(left: Q | None, right: Q | None) -> Q | None:
    return left if right is None else right if left is None else left & right
