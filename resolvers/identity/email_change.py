"""Changing one's e-mail: a code to the new address (codes as in sign_ups.py), the switch when it
comes back; an address of another account is answered the same, and only that address is told.
The same proves an e-mail the account gave but has not proven yet (resolvers/identity/addresses.py)."""

from __future__ import annotations

from models.identity import CodePurpose, User
from resolvers.identity import addresses
from resolvers.common import audit
from resolvers.identity import codes
from resolvers.common import outbox
from resolvers.common import validation
from resolvers.identity.addresses import address_taken
from resolvers.common.context import RequestContext
from resolvers.identity.logins import viewer_user
from resolvers.identity.sign_ups import CodeSent

EMAIL_CHANGE_CODE = codes.CodeRules(CodePurpose.EMAIL_CHANGE)


async def request_email_change(ctx: RequestContext, new_email: str) -> CodeSent:
    """A code to the NEW address; the address changes only when that code comes back.

    An address of another account is answered the same (nothing tells that it has an account): its
    code goes nowhere, and the address is told that someone tried to take it.
    """
    user = await viewer_user(ctx)
    new_email = validation.email(new_email, "new_email")
    if new_email == user.email:
        raise validation.invalid("new_email", "This is already your e-mail.")
    await codes.require_may_send(ctx, EMAIL_CHANGE_CODE, new_email)
    taken = await address_taken(email=new_email, exclude=user.id)
    row, code = await codes.issue(ctx, EMAIL_CHANGE_CODE, new_email, user=user)
    if taken:  # the code goes nowhere
        await outbox.email(new_email, "email_change_address_taken")
    else:
        await outbox.email(new_email, "email_change_code_email", code=code, minutes=EMAIL_CHANGE_CODE.minutes)
    return CodeSent(user, codes.mask(new_email), row.expires_at)


async def confirm_email_change(ctx: RequestContext, code: str) -> User:
    """Switch to the address the latest code went to; the old address is told about it."""
    user = await viewer_user(ctx)
    row = await codes.latest(EMAIL_CHANGE_CODE, user_id=user.id)
    await codes.check(ctx, EMAIL_CHANGE_CODE, row, code)
    new_email = row.target
    old_email = user.email
    await addresses.prove(ctx.settings, user, email=new_email)
    if old_email:
        await outbox.email(old_email, "email_changed", new_email=new_email)
    await audit.record(
        ctx, "user.email_changed", organization_id=None, object_type="User", object_id=user.id,
        details={"from": old_email, "to": new_email},
    )
    return user
