"""Recovering a forgotten password with a code sent to the login (codes as in sign_ups.py); the
answer never tells whether the login has an account. Only a proven address is a login
(resolvers/identity/addresses.py): one an account gave but never proved recovers nothing."""

from __future__ import annotations

from tortoise.expressions import Q

from models.identity import CodePurpose, LoginThrottle, User
from resolvers.common import audit
from resolvers.identity import codes
from resolvers.common import outbox
from resolvers.identity import passwords
from resolvers.common import validation
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.logins import SignedIn, normalize_login, revoke_user_logins, sign_in_user

PASSWORD_RESET_CODE = codes.CodeRules(CodePurpose.PASSWORD_RESET)


def _login_key(login: str) -> str:
    key = normalize_login(login)
    return validation.email(key, "login") if "@" in key else validation.phone(key, "login")


async def request_password_reset(ctx: RequestContext, login: str) -> None:
    """Send a code to the login (e-mail or phone) if it is an account's; answer the same either way.

    For an unknown login a code that goes nowhere is stored, so that wrong answers, expiry, the
    lockout and the sending limits (RATE_LIMITED; the previous code keeps working) behave exactly
    as for a real one.
    """
    key = _login_key(login)
    if "@" not in key:
        outbox.require_sms(ctx.settings, "login")
    await codes.require_may_send(ctx, PASSWORD_RESET_CODE, key)
    user = await User.get_or_none(Q(email=key) if "@" in key else Q(phone=key), is_active=True)
    _, code = await codes.issue(ctx, PASSWORD_RESET_CODE, key, user=user)
    if user is None:
        return
    if "@" in key:
        await outbox.email(key, "password_reset_code_email", code=code, minutes=PASSWORD_RESET_CODE.minutes)
    else:
        await outbox.sms(key, "password_reset_code_sms", code=code, minutes=PASSWORD_RESET_CODE.minutes)


async def reset_password(ctx: RequestContext, login: str, code: str, new_password: str) -> SignedIn:
    """The right code sets the new password, ends every login of the account, and signs in afresh."""
    key = _login_key(login)
    new_password = validation.password(new_password, "new_password")
    row = await codes.latest(PASSWORD_RESET_CODE, target=key)
    await codes.check(ctx, PASSWORD_RESET_CODE, row, code)
    user = await User.filter(id=row.user_id, is_active=True).select_for_update().first() if row.user_id else None
    if user is None or key not in (user.email, user.phone):
        raise UserFacingError(ErrorCode.INVALID, "This code is not right: check it, or request a new one.", "code")
    user.password_hash = await passwords.hashed(ctx.settings, new_password)
    user.must_change_password = False  # a password of their own now (resolvers/organizations/people.py)
    await user.save(update_fields=["password_hash", "must_change_password"])
    revoked = await revoke_user_logins(ctx, user.id)
    await LoginThrottle.filter(login__in=[v for v in (user.email, user.phone) if v]).delete()
    signed_in = await sign_in_user(ctx, user)
    await audit.record(
        ctx, "user.password_reset", organization_id=None, object_type="User", object_id=user.id,
        details={"via": "phone" if key == user.phone else "email", "revoked_refresh_tokens": revoked},
    )
    return signed_in
