"""What every model shares."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tortoise import fields, timezone
from tortoise.models import Model

from models.tortoise_internals import loaded_state_source, tortoise_init_from_db, use_row_builder


@use_row_builder  # QuerySets build these models with `from_row`
class Entity(Model):
    """A row with a UUID primary key and its creation time."""

    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Any:
        """A model from a row (a mapping of column to value) by a function compiled per model.

        Tortoise's own path costs ~5 µs a row (a call per converted column, an attribute store
        through `object.__setattr__` per column, four through the model's `__setattr__`); a
        dashboard reads thousands of rows. A row that lacks a column (`.only()`) takes Tortoise's."""
        build = cls.__dict__.get("_row_builder")
        if build is None:
            build = compile_row_builder(cls)
        try:
            return build(row)
        except KeyError:
            return tortoise_init_from_db(cls, **row)


def compile_row_builder(cls: type[Model]) -> Callable[[Mapping[str, Any]], Any]:
    """`build(row)`: the attribute values Tortoise's row-to-model function gives, stored in one go, with the
    common conversions (UUID, aware datetime, enum) inlined and the others called as Tortoise does.

    Which columns need converting depends on the database the model is bound to: `kabinet.db`
    compiles every model's builder again whenever it initialises Tortoise."""
    meta = cls._meta
    use_tz = timezone.get_use_tz()
    namespace: dict[str, Any] = {
        "new": cls.__new__, "cls": cls, "UUID": uuid.UUID, "datetime": dt.datetime,
        "default_tz": timezone.get_default_timezone(),
    }
    values = []
    for column, attribute, _field in meta.db_native_fields:
        values.append(f"{attribute}=row[{column!r}]")
    for index, (column, attribute, field) in enumerate(meta.db_default_fields):
        namespace[f"type_{index}"] = field.field_type
        values.append(f"{attribute}=None if (d{index} := row[{column!r}]) is None else type_{index}(d{index})")
    for index, (column, attribute, field) in enumerate(meta.db_complex_fields):
        namespace[f"convert_{index}"] = field.to_python_value
        v = f"c{index}"
        if type(field).to_python_value is fields.UUIDField.to_python_value:
            expression = f"{v} if ({v} := row[{column!r}]) is None or isinstance({v}, UUID) else convert_{index}({v})"
        elif type(field).to_python_value is fields.DatetimeField.to_python_value and use_tz:
            # an aware datetime (PostgreSQL) needs only the zone; anything else takes Tortoise's path
            expression = (
                f"{v}.astimezone(default_tz) if type({v} := row[{column!r}]) is datetime and {v}.tzinfo is not None "
                f"else convert_{index}({v})"
            )
        elif isinstance(field, fields.data.CharEnumFieldInstance):
            namespace[f"members_{index}"] = field.enum_type._value2member_map_
            expression = f"members_{index}.get({v} := row[{column!r}]) or convert_{index}({v})"
        else:
            expression = f"convert_{index}(row[{column!r}])"
        values.append(f"{attribute}={expression}")
    pk_generated = meta.db_pk_column not in meta.generated_db_fields
    source = "\n".join([
        "def build(row):",
        "    obj = new(cls)",
        f"    obj.__dict__.update({loaded_state_source(pk_generated)},",
        *(f"        {value}," for value in values),
        "    )",
        "    return obj",
    ])
    exec(compile(source, f"<row builder of {cls.__name__}>", "exec"), namespace)  # noqa: S102 — our own columns
    cls._row_builder = namespace["build"]
    return cls._row_builder


def money(**kwargs):
    """A Decimal amount with 2 places (roubles and kopecks)."""
    return fields.DecimalField(max_digits=14, decimal_places=2, **kwargs)
