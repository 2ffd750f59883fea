"""Enums whose Python classes live with the models: described for the schema, value by value."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=type[Enum])


def described_enum(cls: E, description: str, values: dict[str, str], name: str | None = None) -> E:
    """`strawberry.enum(cls)` with a description for every value. The class stays a plain Enum
    (the models store its values), so the descriptions are given here, one per member, all of them.
    `name`: the GraphQL name, when the class's own says too little there (`Channel`)."""
    strawberry.enum(cls, description=description, name=name)
    definition = cls.__strawberry_definition__
    names = {value.name for value in definition.values}
    if names != set(values):
        raise ValueError(f"{cls.__name__}: describe exactly {sorted(names)}, not {sorted(values)}")
    for value in definition.values:
        value.description = values[value.name]
    return cls
