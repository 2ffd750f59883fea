"""Assemble the schema: roots, scalars and the extensions every request runs through."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from kabinet.context import RequestContext
from kabinet.errors import shape_error
from kabinet.settings import Settings
from schema.execution import KabinetExecutionContext
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
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log only what went wrong on our side; a client's mistake or a refusal is not an incident."""
        for error in errors:
            if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
                log.error("unexpected error at %s", error.path, exc_info=error.original_error)

    async def stream(self, query: str | None, *args: Any, context_value: Any = None, **kwargs: Any) -> Any:
        """An operation over WebSocket (both sub-protocols come here): run with a context of its own
        (`RequestContext.for_operation`: every operation of a socket is handed the socket's one
        context), its results' errors shaped as HTTP's are (`kabinet.errors.shape_error`: an
        unexpected exception reaches the client as INTERNAL_SERVER_ERROR, never as Python's text)."""
        if isinstance(context_value, RequestContext):
            context_value = context_value.for_operation()
        results = await super().stream(query, *args, context_value=context_value, **kwargs)
        request_id = getattr(context_value, "request_id", "-")
        return _shaped(results, request_id)


async def _shaped(results: Any, request_id: str) -> Any:
    try:
        async for result in results:
            errors = getattr(result, "errors", None)
            if errors:
                result.errors = [_shape(error, result, request_id) for error in errors]
            yield result
    finally:
        await results.aclose()


def _shape(error: GraphQLError, result: Any, request_id: str) -> GraphQLError:
    if isinstance(result, PreExecutionError) and (
        isinstance(error, GraphQLSyntaxError) or isinstance(error.original_error, _REQUEST_FAILURES)
    ):
        return error  # graphql-transport-ws closes the socket with 4400 for these, by their type
    return shape_error(error, request_id, log, logged=True)  # process_errors logged it


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

    return KabinetSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=KabinetExecutionContext,
        extensions=[QueryLimits, lambda: ParserCache(maxsize=1000), lambda: ValidationCache(maxsize=1000)],
    )
