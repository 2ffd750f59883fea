"""Errors a client can act on: GraphQL errors with `extensions.code`, and mutations' user errors."""

from __future__ import annotations

from enum import Enum

from graphql import GraphQLError


class ErrorCode(str, Enum):
    """Codes of `userErrors` (the contract's ErrorCode enum)."""

    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    EXPIRED = "EXPIRED"
    RATE_LIMITED = "RATE_LIMITED"
    UNAUTHENTICATED = "UNAUTHENTICATED"


def graphql_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def unauthenticated() -> GraphQLError:
    return graphql_error("UNAUTHENTICATED", "Sign in first: send a valid access token.")


def signed_out() -> GraphQLError:
    return graphql_error("UNAUTHENTICATED", "This sign-in has ended (signed out, password reset): sign in again.")


def forbidden(what: str = "this field") -> GraphQLError:
    return graphql_error("FORBIDDEN", f"Your role in this organization may not see {what}.")


def bad_user_input(message: str) -> GraphQLError:
    return graphql_error("BAD_USER_INPUT", message)


class UserFacingError(Exception):
    """A business-rule refusal of a mutation; turned into one `userErrors` entry.

    The mutation's changes are rolled back, unless `keep_changes`: a refusal that must leave a
    trace (a wrong code counted towards its attempts, a reused token's login revoked)."""

    def __init__(self, code: ErrorCode, message: str, field: list[str] | None = None, *, keep_changes: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.keep_changes = keep_changes


_CLIENT_MISTAKES = (
    ("Syntax Error", "GRAPHQL_PARSE_FAILED"),
    ("Variable '$", "BAD_USER_INPUT"),
    ("Expected value of type", "BAD_USER_INPUT"),
)


def shape_error(error: GraphQLError, request_id: str, log, logged: bool = False) -> GraphQLError:
    """Give every error an `extensions.code`; hide what an unexpected exception would reveal."""
    original = error.original_error
    code = (error.extensions or {}).get("code")
    if original is not None and not isinstance(original, GraphQLError):
        log.error("unexpected error in request %s at %s", request_id, error.path, exc_info=None if logged else original)
        return GraphQLError(
            "Internal server error; quote the request id when you report it.",
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
    if isinstance(original, GraphQLError) and original.extensions and not code:
        code = original.extensions.get("code")
    if not code:
        code = next((c for marker, c in _CLIENT_MISTAKES if marker in error.message), None)
    if not code:
        code = "GRAPHQL_VALIDATION_FAILED" if error.path is None else "INTERNAL_SERVER_ERROR"
    return GraphQLError(error.message, nodes=error.nodes, path=error.path, extensions={**(error.extensions or {}), "code": code})
