"""Inserting many rows at once without making a model instance of each.

`Model.bulk_create` builds every row as a model first (~40 µs a row in Tortoise's `__init__`) and
sends them by `executemany`; an import of 100,000 ledger entries spends most of its time there.
`insert_rows` takes plain mappings and encodes each value with the field's own encoder (as Tortoise
does, so the database at hand reads them back alike). On PostgreSQL the rows go as one array per
column (`INSERT … SELECT * FROM unnest($1::uuid[], …)`): a statement of a dozen parameters, prepared
once and cached by asyncpg, where a multi-row VALUES of thousands of parameters is parsed and
planned anew every time (asyncpg does not cache statements that long). SQLite gets multi-row VALUES.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tortoise import timezone
from tortoise.models import Model

MAX_PARAMETERS = 30_000  # below PostgreSQL's 32,767 and SQLite's 32,766 per statement


async def insert_rows(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (attribute → value, by the model's attribute names: `organization_id` for a
    foreign key) in the caller's transaction. The id (unless the database numbers it) and
    `created_at` are filled in when absent, as is a field's default; every row names the same attributes."""
    if not rows:
        return
    meta = model._meta
    names = list(rows[0])
    fill = {}
    if meta.pk_attr not in names and not meta.fields_map[meta.pk_attr].generated:
        fill[meta.pk_attr] = lambda: uuid.uuid4()
    now = timezone.now()  # as Tortoise fills auto_now_add
    if "created_at" in meta.fields_db_projection and "created_at" not in names:
        fill["created_at"] = lambda: now
    for name, column in meta.fields_db_projection.items():
        field = meta.fields_map[name]
        if name not in names and name not in fill and field.default is not None:
            default = field.default
            fill[name] = default if callable(default) else (lambda d=default: d)
    attributes = names + list(fill)
    fields = [meta.fields_map[name] for name in attributes]
    encoders = [field.to_db_value for field in fields]
    columns = ",".join(f'"{meta.fields_db_projection[name]}"' for name in attributes)
    client = meta.db
    postgres = client.capabilities.dialect == "postgres"
    makers = list(fill.values())
    if postgres:
        arrays: list[list[Any]] = [[] for _ in attributes]
        for row in rows:
            values = [row[name] for name in names] + [make() for make in makers]
            for array, encode, value in zip(arrays, encoders, values):
                array.append(encode(value, None))
        types = [field.get_for_dialect("postgres", "SQL_TYPE") for field in fields]
        unnest = ",".join(f"${i + 1}::{sql_type}[]" for i, sql_type in enumerate(types))
        await client.execute_query(f'INSERT INTO "{meta.db_table}" ({columns}) SELECT * FROM unnest({unnest})', arrays)
        return
    per_statement = max(1, min(1000, MAX_PARAMETERS // len(attributes)))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        params: list[Any] = []
        groups = []
        for row in chunk:
            values = [row[name] for name in names] + [make() for make in makers]
            params += [encode(value, None) for encode, value in zip(encoders, values)]
            groups.append("(" + ",".join("?" * len(values)) + ")")
        await client.execute_query(f'INSERT INTO "{meta.db_table}" ({columns}) VALUES {",".join(groups)}', params)
