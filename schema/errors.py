"""How a mutation says no: `userErrors` entries with a code from ErrorCode."""

from __future__ import annotations

import strawberry

from kabinet.errors import ErrorCode, UserFacingError

strawberry.enum(ErrorCode, description="Why a mutation refused: see `UserError`.")


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
