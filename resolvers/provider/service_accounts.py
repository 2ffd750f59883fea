"""Service accounts: the provider's programs (its accounting, its service manager) writing its data.

A service account is a SERVICE token of the programs' one token store (resolvers/identity/program_tokens.py:
hashed, named, listed with its last use, revocable) acting for every organization, with scopes of
records.SCOPES. Tokens read `kps_<random>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from models.program_tokens import ProgramToken, TokenKind
from resolvers.identity import program_tokens
from resolvers.provider.audit import ActorKind
from resolvers.provider.records import SCOPES, ProviderActor

TOKEN_PREFIX = program_tokens.PREFIXES[TokenKind.SERVICE]


def scopes_of(value: str | Iterable[str]) -> list[str]:
    """The scopes named (comma-separated, or a list), each one of records.SCOPES, in their order there."""
    return program_tokens.scopes_of(value, tuple(SCOPES))


async def create(name: str, scopes: str | Iterable[str], *, by: tuple[ActorKind, str]) -> tuple[ProgramToken, str]:
    """A new service account and its token: the only time the token is seen (its hash is kept)."""
    return await program_tokens.create(TokenKind.SERVICE, name, scopes_of(scopes), organization_codes=None, by=by)


async def accounts() -> list[ProgramToken]:
    """Every service account, revoked ones too, oldest first."""
    return await program_tokens.tokens(TokenKind.SERVICE)


async def revoke(name: str, *, by: tuple[ActorKind, str]) -> ProgramToken:
    """Revoke an account's token: its next request is refused."""
    return await program_tokens.revoke(TokenKind.SERVICE, name, by=by)


async def authenticate(token: str | None) -> ProviderActor | None:
    """The service account a bearer token belongs to, as an actor with its scopes; None for no token,
    an unknown one or a revoked one."""
    program = await program_tokens.authenticate(TokenKind.SERVICE, token)
    if program is None:
        return None
    return ProviderActor(ActorKind.SERVICE.value, program.name, program.scopes)
