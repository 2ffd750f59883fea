"""The provider's staff: people who moderate organizations and publish releases.

A staff member is an ordinary user (`is_staff`), made by the provider's operator on the server
(`kabinet staff create`), with a verified e-mail: they sign in with the ordinary `login` mutation.
Disabling one ends their staff rights at once (every staff check reads `is_staff` afresh), their
account (`is_active`), and every sign-in they have (refresh tokens revoked, access tokens refused
once the revocation is announced, as a logout does).
"""

from __future__ import annotations

from foundation.settings import Settings
from models.identity import User
from resolvers.identity import addresses
from resolvers.identity import api_tokens, passwords
from resolvers.common import validation
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.logins import revoke_user_logins
from resolvers.provider.audit import ActorKind, record_action


async def create(settings: Settings, email: str, full_name: str, password: str, *, by: tuple[ActorKind, str]) -> User:
    """A new staff member, active, their e-mail taken as proven (the operator vouches for it)."""
    email = validation.email(email, "email")
    full_name = validation.non_empty(full_name, "name", "A name")
    password = validation.password(password, "password")
    existing = await User.get_or_none(email=email)
    if existing is not None:
        what = "a staff member" if existing.is_staff else "a user (a customer's account)"
        raise UserFacingError(ErrorCode.CONFLICT, f"{email} is already {what}; staff need an e-mail of their own.", "email")
    user = await User.create(
        full_name=full_name, password_hash=await passwords.hashed(settings, password), is_staff=True, is_active=True,
    )
    await addresses.prove(settings, user, email=email, field="email")
    await record_action(by[0], by[1], "staff.create", email, {"name": full_name})
    return user


async def members() -> list[User]:
    """The staff, oldest first."""
    return list(await User.filter(is_staff=True).order_by("created_at", "email"))


async def disable(ctx: RequestContext, email: str, *, by: tuple[ActorKind, str]) -> tuple[User, int]:
    """No longer staff, no longer able to sign in, every sign-in ended: the user and the number of
    refresh tokens revoked. `ctx` carries the process's ended logins: they are told once the
    caller's transaction has committed (`ctx.run_after_commit()`)."""
    email = validation.email(email, "email")
    user = await User.get_or_none(email=email)
    if user is None or not user.is_staff:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No staff member has the e-mail {email}.", "email")
    user.is_staff, user.is_active = False, False
    await user.save(update_fields=["is_staff", "is_active"])
    revoked = await revoke_user_logins(ctx, user.id)
    # the API tokens the account made for an organization it belongs to: their open sockets too
    await api_tokens.revoke_accounts_tokens(ctx, user.id)
    await record_action(by[0], by[1], "staff.disable", email, {"refreshTokensRevoked": revoked})
    return user, revoked
