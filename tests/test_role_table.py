"""The role table (resolvers/permissions.py) covers the served schema: every object type that carries a
row has a rule, every field rule and personal field names a real field, and the README's Security
section lists every ruled type. A new type without a rule fails here, not in production."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLObjectType

from resolvers.permissions import FIELD_RULES, PERSONAL_FIELDS, TYPE_RULES
from kabinet.settings import Settings
from schema.build import build_schema

README = Path(__file__).resolve().parent.parent / "README.md"


def _object_types() -> dict[str, GraphQLObjectType]:
    graphql_schema = build_schema(Settings(_env_file=None))._schema
    return {
        name: t for name, t in graphql_schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    }


def _carries_a_row(gtype: GraphQLObjectType) -> bool:
    definition = gtype.extensions.get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    return origin is not None and "model" in getattr(origin, "__annotations__", {})


def test_every_type_that_carries_a_row_has_a_rule():
    missing = [name for name, t in _object_types().items() if _carries_a_row(t) and name not in TYPE_RULES]
    assert missing == [], f"types without a rule in resolvers.permissions.TYPE_RULES: {missing}"


def test_every_node_type_has_a_rule():
    missing = [name for name, t in _object_types().items() if any(i.name == "Node" for i in t.interfaces) and name not in TYPE_RULES]
    assert missing == []


def test_field_rules_and_personal_fields_name_real_fields():
    types = _object_types()
    for type_name, field_name in [*FIELD_RULES, *PERSONAL_FIELDS]:
        assert type_name in types and field_name in types[type_name].fields, (type_name, field_name)


def test_the_readme_lists_every_ruled_type():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Security"):]
    missing = [name for name in TYPE_RULES if f"`{name}`" not in section]
    assert missing == [], f"README's Security section does not list {missing}"


def test_the_node_registry_is_read_off_the_schema():
    """`node(id:)` knows exactly the schema's Node types, each with its model and conversion: a new
    Node type needs no list of its own to be fetchable by id."""
    from tortoise.models import Model

    from schema.nodes import node_types

    graphql_schema = build_schema(Settings(_env_file=None))._schema
    registry = node_types(graphql_schema)
    implementers = {name for name, t in _object_types().items() if any(i.name == "Node" for i in t.interfaces)}
    assert set(registry) == implementers and len(implementers) >= 16
    for name, node_type in registry.items():
        assert issubclass(node_type.model, Model) and callable(node_type.convert), name
        assert name in TYPE_RULES, name
