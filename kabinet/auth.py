"""How a request says who sends it: the `Authorization: Bearer` header. The tokens themselves are
issued and checked in `resolvers/identity/tokens.py`."""

from __future__ import annotations


def bearer_token(header_value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
