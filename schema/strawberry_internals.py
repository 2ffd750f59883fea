"""The private parts of strawberry and graphql-core the code relies on, in one place (pinned:
strawberry-graphql==0.341.2, graphql-core==3.3.2).

- `raw_info(info)`: graphql-core's `GraphQLResolveInfo` behind strawberry's `Info` (`Info._raw_info`):
  the look-ahead planner (`schema/batching.py`) and the subscription groups
  (`schema/subscription.py`) walk the selection, the fragments and the coerced variables.
- `graphql_core_schema(schema)`: the `GraphQLSchema` a strawberry `Schema` built (`Schema._schema`),
  for the cost limit (`schema/limits.py`).
- `validate_document(schema, document, rules)`: strawberry's validation step (graphql-core's
  `validate` with strawberry's own rules added), which `schema/limits.py` remembers per kept document.
- `STRAWBERRY_FIELD`: the key under which strawberry keeps its field definition in a graphql-core
  field's `extensions`; from it, `base_resolver` and the resolver's `wrapped_func`, `is_async`,
  `self_parameter`, `info_parameter`, `root_parameter`, `parent_parameter`, `arguments`.
- `ExecutionContext`: strawberry's subclass of graphql-core's executor, which
  `schema/execution.py` extends by overriding `complete_object_value` and `execute_operation` and
  calling `collect_subfields` (its second item: the @defer usages), `build_resolve_info`,
  `is_awaitable`, `run_async_work_finished_hook`, `variable_values.coerced`, `hide_suggestions`.
- The HTTP view and WebSocket handlers that `kabinet/graphql_view.py` and `kabinet/transport.py`
  extend by overriding methods strawberry calls (`run`, `decode_json`, `encode_json`,
  `process_result`, `iter_json`, `send_json`, `send_message`, `handle`, `handle_connection_init`,
  `connection_init_wait_timeout`, …): an override of a name strawberry no longer calls would be
  silently ignored.

`tests/test_library_internals.py` checks each against the installed versions: after an upgrade, a
failure there names what moved. `raw_info` is a C-level attribute getter, as fast as the attribute
access it replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import GraphQLResolveInfo, GraphQLSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document

PINNED = ("strawberry-graphql==0.341.2", "graphql-core==3.3.2")

raw_info: Callable[[Any], GraphQLResolveInfo] = attrgetter("_raw_info")

STRAWBERRY_FIELD = "strawberry-definition"

ExecutionContext = StrawberryGraphQLCoreExecutionContext

__all__ = ["PINNED", "STRAWBERRY_FIELD", "ExecutionContext", "graphql_core_schema", "raw_info", "validate_document"]


def graphql_core_schema(schema: Any) -> GraphQLSchema:
    """The graphql-core schema of a strawberry `Schema`."""
    return schema._schema
