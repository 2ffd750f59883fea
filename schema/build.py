"""Assemble the schema: roots, scalars and the extensions every request runs through."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, GraphQLSyntaxError, OperationDefinitionNode
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import AddValidationRules
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from resolvers.common.context import RequestContext
from resolvers.common.errors import Refusal
from schema.errors import shape_error
from foundation.logs import current_request
from foundation.settings import Settings
from schema import execution, introspection
from schema.execution import KabinetExecutionContext
from schema.limits import DOCUMENTS, cost_limit, limited_parser, parse_document
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import SCALAR_OVERRIDES
from schema.subscription import Subscription

log = logging.getLogger("kabinet.graphql")


class _CodedContext:
    """A validation context whose errors carry `extensions.code`; everything else is the original's."""

    def __init__(self, context: Any, code: str) -> None:
        self._context, self._code = context, code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)


def coded_rule(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """The same validation rule, its errors tagged with `code` (e.g. QUERY_TOO_COMPLEX)."""

    class Coded(rule):  # type: ignore[misc, valid-type]
        def __init__(self, context: Any) -> None:
            super().__init__(_CodedContext(context, code))

    Coded.__name__ = rule.__name__
    return Coded


# What strawberry reports before running an operation, whose type its WebSocket handlers look at.
_REQUEST_FAILURES = (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError)


class KabinetSchema(strawberry.Schema):
    max_tokens = 5_000  # the settings' max_query_tokens, set by build_schema

    def _introspection(self, query: str | None, operation_name: str | None) -> introspection.Kind | None:
        if not isinstance(query, str):
            return None
        try:
            document = parse_document(query, self.max_tokens)
        except GraphQLError:
            return None  # the parser step reports it
        if (record := current_request.get()) is not None:  # for the request's log line (kabinet/request_log.py)
            record.operation = operation_name or next(
                (d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name), None
            )
        return introspection.kind_of(document, operation_name)

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        """An introspection runs off the event loop, within its budget (schema/introspection.py)."""
        kind = self._introspection(query, kwargs.get("operation_name", args[3] if len(args) > 3 else None))
        if kind is introspection.Kind.MIXED:
            return introspection.mixed_refusal()
        if kind is introspection.Kind.INTROSPECTION:
            run = functools.partial(self.execute_sync, query, *args, **kwargs)
            return await introspection.run_off_the_loop(run, self._schema)
        return await super().execute(query, *args, **kwargs)

    async def stream(  # noqa: PLR0917
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Any = None,
    ) -> Any:
        """Each WebSocket operation (both sub-protocols come through here) runs with a context of its
        own, not the connection's: memberships read afresh, so a mutation uses the current rights.
        Its results carry errors shaped as over HTTP (`kabinet.errors.shape_error`): a code on each,
        no Python, driver or SQL text."""
        if isinstance(context_value, RequestContext):
            context_value = context_value.for_operation()
            if (record := current_request.get()) is not None and record.socket is not None:
                context_value.request_id = record.id  # the operation's own id (kabinet/transport.py)
        if self._introspection(query, operation_name) is not None:
            result = await self.execute(query, variable_values, context_value, root_value, operation_name)
            return _shaped(_one(result), getattr(context_value, "request_id", None) or "-")
        results = await super().stream(
            query, variable_values, context_value, root_value, operation_name, operation_extensions,
            allowed_operation_types,
        )
        return _shaped(results, getattr(context_value, "request_id", None) or "-")

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log only what went wrong on our side; a client's mistake or a refusal is not an incident."""
        for error in errors:
            # a request failure (an operation type the transport does not run, no query) is the client's
            if error.original_error is not None and not isinstance(error.original_error, (GraphQLError, Refusal, *_REQUEST_FAILURES)):
                log.error("unexpected error at %s", error.path, exc_info=error.original_error)


def _shape(error: GraphQLError, result: Any, request_id: str) -> GraphQLError:
    if isinstance(result, PreExecutionError) and (
        isinstance(error, GraphQLSyntaxError) or isinstance(error.original_error, _REQUEST_FAILURES)
    ):
        return error  # graphql-transport-ws closes the socket with 4400 for these, by their type
    return shape_error(error, request_id, log, logged=True)  # process_errors logged it


async def _one(result: Any) -> AsyncGenerator:
    yield result


async def _shaped(results: AsyncGenerator, request_id: str) -> AsyncGenerator:
    async with aclosing(results):
        async for result in results:
            if getattr(result, "errors", None):
                shaped = [_shape(error, result, request_id) for error in result.errors]
                if (record := current_request.get()) is not None:
                    record.error_codes((e.extensions or {}).get("code") for e in shaped)
                result = copy.copy(result)  # a copy: a result may be shared by a group of subscribers
                result.errors = shaped
            yield result


def build_schema(settings: Settings) -> strawberry.Schema:
    # Rules are made once: rule classes made per request would defeat the validation cache.
    limits = [
        coded_rule(max_depth_rule(settings.max_query_depth, None, None), "QUERY_TOO_COMPLEX"),
        coded_rule(max_aliases_rule(settings.max_aliases), "QUERY_TOO_COMPLEX"),
    ]

    class QueryLimits(AddValidationRules):
        """Query depth and alias count limits, refused before the query runs."""

        def __init__(self) -> None:
            super().__init__(limits)

    budget = settings.query_cache_mb * 1024 * 1024
    DOCUMENTS.resize(budget, budget // 64)
    execution.PLANS.resize(budget, budget // 64)
    schema = KabinetSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=KabinetExecutionContext,
        extensions=[
            limited_parser(settings),
            QueryLimits,
            cost_limit(settings),
        ],
    )
    schema.max_tokens = settings.max_query_tokens
    return schema
