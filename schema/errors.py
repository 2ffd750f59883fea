"""How a mutation says no: `userErrors` entries with a code from ErrorCode, and nothing changed."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from tortoise.transactions import in_transaction

from kabinet.errors import ErrorCode, UserFacingError
from schema.enums import described_enum

described_enum(ErrorCode, "Why a mutation refused: see `UserError`.", {
    "INVALID": "A value is malformed or breaks a rule; `field` names it. Correct it and retry.",
    "NOT_FOUND": "No such object, or not one the caller may see.",
    "FORBIDDEN": "The caller's role in the organization does not allow this.",
    "CONFLICT": "The state does not allow it now (already a member, already used, taken by another account).",
    "LIMIT_EXCEEDED": "A limit of the tariff or the deposit would be exceeded.",
    "EXPIRED": "A link, code or token is too old: ask for a new one.",
    "RATE_LIMITED": "Too many attempts: wait and try later.",
    "UNAUTHENTICATED": "The credentials or the token are not valid: sign in again.",
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
    def from_exception(cls, error: UserFacingError) -> UserError:
        return cls(field=error.field, message=error.message, code=error.code)


def transactional(payload: type[P]) -> Callable[[Callable[..., Awaitable[P]]], Callable[..., Awaitable[P]]]:
    """Run a mutation in one database transaction; a UserFacingError rolls it back and becomes
    `payload(userErrors=[…])`. What the mutation scheduled with `ctx.after_commit` (events, …)
    runs only once the transaction has committed. The one place refusals are turned into userErrors."""

    def decorate(mutation: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
        @functools.wraps(mutation)
        async def run(self: Any, info: strawberry.Info, *args: Any, **kwargs: Any) -> P:
            ctx = info.context
            refusal: UserFacingError | None = None
            try:
                async with in_transaction():
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
                return payload(user_errors=[UserError.from_exception(refusal)])
            return result

        return run

    return decorate
