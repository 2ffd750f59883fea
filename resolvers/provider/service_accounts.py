"""Service accounts: the provider's programs (its accounting, its service manager) writing its data.

A service account has a name, scopes (records.SCOPES) and one bearer token, shown once when it is
made; only the token's sha256 is kept. Tokens read `kps_<random>` so that logs and leak scanners
recognise one. A revoked account is refused from its revocation on (every request looks the token
up: no cache to outlive it). `last_used_at` is written at most once a minute per account, so a busy
integration costs a read per request, not a write.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from tortoise.expressions import Q

from kabinet.clock import utcnow
from models.provider import ServiceAccount
from resolvers.errors import ErrorCode, UserFacingError
from resolvers.provider.audit import ActorKind, record_action
from resolvers.provider.records import SCOPES, ProviderActor
from resolvers.tokens import hash_opaque_token

TOKEN_PREFIX = "kps_"  # kabinet provider service
LAST_USED_EVERY = dt.timedelta(minutes=1)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def scopes_of(value: str | Iterable[str]) -> list[str]:
    """The scopes named (comma-separated, or a list), each one of records.SCOPES, in their order there."""
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {name.strip() for name in names if name and name.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise UserFacingError(ErrorCode.INVALID, f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(SCOPES)}.", "scopes")
    if not wanted:
        raise UserFacingError(ErrorCode.INVALID, f"Name at least one scope: {', '.join(SCOPES)}.", "scopes")
    return [scope for scope in SCOPES if scope in wanted]


async def create(name: str, scopes: str | Iterable[str], *, by: tuple[ActorKind, str]) -> tuple[ServiceAccount, str]:
    """A new service account and its token: the only time the token is seen (its hash is kept)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise UserFacingError(ErrorCode.INVALID, "A service account's name is 1 to 100 characters.", "name")
    scopes = scopes_of(scopes)
    if await ServiceAccount.exists(name=name):
        raise UserFacingError(
            ErrorCode.CONFLICT, f"A service account named {name!r} exists already (names stay taken after a revocation).", "name"
        )
    token = new_token()
    account = await ServiceAccount.create(name=name, token_hash=hash_opaque_token(token), scopes=scopes)
    await record_action(by[0], by[1], "token.create", name, {"scopes": scopes})
    return account, token


async def accounts() -> list[ServiceAccount]:
    """Every service account, revoked ones too, oldest first."""
    return list(await ServiceAccount.all().order_by("created_at", "name"))


async def revoke(name: str, *, by: tuple[ActorKind, str]) -> ServiceAccount:
    """Revoke an account's token: its next request is refused."""
    account = await ServiceAccount.get_or_none(name=(name or "").strip())
    if account is None:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No service account is named {name!r}.", "name")
    if account.revoked_at is not None:
        raise UserFacingError(ErrorCode.CONFLICT, f"The service account {name!r} was revoked on {account.revoked_at:%Y-%m-%d %H:%M} UTC.", "name")
    account.revoked_at = utcnow()
    await account.save(update_fields=["revoked_at"])
    await record_action(by[0], by[1], "token.revoke", account.name)
    return account


async def authenticate(token: str | None) -> ProviderActor | None:
    """The service account a bearer token belongs to, as an actor with its scopes; None for no token,
    an unknown one or a revoked one."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    account = await ServiceAccount.get_or_none(token_hash=hash_opaque_token(token), revoked_at=None)
    if account is None:
        return None
    now = utcnow()
    if account.last_used_at is None or account.last_used_at <= now - LAST_USED_EVERY:
        # conditional: of the requests arriving together, one writes
        await ServiceAccount.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY), id=account.id
        ).update(last_used_at=now)
    return ProviderActor(ActorKind.SERVICE.value, account.name, frozenset(account.scopes))
