"""Introspection, bounded. GraphiQL and code generators send one full introspection query; nothing
legitimate needs more. So an operation that asks for `__schema` or `__type` asks for nothing else
(`__typename` aside), runs in a worker thread (one at a time per process: the event loop keeps
answering meanwhile), and completes at most twice the introspection objects (`__Type`, `__Field`,
…) of one full introspection query of this schema; beyond that it is refused with QUERY_TOO_COMPLEX.
Its answer is under the answer byte limit of every response (`max_response_bytes`) too.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from enum import Enum
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    get_operation_ast,
    introspection_from_schema,
)
from strawberry.types import ExecutionResult

from schema.errors import graphql_error

ROOTS = frozenset({"__schema", "__type"})
BUDGET_FACTOR = 2  # objects an operation may complete: this many full introspections' worth


class Kind(Enum):
    INTROSPECTION = "introspection"  # only __schema, __type, __typename at the root
    MIXED = "mixed"  # introspection beside other root fields: refused


def kind_of(document: DocumentNode, operation_name: str | None) -> Kind | None:
    """Whether the operation to run asks for introspection (None: it does not, or it is unclear,
    which graphql-core reports)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    names: set[str] = set()
    pending, spread = [operation.selection_set], set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                spread.add(selection.name.value)
                if selection.name.value in fragments:
                    pending.append(fragments[selection.name.value].selection_set)
    if not names & ROOTS:
        return None
    return Kind.INTROSPECTION if names <= ROOTS | {"__typename"} else Kind.MIXED


def mixed_refusal() -> ExecutionResult:
    return ExecutionResult(data=None, errors=[graphql_error(
        "GRAPHQL_VALIDATION_FAILED",
        "Ask for __schema and __type in an operation of their own: no other root field beside __typename.",
    )])


class TooMuchIntrospection(BaseException):
    """Raised by the executor past the budget: a BaseException, so that graphql-core, which turns
    a field's exception into an error and goes on with the next field, stops the whole operation."""


_budgets: dict[int, tuple[GraphQLSchema, int]] = {}  # holds the schema: its id stays its own


def budget(schema: GraphQLSchema) -> int:
    """Introspection objects one operation may complete on this schema."""
    kept = _budgets.get(id(schema))
    if kept is None:
        kept = _budgets[id(schema)] = (schema, BUDGET_FACTOR * objects_in(introspection_from_schema(schema)))
    return kept[1]


def objects_in(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(objects_in(v) for v in value.values())
    if isinstance(value, list):
        return sum(objects_in(v) for v in value)
    return 0


def too_much(schema: GraphQLSchema) -> GraphQLError:
    error = graphql_error(
        "QUERY_TOO_COMPLEX",
        f"This introspection would describe more than {budget(schema)} types, fields and values: ask for the "
        "schema once (one __schema selection), as GraphiQL and code generators do.",
    )
    error.extensions.update(maximum=budget(schema))
    return error


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_slots_lock = threading.Lock()


async def run_off_the_loop(execute_sync: Callable[[], ExecutionResult], schema: GraphQLSchema) -> ExecutionResult:
    """`execute_sync` in a worker thread, one at a time per event loop; past the budget, the refusal."""
    loop = asyncio.get_running_loop()
    with _slots_lock:
        slot = _slots.setdefault(loop, asyncio.Semaphore(1))
    async with slot:
        return await asyncio.to_thread(_bounded, execute_sync, schema)


def _bounded(execute_sync: Callable[[], ExecutionResult], schema: GraphQLSchema) -> ExecutionResult:
    budget(schema)  # worked out here, in the thread, the first time
    try:
        return execute_sync()
    except TooMuchIntrospection:
        return ExecutionResult(data=None, errors=[too_much(schema)])
