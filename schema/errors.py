"""The GraphQL face of the domain's refusals (`resolvers/common/errors.py`).

A mutation's `UserFacingError` becomes a `userErrors` entry (code from ErrorCode, the field mapped
onto the mutation's arguments) and nothing changes; a `Refusal` becomes a GraphQL error with
`extensions.code`; every other error gets a code too, and an unexpected one reveals nothing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from resolvers.common.unit_of_work import change

from graphql import GraphQLError

from resolvers.common import errors as refusals
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError
from resolvers.common.permissions import TOKEN_MUTATIONS
from schema.enums import described_enum
from schema.strawberry_internals import raw_info

described_enum(ErrorCode, "Why a mutation refused: see `UserError`.", {
    "INVALID": "A value is malformed or breaks a rule; `field` names it. Correct it and retry.",
    "NOT_FOUND": "No such object, or not one the caller may see.",
    "FORBIDDEN": "The caller's role in the organization does not allow this.",
    "CONFLICT": "The state does not allow it now (already a member, already used, taken by another account).",
    "LIMIT_EXCEEDED": "A limit of the tariff or the deposit would be exceeded.",
    "EXPIRED": "A link, code or token is too old: ask for a new one.",
    "RATE_LIMITED": "Too many attempts: wait and try later.",
    "UNAUTHENTICATED": "The credentials or the token are not valid: sign in again.",
    "UNAVAILABLE": "This server cannot do it as configured (e.g. SMS are not configured): use another way, "
    "such as e-mail.",
})

P = TypeVar("P")


@strawberry.type(description="A business-rule failure of a mutation; the mutation changed nothing.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path of the input field at fault, e.g. ["input", "inn"]; null when no single field is.'
    )
    message: str = strawberry.field(description="What went wrong, for a person to read.")
    code: ErrorCode = strawberry.field(description="What went wrong, for a program to act on.")

    @classmethod
    def from_exception(cls, error: UserFacingError, info: strawberry.Info | None = None) -> UserError:
        return cls(field=argument_path(info, error.field), message=error.message, code=error.code)


def argument_path(info: strawberry.Info | None, field: str | list[str] | None) -> list[str] | None:
    """The mutation's argument path of a domain field name: `"database_ids"` is `["databaseIds"]`
    when the mutation takes a `databaseIds` argument, `["input", "databaseIds"]` when it takes an
    `input` object instead; `"requisites.kpp"` is `[..., "requisites", "kpp"]`."""
    if field is None or isinstance(field, list):
        return field
    parts = [_camel(part) for part in field.split(".")]
    if info is None:
        return parts
    arguments = raw_info(info).parent_type.fields[raw_info(info).field_name].args
    return parts if parts[0] in arguments or "input" not in arguments else ["input", *parts]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def transactional(payload: type[P]) -> Callable[[Callable[..., Awaitable[P]]], Callable[..., Awaitable[P]]]:
    """Run a mutation as one unit of work (resolvers/common/unit_of_work.py `change`: its events are
    announced once it has committed); a UserFacingError rolls it back and becomes
    `payload(userErrors=[…])`, unless it keeps its changes (then they commit and are announced).
    What the mutation scheduled with `ctx.after_commit` runs only once the transaction has committed.
    The one place refusals are turned into userErrors."""

    def decorate(mutation: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
        @functools.wraps(mutation)
        async def run(self: Any, info: strawberry.Info, *args: Any, **kwargs: Any) -> P:
            ctx = info.context
            if (refused := token_refusal(info)) is not None:  # an API token's writes
                return payload(user_errors=[UserError.from_exception(refused)])
            refusal: UserFacingError | None = None
            try:
                async with change(ctx, ctx.broadcast):
                    try:
                        result = await mutation(self, info, *args, **kwargs)
                    except UserFacingError as kept:
                        if not kept.keep_changes:
                            raise
                        refusal = kept
            except UserFacingError as rolled_back:
                refusal = rolled_back
                ctx.discard_after_commit()
            await ctx.run_after_commit()
            if refusal is not None:
                return payload(user_errors=[UserError.from_exception(refusal, info)])
            return result

        return run

    return decorate


def token_refusal(info: strawberry.Info) -> UserFacingError | None:
    """FORBIDDEN when an API token sends a mutation its grant does not name (TOKEN_MUTATIONS), else
    None. `transactional` asks it first; a mutation that does work before its transaction (checking a
    password: `changePassword`) asks it before that work, so a token learns nothing from it."""
    ctx = info.context
    grant = ctx.viewer.grant if getattr(ctx, "viewer", None) is not None else None
    if grant is not None and not grant.may_call(raw_info(info).field_name):
        return token_may_not(raw_info(info).field_name)
    return None


def token_may_not(mutation: str) -> UserFacingError:
    """FORBIDDEN: an API token whose scopes do not write this mutation's domain, or a mutation no token
    may call (resolvers/common/permissions.py TOKEN_MUTATIONS)."""
    domain = TOKEN_MUTATIONS.get(mutation)
    if domain is None:
        return UserFacingError(ErrorCode.FORBIDDEN, f"An API token may not call {mutation}: sign in as a person to do it.")
    return UserFacingError(ErrorCode.FORBIDDEN, f"This API token may not call {mutation}: it needs the {domain}:write scope.")


def graphql_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def as_graphql_error(refusal: Refusal) -> GraphQLError:
    return graphql_error(refusal.code, refusal.message)


def signed_out() -> GraphQLError:
    return as_graphql_error(refusals.signed_out())


def forbidden(what: str = "this field") -> GraphQLError:
    return as_graphql_error(refusals.forbidden(what))


_CLIENT_MISTAKES = (
    ("Syntax Error", "GRAPHQL_PARSE_FAILED"),
    ("Variable '$", "BAD_USER_INPUT"),
    ("Expected value of type", "BAD_USER_INPUT"),
)


def shape_error(error: GraphQLError, request_id: str, log, logged: bool = False) -> GraphQLError:
    """Give every error an `extensions.code` and the request's id (`requestId`, as in the server's log
    line); hide what an unexpected exception would reveal."""
    original = error.original_error
    code = (error.extensions or {}).get("code")
    ids = {"requestId": request_id} if request_id and request_id != "-" else {}
    if isinstance(original, Refusal):
        return GraphQLError(error.message, nodes=error.nodes, path=error.path,
                            extensions={**(error.extensions or {}), "code": original.code, **ids})
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
    return GraphQLError(error.message, nodes=error.nodes, path=error.path, extensions={**(error.extensions or {}), "code": code, **ids})
