"""Signing up: an inactive account, a confirmation code, and the account once the code comes back.

Confirmation codes (here, password_reset.py and email_change.py) follow resolvers/identity/codes.py: 6
digits, stored as an HMAC (never the code itself), valid 15 minutes (EXPIRED), single use (INVALID
once used or replaced by a newer one: only the latest code of an address or user counts), 5 wrong
answers kill the code (RATE_LIMITED afterwards), at most one code a minute and 5 an hour per
address and 20 an hour per client address (settings; RATE_LIMITED beyond).

No answer tells whether an address has an account: signing up with a taken e-mail or phone (or
recovering the password of an unknown login, or changing the e-mail to another account's) answers
exactly as it would otherwise, stores a code that goes nowhere (so that attempts, expiry and the
limits behave the same), and whoever reads the address the code would have gone to gets a notice
instead. Only the one who holds an address learns about it.

A User with `is_active=False` is a sign-up waiting for its code and nothing else: it holds its
e-mail and phone unproven (resolvers/identity/addresses.py), cannot sign in, and whoever registers (or
proves the address) later replaces it (`release_pending_sign_ups`). One that lacks its e-mail or
phone is a stand-in for a sign-up at an address an account has proven (`_is_stand_in`): it can
never be confirmed. The code proves the address it went to; the other stays unproven on the
account (a login once proven: `requestEmailChange` with it), and reserves nothing meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from models.identity import CodePurpose, User, VerificationCode
from resolvers.identity import addresses
from resolvers.common import audit
from resolvers.identity import codes
from resolvers.common import outbox
from resolvers.identity import passwords
from resolvers.common import validation
from resolvers.identity.addresses import address_taken, release_pending_sign_ups
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.logins import SignedIn, sign_in_user


class ConfirmationChannel(str, Enum):
    """Where a sign-up's confirmation code goes."""

    SMS = "SMS"
    EMAIL = "EMAIL"


@dataclass
class CodeSent:
    """A code was sent: to which (masked) address, until when it works."""

    user: User | None
    sent_to: str
    expires_at: datetime


SIGN_UP_CODE = codes.CodeRules(CodePurpose.SIGN_UP)




async def register(
    ctx: RequestContext, full_name: str, phone: str, email: str, password: str,
    channel: ConfirmationChannel = ConfirmationChannel.SMS,
) -> CodeSent:
    """An inactive account and a confirmation code (by SMS unless asked otherwise).

    An e-mail or phone that already belongs to an account is answered like any other: the sign-up
    is a stand-in holding only the free addresses, and its code goes nowhere (`_send_sign_up_code`).
    """
    full_name = validation.non_empty(full_name, "full_name", "Full name")
    phone = validation.phone(phone, "phone")
    email = validation.email(email, "email")
    password = validation.password(password, "password")
    if channel == ConfirmationChannel.SMS:
        outbox.require_sms(ctx.settings, "confirm_by")
    target = phone if channel == ConfirmationChannel.SMS else email
    await codes.require_may_send(ctx, SIGN_UP_CODE, target)
    await release_pending_sign_ups(email=email, phone=phone)
    email_taken, phone_taken = await address_taken(email=email), await address_taken(phone=phone)
    user = await User.create(
        unproven_email=None if email_taken else email, unproven_phone=None if phone_taken else phone, full_name=full_name,
        password_hash=await passwords.hashed(ctx.settings, password), is_active=False,
    )
    row = await _send_sign_up_code(ctx, user, target)
    return CodeSent(user, codes.mask(target), row.expires_at)


def _is_stand_in(user: User) -> bool:
    """A sign-up that gave an address an account has proven: it lacks that address and is never
    confirmed (a real sign-up always holds both its e-mail and its phone)."""
    return not user.is_active and (user.unproven_email is None or user.unproven_phone is None)


async def _send_sign_up_code(ctx: RequestContext, user: User, target: str) -> VerificationCode:
    """The code to `target`; for a stand-in a code that goes nowhere (stored all the same, so that
    attempts, expiry and the sending limits behave alike) and, to `target`, a notice: this address
    has an account (sign in or recover the password), or the other address has one."""
    row, code = await codes.issue(ctx, SIGN_UP_CODE, target, user=user)  # supersedes the earlier ones
    if not _is_stand_in(user):
        if "@" in target:
            await outbox.email(target, "sign_up_code_email", code=code, minutes=SIGN_UP_CODE.minutes)
        else:
            await outbox.sms(target, "sign_up_code_sms", code=code, minutes=SIGN_UP_CODE.minutes)
        return row
    own_address = target not in (user.unproven_email, user.unproven_phone)
    if "@" in target:
        await outbox.email(target, "sign_up_address_taken_email" if own_address else "sign_up_other_taken_email")
    else:
        await outbox.sms(target, "sign_up_address_taken_sms" if own_address else "sign_up_other_taken_sms")
    return row


async def _pending_sign_up(registration_id: uuid.UUID, *, lock: bool = True) -> User:
    query = User.filter(id=registration_id, is_active=False)
    user = await (query.select_for_update() if lock else query).first()
    if user is None:
        raise UserFacingError(
            ErrorCode.INVALID, "No sign-up waits for confirmation under this id (it was confirmed or replaced).",
            "registration_id",
        )
    return user


async def resend_registration_code(ctx: RequestContext, registration_id: uuid.UUID) -> CodeSent:
    """A new code to the same address (the previous one stops working)."""
    user = await _pending_sign_up(registration_id, lock=False)
    previous = await codes.latest(SIGN_UP_CODE, user_id=user.id)
    target = previous.target if previous else user.unproven_phone
    if "@" not in target:
        outbox.require_sms(ctx.settings, "registration_id")
    await codes.require_may_send(ctx, SIGN_UP_CODE, target)  # before the row lock (see codes.require_may_send)
    user = await _pending_sign_up(registration_id)
    row = await _send_sign_up_code(ctx, user, target)
    return CodeSent(user, codes.mask(target), row.expires_at)


async def confirm_registration(ctx: RequestContext, registration_id: uuid.UUID, code: str) -> SignedIn:
    """The right code activates the account, proves the address it went to (a login from now on), signs in."""
    user = await _pending_sign_up(registration_id)
    row = await codes.latest(SIGN_UP_CODE, user_id=user.id)
    await codes.check(ctx, SIGN_UP_CODE, row, code)
    if _is_stand_in(user):  # its code went nowhere: even a right guess makes no account
        raise UserFacingError(ErrorCode.INVALID, f"{codes.WRONG_CODE}: check it, or {SIGN_UP_CODE.renew}.", "code")
    user.is_active = True
    await user.save(update_fields=["is_active"])
    await addresses.prove(ctx.settings, user, **{"email" if "@" in row.target else "phone": row.target})
    signed_in = await sign_in_user(ctx, user)
    await audit.record(ctx, "user.signed_up", organization_id=None, object_type="User", object_id=user.id)
    return signed_in
