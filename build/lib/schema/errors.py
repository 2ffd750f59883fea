"""How a mutation says no: `userErrors` entries with a code from ErrorCode, and nothing changed."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from tortoise.transactions import in_transaction

from kabinet.errors import ErrorCode, UserFacingError

strawberry.enum(ErrorCode, description="Why a mutation refused: see `UserError`.")

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
