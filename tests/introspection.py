"""The served schema as introspection shows it: what the isolation matrix and the mutation fuzzing walk,
so that a new type, field or mutation is covered without anyone listing it."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from graphql import get_introspection_query

LEAF_KINDS = ("SCALAR", "ENUM")


class ServedSchema:
    def __init__(self, introspection: dict[str, Any]) -> None:
        schema = introspection["__schema"]
        self.types: dict[str, dict[str, Any]] = {t["name"]: t for t in schema["types"]}
        self.query_type = schema["queryType"]["name"]
        self.mutation_type = (schema.get("mutationType") or {}).get("name")
        self.subscription_type = (schema.get("subscriptionType") or {}).get("name")

    @classmethod
    async def fetch(cls, gql: Any) -> ServedSchema:
        """Introspection as an anonymous caller may run it (the contract allows it without a token)."""
        body = await gql.execute(get_introspection_query())
        assert "errors" not in body, body
        return cls(body["data"])

    # ---------------------------------------------------------------- type references

    @staticmethod
    def named(ref: dict[str, Any]) -> str:
        while ref["kind"] in ("NON_NULL", "LIST"):
            ref = ref["ofType"]
        return ref["name"]

    @staticmethod
    def is_list(ref: dict[str, Any]) -> bool:
        while ref["kind"] == "NON_NULL":
            ref = ref["ofType"]
        return ref["kind"] == "LIST"

    @staticmethod
    def non_null(ref: dict[str, Any]) -> bool:
        return ref["kind"] == "NON_NULL"

    @staticmethod
    def required(arg: dict[str, Any]) -> bool:
        """An argument the caller must give (non-null, no default)."""
        return arg["type"]["kind"] == "NON_NULL" and arg["defaultValue"] is None

    # ---------------------------------------------------------------- types

    def kind(self, name: str) -> str:
        return self.types[name]["kind"]

    def fields(self, name: str) -> dict[str, dict[str, Any]]:
        return {f["name"]: f for f in self.types[name].get("fields") or []}

    def input_fields(self, name: str) -> dict[str, dict[str, Any]]:
        return {f["name"]: f for f in self.types[name].get("inputFields") or []}

    def concrete(self, name: str) -> list[str]:
        """The object types a field of this type may return (itself, or an interface's implementations)."""
        if self.kind(name) == "OBJECT":
            return [name]
        return sorted(t["name"] for t in self.types[name].get("possibleTypes") or [])

    def leaf_fields(self, name: str) -> list[str]:
        """Every scalar or enum field that can be selected without arguments."""
        return [
            f["name"] for f in self.fields(name).values()
            if self.kind(self.named(f["type"])) in LEAF_KINDS and not any(self.required(a) for a in f["args"])
        ]

    def is_connection(self, name: str) -> bool:
        """A Relay connection: `edges { node }` and `pageInfo` (a wrapper, not an object of its own)."""
        fields = self.fields(name)
        if self.kind(name) != "OBJECT" or "edges" not in fields or "pageInfo" not in fields:
            return False
        return "node" in self.fields(self.named(fields["edges"]["type"]))

    def edge_type(self, connection: str) -> str:
        return self.named(self.fields(connection)["edges"]["type"])

    def connection_node(self, connection: str) -> str:
        return self.named(self.fields(self.edge_type(connection))["node"]["type"])

    def is_wrapper(self, name: str) -> bool:
        """A connection, its edge or its page info: structure that carries no one's data."""
        return name in self.wrapper_types

    @cached_property
    def wrapper_types(self) -> frozenset[str]:
        wrappers = set()
        for name in self.types:
            if not name.startswith("__") and self.is_connection(name):
                wrappers |= {name, self.edge_type(name), self.named(self.fields(name)["pageInfo"]["type"])}
        return frozenset(wrappers)

    def target(self, field: dict[str, Any]) -> str:
        """The type a field leads to, a connection's node type for a connection."""
        name = self.named(field["type"])
        return self.connection_node(name) if self.is_connection(name) else name
