"""The statement being written: leaves as JSON values, objects, connections and links, in SQL
(PostgreSQL), with the role table's list rules checked on the way (schema/sql_json/__init__.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import Enum
from typing import Any

from graphql import GraphQLObjectType, get_named_type
from graphql.execution.values import get_argument_values
from tortoise.expressions import Q
from tortoise.models import Model

from foundation import clock
from models.organizations import Organization as OrganizationModel
from models.select import condition_sql
from resolvers.common.pagination import Ordering, PageRequest
from resolvers.common.permissions import FIELD_RULES, LIST_RULES, TYPE_RULES, Sight
from schema.batching import domain_arguments

MAX_KEYS = 50  # json_build_object takes at most 100 arguments


class CannotCompile(Exception):
    """This query (or this viewer) is not one the statement can answer: the executor does."""


# ------------------------------------------------------------------ leaves: a column's JSON value


def text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def global_id(type_name: str) -> Callable[[str], str]:
    """foundation.ids.to_global_id: base64url of "Type:uuid", unpadded (PostgreSQL breaks lines at 76)."""
    prefix = text(f"{type_name}:")
    return lambda column: (
        f"rtrim(translate(encode(convert_to({prefix} || {column}::text, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"
    )


def plain(column: str) -> str:
    return column


def date(column: str) -> str:
    return f"to_char({column}, 'YYYY-MM-DD')"


def datetime(column: str) -> str:
    """schema/scalars.py DateTime: UTC, microseconds only when there are any, "Z"."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN extract(microseconds FROM {column})::bigint "
        f"% 1000000 = 0 THEN '' ELSE to_char({utc}, '.US') END || 'Z')"
    )


def decimal(column: str) -> str:
    return f"{column}::text"


def enum_name(enum: type[Enum]) -> Callable[[str], str]:
    """A stored value as the GraphQL enum's name."""
    arms = " ".join(f"WHEN {text(str(member.value))} THEN {text(member.name)}" for member in enum)
    return lambda column: f"(CASE {column} {arms} END)"


# ------------------------------------------------------------------ the statement being written

FieldSql = Callable[["Compiler", str, Any, list], str]  # (compiler, row alias, field definition, field details)


class Compiler:
    def __init__(self, executor: Any, ctx: Any, organizations: list[uuid.UUID], fields: dict[str, dict[str, FieldSql]]) -> None:
        self.fields = fields  # by type: the fields it knows (schema/sql_json/fields.py)
        self.executor = executor
        self.ctx = ctx
        self.organizations = organizations
        self.params: list[Any] = []
        self.aliases = 0
        self.checked: set[str] = set()
        self._organizations_param: str | None = None
        self._now: str | None = None
        self._today: str | None = None

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    def in_sight(self) -> str:
        """The viewer's organizations, one parameter for the whole statement."""
        if self._organizations_param is None:
            self._organizations_param = self.param(self.organizations) + "::uuid[]"
        return self._organizations_param

    def now(self) -> str:
        if self._now is None:
            self._now = self.param(clock.utcnow()) + "::timestamptz"
        return self._now

    def today(self) -> str:
        if self._today is None:
            self._today = self.param(clock.today()) + "::date"
        return self._today

    # -------------------------------------------------------------- the role table, on whole lists

    def require_type(self, type_name: str) -> None:
        """The viewer sees every object of the type in each of their organizations, or no statement."""
        if type_name in self.checked:
            return
        rule = LIST_RULES.get(type_name)
        if rule is None:
            raise CannotCompile(f"no list rule for {type_name}")
        for organization_id in self.organizations:
            seen = rule.scope(self.ctx, organization_id)
            if seen.sight is not Sight.SEE or seen.narrowing is not None:
                raise CannotCompile(f"{type_name} narrowed or refused")
        self.checked.add(type_name)

    def require_field(self, type_name: str, field_name: str) -> None:
        rule = FIELD_RULES.get((type_name, field_name))
        if rule is None:
            return
        if rule.own or not all(rule.allows(self.ctx, org, None) for org in self.organizations):
            raise CannotCompile(f"{type_name}.{field_name} refused")

    # -------------------------------------------------------------- selections

    def arguments(self, field_def: Any, details: list, ids: dict[str, str] | None = None) -> dict[str, Any]:
        values = get_argument_values(field_def, details[0].node, self.executor.variable_values)
        return domain_arguments(values, tuple((ids or {}).items()))

    def subfields(self, otype: GraphQLObjectType, details: list) -> dict[str, list]:
        grouped, defer_usages, *_ = self.executor.collect_subfields(otype, details)
        if defer_usages:
            raise CannotCompile("@defer")
        return grouped

    def object(self, otype: GraphQLObjectType, details: list, alias: str) -> str:
        """json_build_object of the fields selected on `otype`, read from the row `alias`."""
        if otype.name in TYPE_RULES:
            self.require_type(otype.name)
        fields = self.fields.get(otype.name)
        if fields is None:
            raise CannotCompile(f"type {otype.name}")
        return self.build(otype, self.subfields(otype, details), lambda name, field_def, sub: self.field(
            fields, otype, name, field_def, sub, alias,
        ))

    def field(self, fields: dict[str, FieldSql], otype: GraphQLObjectType, name: str, field_def: Any, sub: list, alias: str) -> str:
        compile_field = fields.get(name)
        if compile_field is None:
            raise CannotCompile(f"{otype.name}.{name}")
        self.require_field(otype.name, name)
        return compile_field(self, alias, field_def, sub)

    def build(self, otype: GraphQLObjectType, grouped: dict[str, list], value: Callable[[str, Any, list], str]) -> str:
        if len(grouped) > MAX_KEYS:
            raise CannotCompile("too many fields")
        parts = []
        for key, sub in grouped.items():
            name = sub[0].node.name.value
            parts.append(text(key))
            parts.append(text(otype.name) if name == "__typename" else value(name, otype.fields[name], sub))
        return f"json_build_object({', '.join(parts)})"


def node_type(field_def: Any) -> GraphQLObjectType:
    named = get_named_type(field_def.type)
    if not isinstance(named, GraphQLObjectType):
        raise CannotCompile("an abstract type")
    return named


def columns(model: type[Model]) -> dict[str, str]:
    return model._meta.fields_db_projection


def leaf(model: type[Model], attribute: str, encode: Callable[[str], str] = plain) -> FieldSql:
    # the column is looked up when a statement is written: Tortoise knows the columns once initialised
    return lambda c, alias, field_def, sub: encode(f'{alias}."{columns(model)[attribute]}"')


def order(model: type[Model], ordering: Ordering, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    names = columns(model)
    return ", ".join(f'{prefix}"{names[name]}" {"DESC" if desc else "ASC"}' for name, desc in ordering.fields())


def organization_column(model: type[Model]) -> str:
    return "id" if model is OrganizationModel else "organization_id"


def rows_of(c: Compiler, model: type[Model], parent: str | None, filters: Q | None) -> str:
    """FROM … WHERE of `model` rows under a parent (`parent`: the SQL its key column equals), in the
    viewer's organizations, filtered."""
    conditions = [f'"{organization_column(model)}" = ANY({c.in_sight()})']
    if parent is not None:
        conditions.append(parent)
    if filters is not None:
        conditions.append(condition_sql(model, filters, c.params))
    return f'FROM "{model._meta.db_table}" WHERE {" AND ".join(conditions)}'


def connection(
    model: type[Model], ordering: Ordering, parent_key: str | None, filters: Callable[[dict[str, Any]], Q | None] = lambda args: None,
    ids: dict[str, str] | None = None,
) -> FieldSql:
    """A connection field: `parent_key` is `model`'s column holding the parent row's id (None: a
    root list). Totals, pages and `hasNextPage` as resolvers.common.pagination.load_pages gives them;
    a cursor (`after`, `cursor`, `startCursor`, `endCursor`) is left to the executor."""

    def compile_connection(c: Compiler, alias: str, field_def: Any, details: list) -> str:
        args = c.arguments(field_def, details, ids)
        if args.get("after") is not None:
            raise CannotCompile("after")
        first = PageRequest.from_args(args, c.ctx.settings.max_page_size).first
        parent = f'"{columns(model)[parent_key]}" = {alias}."id"' if parent_key else None
        rows = rows_of(c, model, parent, filters(args))
        connection_type = node_type(field_def)

        def part(name: str, part_def: Any, sub: list) -> str:
            if name == "totalCount":
                return f"(SELECT count(*) {rows})"
            if name == "edges":
                return edges(part_def, sub)
            if name == "pageInfo":
                return page_info(part_def, sub)
            raise CannotCompile(f"connection field {name}")

        def edges(edges_def: Any, sub: list) -> str:
            if first == 0:
                return "'[]'::json"
            row = c.alias()
            edge_type = node_type(edges_def)

            def edge_part(name: str, node_def: Any, node_sub: list) -> str:
                if name != "node":
                    raise CannotCompile(f"edge field {name}")
                return c.object(node_type(node_def), node_sub, row)

            edge = c.build(edge_type, c.subfields(edge_type, sub), edge_part)
            return (
                f"COALESCE((SELECT json_agg({edge} ORDER BY {order(model, ordering, row)}) FROM "
                f"(SELECT * {rows} ORDER BY {order(model, ordering)} LIMIT {first}) {row}), '[]'::json)"
            )

        def page_info(info_def: Any, sub: list) -> str:
            info_type = node_type(info_def)

            def info_part(name: str, _def: Any, _sub: list) -> str:
                if name == "hasNextPage":
                    return f"EXISTS (SELECT 1 {rows} ORDER BY {order(model, ordering)} OFFSET {first})" if first else "false"
                if name == "hasPreviousPage":
                    return "false"
                raise CannotCompile(f"pageInfo.{name}")

            return c.build(info_type, c.subfields(info_type, sub), info_part)

        return c.build(connection_type, c.subfields(connection_type, details), part)

    return compile_connection


def to_one(model: type[Model], foreign_key: str, parent_model: type[Model]) -> FieldSql:
    """A link to one row by the parent's foreign key: null when there is none or the viewer does not see it."""

    def compile_link(c: Compiler, alias: str, field_def: Any, details: list) -> str:
        column = columns(parent_model)[foreign_key]
        row = c.alias()
        node = c.object(node_type(field_def), details, row)
        return f'(SELECT {node} FROM "{model._meta.db_table}" {row} WHERE {row}."id" = {alias}."{column}" AND {row}."{organization_column(model)}" = ANY({c.in_sight()}))'

    return compile_link
