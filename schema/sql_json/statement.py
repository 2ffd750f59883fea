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
    """foundation.ids.to_global_id: base64url of "Type:uuid", unpadded. One translate maps +/ and
    drops the padding and the line breaks PostgreSQL puts every 76 characters; the text is cast to
    bytea as it is (a type name and a uuid hold no backslash)."""
    prefix = text(f"{type_name}:")
    return lambda column: f"translate(encode(({prefix} || {column}::text)::bytea, 'base64'), E'+/\\n=', '-_')"


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
        self.joins: dict[str, list[tuple[str, str]]] = {}  # by row alias: the rows joined to it (`join`)
        self.sources: dict[str, str] = {}  # by row alias: the subquery its rows come from (for its children)
        self.single_rows: set[str] = set()  # row aliases of one row at most (`organization(id:)`)
        self.scopes: dict[str, dict[uuid.UUID, Any]] = {}  # by type: each organization's Scope of it
        self.conditions: dict[str, str] = {}  # by type: its list rule as SQL (`in_sight`)
        self._now: str | None = None
        self.now_index: int | None = None
        self._today: str | None = None

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    def join(self, alias: str, join_sql: str, joined: str) -> None:
        """A row linked to the row `alias` (a to-one link), joined into the FROM that reads `alias`:
        one join per link instead of a subquery run for every row."""
        self.joins.setdefault(alias, []).append((join_sql, joined))

    def joined(self, alias: str) -> str:
        """The joins of the rows linked to `alias`, and of the rows linked to those."""
        return "".join(f" {sql}{self.joined(joined)}" for sql, joined in self.joins.get(alias, ()))

    def now(self) -> str:
        """The request's moment, one parameter (`now_index`: set anew when a kept statement is reused)."""
        if self._now is None:
            self._now = self.param(clock.utcnow()) + "::timestamptz"
            self.now_index = len(self.params) - 1
        return self._now

    def today(self) -> str:
        if self._today is None:
            self._today = self.param(clock.today()) + "::date"
        return self._today

    # -------------------------------------------------------------- the role table, on whole lists

    def require_type(self, type_name: str) -> None:
        """The viewer may be shown objects of the type wherever they belong: no organization of theirs
        refuses it (a FORBIDDEN link is an error the statement cannot write), or no statement."""
        if type_name in self.scopes:
            return
        rule = LIST_RULES.get(type_name)
        if rule is None:
            raise CannotCompile(f"no list rule for {type_name}")
        scopes = {organization_id: rule.scope(self.ctx, organization_id) for organization_id in self.organizations}
        if any(seen.sight is not Sight.SEE for seen in scopes.values()):
            raise CannotCompile(f"{type_name} refused")
        self.scopes[type_name] = scopes

    def in_sight(self, type_name: str, model: type[Model]) -> str:
        """The role table's list rule of a type as a condition on `model`'s rows (unqualified columns:
        the innermost table): every row of the organizations where the viewer sees all of them, the
        rows the narrowing admits (a USER's own sessions, granted databases) where it narrows."""
        kept = self.conditions.get(type_name)
        if kept is not None:
            return kept
        self.require_type(type_name)
        column = f'"{organization_column(model)}"'
        everything = [org for org, seen in self.scopes[type_name].items() if seen.narrowing is None]
        parts = [f"{column} = ANY({self.param(everything)}::uuid[])"] if everything else []
        for org, seen in self.scopes[type_name].items():
            if seen.narrowing is not None:
                parts.append(f"({column} = {self.param(org)}::uuid AND {condition_sql(model, seen.narrowing, self.params)})")
        condition = self.conditions[type_name] = f"({' OR '.join(parts) or 'false'})"
        return condition

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


def rows_of(c: Compiler, type_name: str, model: type[Model], filters: Q | None, parents: str | None = None) -> str:
    """FROM … WHERE of `model` rows the viewer sees (`in_sight`), filtered, under the parents
    `parents` (a condition) says."""
    conditions = [c.in_sight(type_name, model)]
    if parents is not None:
        conditions.append(parents)
    if filters is not None:
        conditions.append(condition_sql(model, filters, c.params))
    return f'FROM "{model._meta.db_table}" WHERE {" AND ".join(conditions)}'


def connection(
    model: type[Model], ordering: Ordering, parent_key: str | None, filters: Callable[[dict[str, Any]], Q | None] = lambda args: None,
    ids: dict[str, str] | None = None,
) -> FieldSql:
    """A connection field: `parent_key` is `model`'s column holding the parent row's id (None: a
    root list). Totals, pages and `hasNextPage` as resolvers.common.pagination.load_pages gives them;
    a cursor (`after`, `cursor`, `startCursor`, `endCursor`) is left to the executor. Under a list of
    parents the pages of all of them are read at once (a ROW_NUMBER window, as load_pages does) and
    joined to the parents; a subquery per parent would run the statement's executor once per row."""

    def compile_connection(c: Compiler, alias: str, field_def: Any, details: list) -> str:
        args = c.arguments(field_def, details, ids)
        if args.get("after") is not None:
            raise CannotCompile("after")
        first = PageRequest.from_args(args, c.ctx.settings.max_page_size).first
        connection_type = node_type(field_def)
        edge_type = node_type(connection_type.fields["edges"])
        item_type = node_type(edge_type.fields["node"])
        grouped = c.subfields(connection_type, details)
        kept = filters(args)

        def edge_of(row: str, sub: list) -> str:
            def edge_part(name: str, node_def: Any, node_sub: list) -> str:
                if name != "node":
                    raise CannotCompile(f"edge field {name}")
                return c.object(node_type(node_def), node_sub, row)

            return c.build(edge_type, c.subfields(edge_type, sub), edge_part)

        def page_info(sub: list, more: str) -> str:
            info_type = node_type(connection_type.fields["pageInfo"])

            def info_part(name: str, _def: Any, _sub: list) -> str:
                if name == "hasNextPage":
                    return more if first else "false"
                if name == "hasPreviousPage":
                    return "false"
                raise CannotCompile(f"pageInfo.{name}")

            return c.build(info_type, c.subfields(info_type, sub), info_part)

        parents = c.sources.get(alias) if parent_key else None
        if parent_key is None or alias in c.single_rows:
            # the root list, or the page of one parent: a subquery of its own is the simplest plan
            under = f'"{columns(model)[parent_key]}" = {alias}."id"' if parent_key else None
            rows = rows_of(c, item_type.name, model, kept, under)
            page = f"(SELECT * {rows} ORDER BY {order(model, ordering)} LIMIT {first})"

            def part(name: str, part_def: Any, sub: list) -> str:
                if name == "totalCount":
                    return f"(SELECT count(*) {rows})"
                if name == "edges":
                    if first == 0:
                        return "'[]'::json"
                    row = c.alias()
                    c.sources[row] = page
                    edge = edge_of(row, sub)
                    return f"COALESCE((SELECT json_agg({edge} ORDER BY {order(model, ordering, row)}) FROM {page} {row}{c.joined(row)}), '[]'::json)"
                if name == "pageInfo":
                    return page_info(sub, f"EXISTS (SELECT 1 {rows} ORDER BY {order(model, ordering)} OFFSET {first})")
                raise CannotCompile(f"connection field {name}")

            return c.build(connection_type, grouped, part)
        if parents is None:
            raise CannotCompile("a connection under a parent read no other way")
        key = columns(model)[parent_key]
        rows = rows_of(c, item_type.name, model, kept, f'"{key}" IN (SELECT "id" FROM {parents} parents)')
        ranked = f'(SELECT *, row_number() OVER (PARTITION BY "{key}" ORDER BY {order(model, ordering)}) AS _rank {rows})'
        names = {sub[0].node.name.value for sub in grouped.values()}
        total = pages = None
        if "totalCount" in names:
            total = c.alias()
            c.join(alias, f'LEFT JOIN (SELECT "{key}" AS parent, count(*) AS total {rows} GROUP BY "{key}") {total} ON {total}.parent = {alias}."id"', total)
        if first and names & {"edges", "pageInfo"}:
            row, pages = c.alias(), c.alias()
            c.sources[row] = f"(SELECT * FROM {ranked} ranked WHERE _rank <= {first})"
            edges_sub = next((sub for sub in grouped.values() if sub[0].node.name.value == "edges"), None)
            edge = edge_of(row, edges_sub) if edges_sub is not None else "NULL"
            c.join(alias, (
                f'LEFT JOIN (SELECT {row}."{key}" AS parent, json_agg({edge} ORDER BY {row}._rank) FILTER (WHERE {row}._rank <= {first}) '
                f"AS edges, bool_or({row}._rank > {first}) AS more FROM {ranked} {row}{c.joined(row)} WHERE {row}._rank <= {first + 1} "
                f'GROUP BY {row}."{key}") {pages} ON {pages}.parent = {alias}."id"'
            ), pages)

        def grouped_part(name: str, part_def: Any, sub: list) -> str:
            if name == "totalCount":
                return f"COALESCE({total}.total, 0)"
            if name == "edges":
                # every "edges" of the selection is one response key, compiled once above
                return f"COALESCE({pages}.edges, '[]'::json)" if pages else "'[]'::json"
            if name == "pageInfo":
                return page_info(sub, f"COALESCE({pages}.more, false)" if pages else "false")
            raise CannotCompile(f"connection field {name}")

        if sum(1 for sub in grouped.values() if sub[0].node.name.value == "edges") > 1:
            raise CannotCompile("edges under two response keys")
        return c.build(connection_type, grouped, grouped_part)

    return compile_connection


def to_one(model: type[Model], foreign_key: str, parent_model: type[Model]) -> FieldSql:
    """A link to one row by the parent's foreign key, joined to the parent's rows: null when there is
    none or the viewer does not see it."""

    def compile_link(c: Compiler, alias: str, field_def: Any, details: list) -> str:
        column = columns(parent_model)[foreign_key]
        row = c.alias()
        linked = node_type(field_def)
        node = c.object(linked, details, row)
        seen = c.in_sight(linked.name, model)
        c.join(alias, f'LEFT JOIN (SELECT * FROM "{model._meta.db_table}" WHERE {seen}) {row} ON {row}."id" = {alias}."{column}"', row)
        return f'CASE WHEN {row}."id" IS NULL THEN NULL ELSE {node} END'

    return compile_link
