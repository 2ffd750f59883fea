"""The node registry: every type that implements `Node`, the model its rows come from and how a row
becomes it, read off the schema types themselves (their `model: Private[Model]` field and their
`from_model`/`from_view`). `node(id:)` and its tests use this one list; nothing else names the
node types again (global ids are `TypeName:pk`, the role table is checked against the schema)."""

from __future__ import annotations

import typing
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLObjectType, GraphQLSchema

from schema.relay import Node
from schema.strawberry_internals import STRAWBERRY_FIELD as STRAWBERRY_DEFINITION  # types keep theirs under the same key


@dataclass(frozen=True)
class NodeType:
    name: str  # the GraphQL type name, as global ids carry it
    model: type  # the Tortoise model of its rows
    convert: Callable[[Any], Node]  # a row (or the resolver's view of it) to the schema object


def node_types(schema: GraphQLSchema) -> dict[str, NodeType]:
    """By type name, every type of the served schema that implements Node."""
    found = _registries.get(schema)
    if found is None:
        found = _registries[schema] = {
            name: _node_type(name, gtype.extensions[STRAWBERRY_DEFINITION].origin)
            for name, gtype in schema.type_map.items()
            if isinstance(gtype, GraphQLObjectType) and any(i.name == "Node" for i in gtype.interfaces)
        }
    return found


_registries: weakref.WeakKeyDictionary[GraphQLSchema, dict[str, NodeType]] = weakref.WeakKeyDictionary()


def _node_type(name: str, cls: type[Node]) -> NodeType:
    model = typing.get_args(typing.get_type_hints(cls, include_extras=True)["model"])[0]
    return NodeType(name, model, getattr(cls, "from_model", None) or cls.from_view)
