"""How the domain says no, with no GraphQL in it: the schema turns these into what a client reads.

- `UserFacingError`: a mutation's business-rule refusal (a code from `ErrorCode` and the domain
  field at fault); the schema makes it one `userErrors` entry and rolls the mutation back.
- `Refusal`: a request refused outright (not signed in, a role that may not look, a malformed
  filter); the schema makes it a GraphQL error with `extensions.code`.
"""

from __future__ import annotations

from enum import Enum


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
    UNAVAILABLE = "UNAVAILABLE"


class UserFacingError(Exception):
    """A business-rule refusal of a mutation; turned into one `userErrors` entry.

    `field` names the value at fault as the domain names it (`"inn"`, `"database_ids"`,
    `"requisites.kpp"`); the schema maps it onto the mutation's argument path. The mutation's
    changes are rolled back, unless `keep_changes`: a refusal that must leave a trace (a wrong
    code counted towards its attempts, a reused token's login revoked)."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None, *, keep_changes: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.keep_changes = keep_changes


class Refusal(Exception):
    """A request refused outright; `code` becomes the GraphQL error's `extensions.code`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def unauthenticated() -> Refusal:
    return Refusal("UNAUTHENTICATED", "Sign in first: send a valid access token.")


def signed_out() -> Refusal:
    return Refusal("UNAUTHENTICATED", "This sign-in has ended (signed out, password reset): sign in again.")


def password_change_first() -> Refusal:
    return Refusal(
        "FORBIDDEN", "You signed in with a password sent to you: change it first (changePassword), then sign in again."
    )


def forbidden(what: str = "this field") -> Refusal:
    return Refusal("FORBIDDEN", f"Your role in this organization may not see {what}.")


def bad_user_input(message: str) -> Refusal:
    return Refusal("BAD_USER_INPUT", message)


def not_found(what: str, field: str | None = None) -> UserFacingError:
    """The one way to say "no such thing": the same words whether it is absent or not the caller's
    (nothing revealed). A mutation raises it as is; a read or subscription raises `refusal(...)` of it."""
    return UserFacingError(ErrorCode.NOT_FOUND, f"No such {what}.", field)


def refusal(error: UserFacingError) -> Refusal:
    """A mutation's refusal, said as a whole request's (a subscription, a field)."""
    return Refusal(error.code.value, error.message)
