"""Signing in and out: login with lockout, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from resolvers.identity import passwords
from resolvers.identity.tokens import AccessToken, hash_opaque_token, issue_access_token, new_opaque_token
from foundation.clock import utcnow
from resolvers.common.context import RequestContext, Viewer
from resolvers.common.errors import ErrorCode, UserFacingError, unauthenticated
from models.identity import RefreshToken, User
from models.organizations import Invite
from models.locks import one_at_a_time
from resolvers.identity import throttle

PHONE_PATTERN = re.compile(r"^\+7\d{10}$")
WRONG_CREDENTIALS = "Wrong login or password."


@dataclass
class SignedIn:
    user: User
    access: AccessToken
    refresh_token: str


def normalize_login(login: str) -> str:
    """E-mails compare case-insensitively; phones are kept as +7XXXXXXXXXX."""
    login = login.strip()
    if "@" in login:
        return login.lower()
    digits = re.sub(r"[^\d+]", "", login)
    if re.fullmatch(r"8\d{10}", digits):
        digits = "+7" + digits[1:]
    elif re.fullmatch(r"7\d{10}", digits):
        digits = "+" + digits
    return digits


async def find_user_by_login(login: str) -> User | None:
    if "@" in login:
        return await User.get_or_none(email=login)
    if PHONE_PATTERN.match(login):
        return await User.get_or_none(phone=login)
    return None


async def check_password(ctx: RequestContext, login_name: str, password: str) -> User | Invite:
    """The account a login and password open, or RATE_LIMITED (this login's or this client address's
    attempts are used up) or INVALID. Called outside any transaction: the attempt is claimed and
    counted by statements that commit at once, and the hash is checked off the event loop
    (`resolvers/identity/throttle.py`, `resolvers/identity/passwords.py`); the caller signs in in a transaction after.
    An `Invite` for the first sign-in of a member the owner created (`invitations.accept_created_member`)."""
    settings, address = ctx.settings, ctx.client_address
    key = normalize_login(login_name)[:254]
    if not await throttle.claim_address(settings, address):
        raise UserFacingError(ErrorCode.RATE_LIMITED, "Too many wrong passwords from your address. Try again later.")
    if not await throttle.claim_login(settings, key):
        await throttle.give_back_address(address)
        raise _locked()
    user = await find_user_by_login(key)
    if user is None or not user.is_active:
        # A member the owner created signs in first with the password the letter carried: the
        # invitation it belongs to, accepted by the caller (resolvers/organizations/invitations.py).
        from resolvers.organizations.invitations import invited_with_password  # it imports this module

        invite = await invited_with_password(settings, key, password)
        if invite is not None:
            await throttle.login_succeeded(key)
            await throttle.give_back_address(address)
            return invite
    # An unconfirmed sign-up (is_active False) answers exactly like a wrong password.
    if not await passwords.verify(settings, user.password_hash if user and user.is_active else None, password):
        await throttle.login_failed(settings, key)
        raise UserFacingError(ErrorCode.INVALID, WRONG_CREDENTIALS, "password")
    await throttle.login_succeeded(key)
    await throttle.give_back_address(address)
    return user


def _locked() -> UserFacingError:
    return UserFacingError(
        ErrorCode.RATE_LIMITED, "Too many wrong passwords: this login is locked for a while. Try again later."
    )


async def _sign_in(ctx: RequestContext, user: User, login_id: uuid.UUID) -> SignedIn:
    """Issue tokens for a login; the rest of this request (the payload's fields, audit entries)
    then runs as that user, as if they had sent the new access token."""
    token, token_hash = new_opaque_token()
    await RefreshToken.create(
        user=user, login_id=login_id, token_hash=token_hash,
        expires_at=utcnow() + timedelta(days=ctx.settings.refresh_token_days),
    )
    must_change = bool(user.must_change_password)
    access = issue_access_token(ctx.settings, user.id, login_id, must_change_password=must_change)
    ctx.viewer = Viewer(user.id, login_id, access.expires_at, must_change)
    ctx.forget_memberships()
    return SignedIn(user, access, token)


async def sign_in_user(ctx: RequestContext, user: User) -> SignedIn:
    """Start a new login for a user who just proved who they are (e.g. accepted an invite)."""
    return await _sign_in(ctx, user, uuid.uuid4())


async def refresh(ctx: RequestContext, refresh_token: str) -> SignedIn:
    """Exchange a refresh token for new tokens; a token used twice revokes its whole login.

    Runs inside the mutation's transaction, holding its login's chain (`_hold_chains`) until the
    commit: a logout or a second use of the token waits, and then sees the new token. The
    conditional UPDATE that claims the token is what makes two uses of one token end as one
    success and one revoked login where nothing is locked (SQLite runs one writer at a time).
    """
    now = utcnow()
    row = await RefreshToken.get_or_none(token_hash=hash_opaque_token(refresh_token))
    if row is not None:
        await _hold_chains([row.login_id])
        await row.refresh_from_db()  # as the chain stands once no other change of it is in flight
    if row is None or row.revoked_at is not None:
        raise UserFacingError(ErrorCode.INVALID, "This refresh token is not valid; sign in again.", "refresh_token")
    if row.expires_at <= now:
        raise UserFacingError(ErrorCode.EXPIRED, "This refresh token has expired; sign in again.", "refresh_token")
    claimed = await RefreshToken.filter(id=row.id, used_at=None, revoked_at=None).update(used_at=now)
    if not claimed:
        await revoke_login(ctx, row.login_id)
        raise UserFacingError(
            ErrorCode.INVALID, "This refresh token was already used; the login is revoked, sign in again.",
            ["refreshToken"], keep_changes=True,
        )
    return await _sign_in(ctx, await User.get(id=row.user_id), row.login_id)


async def _hold_chains(login_ids: list[uuid.UUID]) -> None:
    """Hold these logins' refresh-token chains until the transaction ends (PostgreSQL; SQLite has one
    writer at a time). Every change of a chain (a refresh: claim and insert; a revocation) takes it
    first, so under READ COMMITTED a revocation's UPDATE starts after a racing refresh has committed
    its new token and sees it, and a refresh after a revocation sees its token revoked. Sorted, so
    two holders of several chains never deadlock."""
    await one_at_a_time(RefreshToken, [f"refresh-chain:{login_id}" for login_id in sorted(set(login_ids))])


async def revoke_login(ctx: RequestContext, login_id: uuid.UUID) -> int:
    """End a sign-in session: its refresh tokens revoked, its access tokens refused from the commit on."""
    await _hold_chains([login_id])
    revoked = await RefreshToken.filter(login_id=login_id, revoked_at=None).update(revoked_at=utcnow())
    _end_after_commit(ctx, [login_id])
    return revoked


async def revoke_user_logins(ctx: RequestContext, user_id: uuid.UUID) -> int:
    """End every sign-in session of an account (a password reset, an account disabled)."""
    live = RefreshToken.filter(user_id=user_id, revoked_at=None)
    login_ids = list(set(await live.values_list("login_id", flat=True)))
    await _hold_chains(login_ids)  # then the UPDATE (a new statement) sees what racing refreshes committed
    revoked = await live.update(revoked_at=utcnow())
    _end_after_commit(ctx, login_ids)
    return revoked


def _end_after_commit(ctx: RequestContext, login_ids: list[uuid.UUID]) -> None:
    """Once the revocation has committed, every process refuses the logins' access tokens and closes
    their WebSockets (`resolvers.identity.sign_ins`); not before, so a rolled back revocation ends nothing."""
    ended_logins = ctx.ended_logins
    ctx.after_commit(lambda: ended_logins.end_everywhere(login_ids))


async def logout(ctx: RequestContext, refresh_token: str) -> None:
    row = await RefreshToken.get_or_none(token_hash=hash_opaque_token(refresh_token))
    if row is None:
        raise UserFacingError(ErrorCode.INVALID, "This refresh token is not valid.", "refresh_token")
    await revoke_login(ctx, row.login_id)


async def viewer_user(ctx: RequestContext) -> User:
    viewer = ctx.require_viewer()
    user = await User.get_or_none(id=viewer.user_id)
    if user is None:
        raise unauthenticated()
    return user
