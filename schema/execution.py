"""Completing loaded objects without graphql-core's per-field machinery.

By the time graphql-core completes an object, the look-ahead planner (`schema.batching`) has
already loaded everything below it: what is left is attribute reads, leaf serialization and
dict building. graphql-core spends ~10 µs per field on that (a resolve info, a path, argument
coercion, awaitable checks per field); a dashboard of 2,500 objects is 150 ms of it.

`KabinetExecutionContext.complete_object_value` compiles, once per selection (kept across requests
and subscription events by field nodes and variables), a plan of the fields selected on an object
type and runs it: plain attributes are read, `@batched` fields
are taken from what the planner kept, other synchronous resolvers are called as graphql-core
would call them. The plan is an optimistic shortcut and never a second set of rules: anything
it does not handle the same way — an error or a refusal kept for a field, a field the planner did
not reach, null in a non-null position, an async resolver, an abstract type, @defer — makes it
give up on that object, and graphql-core completes the object the ordinary way (which in turn
tries the plan on each child object). The response is the same either way; a test runs every
query both ways and compares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from graphql import (
    ExecutionResult,
    OperationType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    GraphQLBoolean,
    get_named_type,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined

from foundation.bounded_cache import BoundedCache
from schema import sql_json
from schema.introspection import TooMuchIntrospection, budget
from schema.limits import source_bytes
from schema.strawberry_internals import STRAWBERRY_FIELD, ExecutionContext


class _GiveUp(Exception):
    """The plan cannot complete this object the way graphql-core would: let graphql-core do it."""


_MISSING = object()


def _leaf_serializer(gtype: Any) -> Callable[[Any], Any]:
    """graphql-core's leaf completion, with the common exact-type cases answered directly."""
    coerce = gtype.coerce_output_value

    def checked(value: Any) -> Any:
        result = coerce(value)
        if result is None or result is Undefined:
            raise _GiveUp
        return result

    if gtype is GraphQLString or gtype is GraphQLID:
        return lambda value: value if value.__class__ is str else checked(value)
    if gtype is GraphQLInt:
        return lambda value: value if value.__class__ is int and -(2**31) <= value < 2**31 else checked(value)
    if gtype is GraphQLBoolean:
        return lambda value: value if value.__class__ is bool else checked(value)
    if isinstance(gtype, GraphQLEnumType):
        wrapped = getattr(gtype, "wrapped_cls", None)
        names = {}
        if wrapped is not None:
            for name, definition in gtype.values.items():
                for member in wrapped:
                    if member.value == definition.value:
                        names[member] = name
        return lambda value: names.get(value) or checked(value)
    return checked


_serializers: dict[int, tuple[Any, Callable[[Any], Any]]] = {}


def _serializer_of(gtype: Any) -> Callable[[Any], Any]:
    kept = _serializers.get(id(gtype))
    if kept is None:
        kept = _serializers[id(gtype)] = (gtype, _leaf_serializer(gtype))  # holds the type: its id stays its own
    return kept[1]


# Field kinds of a plan.
_ATTRIBUTE, _LOADED, _RESOLVER, _TYPENAME, _METHOD = range(5)

Plan = Callable[[Any, Any, Path], dict]  # (executor, object, path) -> the completed object


class _Field:
    __slots__ = (
        "key", "kind", "attribute", "method", "non_null", "leaf", "serialize", "context_free", "complete", "field_def",
        "nodes", "args", "parent",
    )

    def __init__(self, key: str, kind: int) -> None:
        self.key, self.kind = key, kind
        self.attribute: str | None = None
        self.method: Callable[[Any], Any] | None = None  # _METHOD: the resolver, called with the object
        self.non_null = self.leaf = False
        self.serialize: Callable[[Any], Any] | None = None  # a scalar or enum field's, called directly
        self.context_free = kind != _RESOLVER  # and, for an object field, its object's plan is
        self.complete: Callable[[Any, Any, Path], Any] | None = None
        self.field_def = self.nodes = self.args = self.parent = None


PLAN_BYTES = 4_000  # a plan's closure and field objects, estimated high; its key is counted apart

# Plans by selection: the object type, the field nodes (by identity: the parser cache hands an
# identical query text the same document) and the variables. An entry holds its nodes, so no id in
# its key is reused while it lives, and so its document: the document is counted once while any
# plan holds it. A plan holds no executor, so every request, and every event of a subscription, of
# the same query reuses it. Its budget is the settings' query_cache_mb (schema/build.py).
PLANS: BoundedCache[tuple[tuple, Plan | None]] = BoundedCache("plans", 32 * 1024 * 1024, 512 * 1024)


def _keep_plan(key: tuple, nodes: tuple, plan: Plan | None) -> None:
    loc = nodes[0].loc if nodes else None
    shared = (id(loc.source), source_bytes(loc)) if loc is not None else None
    PLANS.put(key, (nodes, plan), PLAN_BYTES + len(key[2]) + 64 * len(nodes), shared)


class SharedCompletion(dict):
    """The completed value of an object many subscribers are sent (see `share_completions`): the
    same dict for all of them, its JSON encoded once (`json`), not once per subscriber."""

    __slots__ = ("_json",)

    def json(self) -> bytes:
        try:
            return self._json
        except AttributeError:
            self._json = orjson.dumps(self)
            return self._json


_COMPLETIONS = "_shared_completions"


def share_completions(obj: Any) -> Any:
    """Mark an object that a whole group of subscribers receives as the same event: completing it
    for a selection that reads nothing of the subscriber (no resolver sees the context) is done once
    and the result reused, by selection and variables."""
    if hasattr(obj, "__dict__"):
        obj.__dict__[_COMPLETIONS] = {}
    return obj


class KabinetExecutionContext(ExecutionContext):
    """graphql-core's executor with compiled completion of loaded object subtrees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # by (type, id of the field list), each entry holding its list: graphql-core's list of the root
        # fields is made anew for every event and freed after it, and a freed list's id is reused
        self._local_plans: dict[tuple[Any, int], tuple[Any, Plan | None]] = {}
        self._variables_key: bytes | None = None
        self._introspected = 0

    def complete_object_value(self, return_type, field_details_list, info, path, result, position_context):  # noqa: ANN001, ANN201
        if return_type.name.startswith("__"):  # introspection: counted against its budget, never planned
            self._introspected += 1
            if self._introspected > budget(self.schema):
                raise TooMuchIntrospection
            return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)
        shared = getattr(result, "__dict__", {}).get(_COMPLETIONS)
        if shared is not None:
            key = self._selection_key(return_type, field_details_list)
            kept = shared.get(key)
            if kept is not None:
                return kept[1]
        plan = self._object_plan(return_type, field_details_list)
        if plan is not None:
            try:
                completed = plan(self, result, path)
            except Exception:  # noqa: BLE001 — _GiveUp, or an error graphql-core will report properly
                pass
            else:
                if shared is not None and plan.context_free:
                    completed = SharedCompletion(completed)
                    shared[key] = (tuple(d.node for d in field_details_list), completed)
                return completed
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)

    # ------------------------------------------------------------ planning

    def execute_operation(self, serially: bool | None = None) -> Any:
        """A subscription event whose payload a group shares: the first member's execution answers
        the others too (same operation, same variables), when its root fields were completed as
        shared completions, i.e. read nothing of the subscriber."""
        if self.operation.operation is OperationType.QUERY and sql_json.worth_trying(self.context_value):
            return self._answer_with_statement(serially)
        shared = getattr(self.root_value, "__dict__", {}).get(_COMPLETIONS)
        if shared is None or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        key = ("operation", id(self.operation), self._variables())
        kept = shared.get(key)
        if kept is not None and kept[0] is self.operation:  # the entry holds the node: its id is its own
            self.run_async_work_finished_hook()
            return ExecutionResult(kept[1], None)
        result = super().execute_operation(serially)
        if (
            isinstance(result, ExecutionResult)
            and not result.errors
            and result.data
            and all(isinstance(value, SharedCompletion) for value in result.data.values())
        ):
            shared[key] = (self.operation, result.data)
        return result

    async def _answer_with_statement(self, serially: bool | None) -> Any:
        """A query PostgreSQL can answer whole (schema/sql_json.py) is; any other is executed."""
        root_type = self.schema.query_type
        try:
            grouped, defer_usages, *_ = collect_fields(
                self.schema, self.fragments, self.variable_values, root_type, self.operation, self.hide_suggestions
            )
        except RecursionError:
            defer_usages = True
        if not defer_usages:
            data = await sql_json.answer(self, root_type, grouped, self._variables())
            if data is not None:
                self.run_async_work_finished_hook()
                return ExecutionResult(data, None)
        result = super().execute_operation(serially)
        return await result if self.is_awaitable(result) else result

    def _variables(self) -> bytes:
        if self._variables_key is None:
            self._variables_key = orjson.dumps(self.variable_values.coerced, option=orjson.OPT_SORT_KEYS, default=str)
        return self._variables_key

    def _selection_key(self, otype: GraphQLObjectType, field_details_list: Any) -> tuple:
        return (otype, tuple(id(d.node) for d in field_details_list), self._variables())

    def _object_plan(self, otype: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        local_key = (otype, id(field_details_list))
        kept = self._local_plans.get(local_key)
        if kept is not None and kept[0] is field_details_list:
            return kept[1]
        key = self._selection_key(otype, field_details_list)
        kept = PLANS.get(key)
        if kept is None:
            plan = self._build_object_plan(otype, field_details_list)
            _keep_plan(key, tuple(d.node for d in field_details_list), plan)
        else:
            plan = kept[1]
        self._local_plans[local_key] = (field_details_list, plan)
        return plan

    def _build_object_plan(self, otype: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        grouped, defer_usages, *_ = self.collect_subfields(otype, field_details_list)
        if defer_usages:
            return None
        fields: list[_Field] = []
        for key, details in grouped.items():
            field = self._field_plan(otype, key, details)
            if field is None:
                return None
            fields.append(field)
        is_type_of = otype.is_type_of
        type_name = otype.name
        # strawberry's is_type_of answers by the object's class (this schema casts no object)
        classes_of_type: set[type] = set()

        def complete(executor: Any, obj: Any, path: Path | None) -> dict:
            if is_type_of is not None and obj.__class__ not in classes_of_type:
                if not is_type_of(obj, None):
                    raise _GiveUp
                classes_of_type.add(obj.__class__)
            out: dict[str, Any] = {}
            kept = None
            for field in fields:
                kind = field.kind
                if kind == _ATTRIBUTE:
                    value = getattr(obj, field.attribute)
                elif kind == _LOADED:
                    if kept is None:
                        kept = obj.__dict__.get("_loaded")
                        if kept is None:
                            raise _GiveUp
                    value = kept.get(field.key, _MISSING)
                    if value is _MISSING or isinstance(value, GraphQLError):
                        raise _GiveUp
                elif kind == _METHOD:
                    value = field.method(obj)
                elif kind == _TYPENAME:
                    out[field.key] = type_name
                    continue
                else:
                    value = _execute_sync_resolver(executor, field, obj, path)
                if value is None:
                    if field.non_null:
                        raise _GiveUp
                    out[field.key] = None
                elif field.serialize is not None:
                    out[field.key] = field.serialize(value)
                elif field.leaf or field.context_free:  # a path only matters to a resolver below
                    out[field.key] = field.complete(executor, value, path)
                else:
                    out[field.key] = field.complete(executor, value, Path(path, field.key, type_name))
            return out

        complete.context_free = all(field.context_free for field in fields)
        return complete

    def _field_plan(self, otype: GraphQLObjectType, key: str, details: Any) -> _Field | None:
        node = details[0].node
        name = node.name.value
        if name == "__typename":
            return _Field(key, _TYPENAME)
        field_def = otype.fields.get(name)
        if field_def is None or name.startswith("__"):
            return None
        definition = field_def.extensions.get(STRAWBERRY_FIELD)
        if definition is None:
            return None
        resolver = definition.base_resolver
        if resolver is None and not definition.extensions:
            field = _Field(key, _ATTRIBUTE)
            field.attribute = definition.python_name
        elif resolver is not None and resolver.is_async:
            return None
        elif (
            resolver is not None
            and not definition.extensions
            and getattr(resolver.wrapped_func, "__batch_load__", None) is not None
        ):
            field = _Field(key, _LOADED)
        elif resolver is not None and not definition.extensions and _is_plain_method(resolver):
            field = _Field(key, _METHOD)
            field.method = resolver.wrapped_func
        else:
            field = _Field(key, _RESOLVER)
            field.field_def, field.parent = field_def, otype
            field.nodes = [d.node for d in details]
            try:
                field.args = (
                    get_argument_values(
                        field_def, node, self.variable_values, details[0].fragment_variable_values, self.hide_suggestions
                    )
                    if field_def.args or node.arguments
                    else {}
                )
            except GraphQLError:
                return None
        value_plan = self._value_plan(field_def.type, details)
        if value_plan is None:
            return None
        field.non_null, field.complete, context_free = value_plan
        field.context_free = field.context_free and context_free
        field.leaf = is_leaf_type(get_named_type(field_def.type))
        bare_type = field_def.type.of_type if isinstance(field_def.type, GraphQLNonNull) else field_def.type
        if is_leaf_type(bare_type):
            field.serialize = _serializer_of(bare_type)
        return field

    def _value_plan(self, gtype: Any, details: Any) -> tuple[bool, Callable[[Any, Any, Path], Any], bool] | None:
        """(non-null?, how to complete a non-null value of `gtype`, context-free?), or None if the plan can't."""
        non_null = isinstance(gtype, GraphQLNonNull)
        if non_null:
            gtype = gtype.of_type
        if is_leaf_type(gtype):
            serialize = _serializer_of(gtype)
            return non_null, lambda executor, value, path: serialize(value), True
        if isinstance(gtype, GraphQLList):
            item = self._value_plan(gtype.of_type, details)
            if item is None:
                return None
            item_non_null, complete_item, context_free = item

            def complete_list(executor: Any, values: Any, path: Path) -> list:
                if not isinstance(values, list | tuple):
                    raise _GiveUp
                out = []
                for index, value in enumerate(values):
                    if value is None:
                        if item_non_null:
                            raise _GiveUp
                        out.append(None)
                    else:
                        out.append(complete_item(executor, value, None if context_free else Path(path, index, None)))
                return out

            return non_null, complete_list, context_free
        if is_object_type(gtype):
            plan = self._object_plan(gtype, details)
            if plan is None:
                return None
            return non_null, plan, plan.context_free
        return None  # interfaces and unions: graphql-core resolves the runtime type


def _is_plain_method(resolver: Any) -> bool:
    """A synchronous method of the object that takes nothing else (no info, no arguments): what it
    answers depends on the object alone, so the plan calls it directly, as strawberry would."""
    return (
        not resolver.is_async
        and resolver.self_parameter is not None
        and resolver.info_parameter is None
        and resolver.root_parameter is None
        and resolver.parent_parameter is None
        and not resolver.arguments
    )


def _execute_sync_resolver(executor: Any, field: _Field, obj: Any, path: Path) -> Any:
    """Call a synchronous resolver as graphql-core would; anything but a plain value gives up."""
    info = executor.build_resolve_info(field.field_def, field.nodes, field.parent, Path(path, field.key, field.parent.name))
    value = field.field_def.resolve(obj, info, **field.args)
    if executor.is_awaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()
        raise _GiveUp
    if isinstance(value, Exception):
        raise _GiveUp
    return value
