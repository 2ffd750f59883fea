"""Look-ahead loading: every batched field of a level is loaded once for all its parents.

A root resolver returns its objects and calls `expand`; `expand` walks the query's selection
below them and, for each field declared with `@batched(load)`, calls `load` once with every
parent object of that level, keeps each parent's result on the parent, and goes on below.
The field's resolver then only reads what was kept (`loaded`), synchronously. A query thus
costs one SQL statement (or two, with `totalCount`) per batched field in it, whatever the
number of rows, and the per-object work is plain attribute access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.values import VariableValues, get_argument_values

from foundation.ids import NO_SUCH_ID, pk_of
from resolvers.common.gates import SELECTED
from resolvers.common.errors import Refusal
from schema.authorization import admit, field_refusals
from schema.errors import as_graphql_error
from schema.relay import Connection, Edge
from schema.strawberry_internals import STRAWBERRY_FIELD, raw_info

Load = Callable[[Any, list[Any], dict[str, Any]], Awaitable[list[Any]]]
Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Batch:
    load: Load
    convert: Convert | None
    ids: tuple[tuple[str, str], ...] = ()


def batched(load: Load, to: Convert | None = None, *, ids: dict[str, str] | None = None) -> Callable[[Callable], Callable]:
    """Declare that `load(ctx, parent_models, args)` gives this field's value for all parents.

    `load` is a resolver: it takes the parents' domain objects (each schema object's `model`)
    and returns one result per parent, or a `Refusal` for a parent the caller may not see it
    on; `to` turns a result into schema objects. `args` speaks the domain's language: argument
    names in snake_case, the global ids of the arguments `ids` names (`{"database_id":
    "Database"}`) decoded to primary keys (one that does not decode matches nothing), and under
    `SELECTED` the snake_case names of the fields selected on the result.
    """

    def declare(resolver: Callable) -> Callable:
        resolver.__batch_load__ = _Batch(load, to, tuple((ids or {}).items()))
        return resolver

    return declare


def loaded(obj: Any, info: Any) -> Any:
    """The value `expand` kept for this field of `obj`; loads it now if the planner did not."""
    try:
        value = obj.__dict__["_loaded"][info.path.key]
    except KeyError:
        return _load_now(obj, raw_info(info))
    if isinstance(value, GraphQLError):
        raise value
    return value


async def _load_now(obj: Any, info: GraphQLResolveInfo) -> Any:
    """A batched field the planner did not reach (e.g. under a mutation payload): load it for this
    one parent, and what is selected below it for all its children, as the planner would."""
    key = info.path.key
    field_def = info.parent_type.fields[info.field_name]
    batch, _ = _field_plan(info.parent_type.name, info.field_name, field_def)
    await _Env.from_info(info).load_field(info.parent_type, [obj], key, list(info.field_nodes), field_def, batch)
    value = obj.__dict__["_loaded"][key]
    if isinstance(value, GraphQLError):
        raise value
    return value


async def expand(info: Any, value: Any, context: Any = None) -> Any:
    """`value`, the result of the field `info` is for, as the viewer may have it (the role table's
    gate, `schema.authorization`), with every batched field selected below it loaded.
    `context`: whose rights decide, when not the request's own (a subscription group's)."""
    raw = raw_info(info)
    env = _Env.from_info(raw, context)
    [value] = await admit(env.context, [value])
    await env.expand(raw.return_type, raw.field_nodes, [value])
    return value


def selected(info: Any) -> dict[str, frozenset[str]]:
    """For a root field's own loading: `{SELECTED: names of the fields selected on its result}`."""
    raw = raw_info(info)
    return {SELECTED: _Env.from_info(raw).selected_names(raw.return_type, raw.field_nodes)}


def selection_touches(info: Any, fields: frozenset[tuple[str, str]]) -> bool:
    """Does the selection below the field `info` is for reach any of `fields` ((type, field) names)?"""
    raw = raw_info(info)
    return _Env.from_info(raw).touches(raw.return_type, raw.field_nodes, fields, set())


@dataclass
class _Env:
    context: Any
    schema: Any
    fragments: dict[str, Any]
    variable_values: Any

    @classmethod
    def from_info(cls, info: GraphQLResolveInfo, context: Any = None) -> _Env:
        variables = info.variable_values
        if not isinstance(variables, VariableValues):  # strawberry's executor passes the coerced dict
            variables = VariableValues(sources={}, coerced=variables or {})
        return cls(info.context if context is None else context, info.schema, info.fragments, variables)

    async def expand(self, gtype: Any, field_nodes: list[FieldNode], values: list[Any]) -> None:
        while is_non_null_type(gtype):
            gtype = gtype.of_type
        if is_list_type(gtype):
            items = [item for value in values if isinstance(value, list) for item in value]
            return await self.expand(gtype.of_type, field_nodes, items)
        if not is_composite_type(gtype):
            return None
        values = [v for v in values if v is not None and not isinstance(v, GraphQLError)]
        if not values:
            return None
        if not is_abstract_type(gtype):
            return await self.expand_object_fields(gtype, values, field_nodes)
        by_type: dict[str, list[Any]] = {}
        for value in values:
            by_type.setdefault(value.__strawberry_definition__.name, []).append(value)
        for type_name, objs in by_type.items():
            await self.expand_object_fields(self.schema.get_type(type_name), objs, field_nodes)
        return None

    async def expand_object_fields(
        self, otype: GraphQLObjectType, objs: list[Any], field_nodes: list[FieldNode], only_key: str | None = None
    ) -> None:
        for key, nodes in self.collect(otype, field_nodes).items():
            if only_key is not None and key != only_key:
                continue
            name = nodes[0].name.value
            if name.startswith("__"):
                continue
            field_def = otype.fields[name]
            load, python_name = _field_plan(otype.name, name, field_def)
            if load is not None:
                await self.load_field(otype, objs, key, nodes, field_def, load)
            elif python_name is not None:
                values = [getattr(o, python_name) for o in objs]
                if not isinstance(objs[0], Connection | Edge):  # a connection's items were admitted with it
                    admitted = await admit(self.context, values)
                    if admitted is not values:
                        for obj, value, kept in zip(objs, values, admitted, strict=True):
                            if kept is not value:
                                setattr(obj, python_name, kept)
                        values = admitted
                await self.expand(field_def.type, nodes, values)

    async def load_field(
        self, otype: GraphQLObjectType, objs: list[Any], key: str, nodes: list[FieldNode], field_def: Any, batch: _Batch
    ) -> None:
        refusals = await field_refusals(self.context, otype.name, nodes[0].name.value, objs)
        allowed = objs if refusals is None else [o for o, refused in zip(objs, refusals) if refused is None]
        try:
            if allowed:
                args = domain_arguments(get_argument_values(field_def, nodes[0], self.variable_values), batch.ids)
                args[SELECTED] = self.selected_names(field_def.type, nodes)
                loaded_values = await batch.load(self.context, [o.model for o in allowed], args)
            else:
                loaded_values = []
        except GraphQLError as error:
            loaded_values = [error] * len(allowed)
        except Refusal as refusal:
            loaded_values = [as_graphql_error(refusal)] * len(allowed)
        loaded_values = [as_graphql_error(r) if isinstance(r, Refusal) else r for r in loaded_values]
        if batch.convert is not None:
            loaded_values = [r if r is None or isinstance(r, GraphQLError) else batch.convert(r) for r in loaded_values]
        loaded_values = await admit(self.context, loaded_values)
        if refusals is None:
            results = loaded_values
        else:
            answers = iter(loaded_values)
            results = [next(answers) if refused is None else refused for refused in refusals]
        for obj, result in zip(objs, results, strict=True):
            obj.__dict__.setdefault("_loaded", {})[key] = result
        await self.expand(field_def.type, nodes, results)

    def touches(self, gtype: Any, nodes: list[FieldNode], fields: frozenset, seen: set) -> bool:
        named = get_named_type(gtype)
        if not is_composite_type(named):
            return False
        types = self.schema.get_possible_types(named) if is_abstract_type(named) else [named]
        for otype in types:
            for selections in self.collect(otype, nodes).values():
                name = selections[0].name.value
                if (otype.name, name) in fields:
                    return True
                field_def = otype.fields.get(name)
                key = (otype.name, id(selections[0]))
                if field_def is None or key in seen:
                    continue
                seen.add(key)
                if self.touches(field_def.type, selections, fields, seen):
                    return True
        return False

    def selected_names(self, gtype: Any, nodes: list[FieldNode]) -> frozenset[str]:
        """Names of the fields selected directly on a field's (object) result type."""
        named = get_named_type(gtype)
        if not isinstance(named, GraphQLObjectType):
            return frozenset()
        return snake_names(frozenset(n[0].name.value for n in self.collect(named, nodes).values()))

    def collect(self, otype: GraphQLObjectType, field_nodes: list[FieldNode]) -> dict[str, list[FieldNode]]:
        """The fields selected on `otype` by response key, through fragments and @skip/@include."""
        fields: dict[str, list[FieldNode]] = {}
        for node in field_nodes:
            if node.selection_set:
                self._visit(otype, node.selection_set, fields, set())
        return fields

    def _visit(self, otype, selection_set: SelectionSetNode, fields: dict, seen_fragments: set[str]) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or _matches(otype, condition.name.value):
                    self._visit(otype, selection.selection_set, fields, seen_fragments)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in seen_fragments or fragment is None:
                    continue
                seen_fragments.add(name)
                if _matches(otype, fragment.type_condition.name.value):
                    self._visit(otype, fragment.selection_set, fields, seen_fragments)

    def _included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            if isinstance(condition, BooleanValueNode):
                value = condition.value
            else:
                coerced = self.variable_values.coerced
                value = bool(coerced.get(condition.name.value)) if condition is not None else False
            if (name == "skip") == value:
                return False
        return True


def domain_arguments(arguments: dict[str, Any], ids: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """GraphQL arguments as the domain takes them: snake_case names, global ids decoded."""
    args = {snake_case(name): value for name, value in arguments.items()}
    for name, type_name in ids:
        if args.get(name) is not None:
            args[name] = pk_of(args[name], type_name) or NO_SUCH_ID
    return args


@lru_cache(maxsize=1024)
def snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@lru_cache(maxsize=4096)
def snake_names(names: frozenset[str]) -> frozenset[str]:
    return frozenset(snake_case(name) for name in names)


def _matches(otype: GraphQLObjectType, type_name: str) -> bool:
    return otype.name == type_name or any(i.name == type_name for i in otype.interfaces)


_plans: dict[tuple[str, str], tuple[_Batch | None, str | None]] = {}


def _field_plan(type_name: str, field_name: str, field_def: Any) -> tuple[_Batch | None, str | None]:
    """(the field's batch loader, or None; the attribute to descend through for a plain object field)."""
    plan = _plans.get((type_name, field_name))
    if plan is None:
        strawberry_field = field_def.extensions.get(STRAWBERRY_FIELD)
        resolver = getattr(strawberry_field, "base_resolver", None)
        load = getattr(resolver.wrapped_func, "__batch_load__", None) if resolver else None
        descend = (
            strawberry_field.python_name
            if strawberry_field is not None and resolver is None and is_composite_type(get_named_type(field_def.type))
            else None
        )
        plan = _plans[(type_name, field_name)] = (load, descend)
    return plan
