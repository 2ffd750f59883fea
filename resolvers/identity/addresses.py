"""Addresses are logins only once proven.

`User.email` and `User.phone` hold only addresses proven by a code (a sign-up's, an e-mail
change's, an invitation's link, the operator vouching for a staff member): they are the logins,
unique, and everything that finds a person by address (login, password reset, invitations, the
known-contact approval, the cluster's session owners, whom a notice goes to) reads only them. An
address given but not yet proven (the e-mail of a sign-up confirmed by SMS, the phone of one
confirmed by e-mail, the phone an invited newcomer types) waits in `unproven_email` /
`unproven_phone`: shown to its account, a way into no account, reserving nothing.

So a second column rather than a partial unique index: a lookup by `email=` cannot find an
unproven address by mistake, whoever writes it later, and the unique constraint on the proven
columns stays as it was (changing a column's constraint would rebuild SQLite's user table, which
every other table references).

`prove` is the one way an address becomes proven. Another account holding it unproven loses it,
and its owner is told (an e-mail to its proven e-mail, else an SMS to its proven phone where SMS
can go, else nothing); unconfirmed sign-ups holding it are dropped (`release_pending_sign_ups`).
"""

from __future__ import annotations

import uuid

from tortoise.expressions import Q

from foundation.settings import Settings
from models.identity import CodePurpose, User, VerificationCode
from models.locks import one_at_a_time
from resolvers.identity import codes
from resolvers.common import outbox
from resolvers.common.errors import ErrorCode, UserFacingError


async def address_taken(email: str | None = None, phone: str | None = None, *, exclude: uuid.UUID | None = None) -> bool:
    """Whether an account (other than `exclude`) holds this e-mail (or phone) proven."""
    query = User.filter(email=email) if email else User.filter(phone=phone)
    if exclude is not None:
        query = query.exclude(id=exclude)
    return await query.exists()


async def release_pending_sign_ups(
    *, email: str | None = None, phone: str | None = None, keep: uuid.UUID | None = None
) -> None:
    """Unconfirmed sign-ups (but `keep`) giving this e-mail or phone, or waiting for a code sent to
    it (a stand-in holds no taken address), are deleted: whoever proves the address, or signs up
    with it later, replaces them. The codes sent to them stay, unlinked, so that the per-address
    sending limits still count them."""
    addresses = [a for a in (email, phone) if a]
    if not addresses:
        return
    where = [Q(unproven_email=email)] if email else []
    where += [Q(unproven_phone=phone)] if phone else []
    pending = set(await User.filter(Q(*where, join_type="OR"), is_active=False).values_list("id", flat=True))
    pending |= set(await VerificationCode.filter(
        purpose=CodePurpose.SIGN_UP, target__in=addresses, user__is_active=False
    ).values_list("user_id", flat=True))
    pending.discard(keep)
    pending.discard(None)
    if pending:
        await VerificationCode.filter(user_id__in=list(pending)).update(user_id=None)
        await User.filter(id__in=list(pending)).delete()


async def prove(settings: Settings, user: User, *, email: str | None = None, phone: str | None = None,
                field: str = "code") -> None:
    """`user` holds this e-mail (or phone) as proven from now on, a login; CONFLICT on `field` when
    another account proved it meanwhile. Whoever else gave it unproven gives it up (and is told)."""
    kind, address = ("email", email) if email else ("phone", phone)
    await one_at_a_time(User, [f"prove-address:{address}"])  # two proofs at once: one CONFLICT, never a 500
    if await address_taken(**{kind: address}, exclude=user.id):
        raise UserFacingError(ErrorCode.CONFLICT, f"This {'e-mail' if email else 'phone'} has meanwhile been "
                              "proven by another account.", field)
    await release_pending_sign_ups(**{kind: address}, keep=user.id)
    for holder in await User.filter(**{f"unproven_{kind}": address}).exclude(id=user.id):
        await _detach(settings, holder, kind)
    setattr(user, kind, address)
    setattr(user, f"{kind}_verified", True)
    if getattr(user, f"unproven_{kind}") == address:
        setattr(user, f"unproven_{kind}", None)
    await user.save(update_fields=[kind, f"{kind}_verified", f"unproven_{kind}"])


async def _detach(settings: Settings, holder: User, kind: str) -> None:
    """The unproven address leaves `holder`'s account; its owner hears of it where they proved an address."""
    address = getattr(holder, f"unproven_{kind}")
    await User.filter(id=holder.id, **{f"unproven_{kind}": address}).update(**{f"unproven_{kind}": None})
    shown = codes.mask(address)
    if holder.email:
        await outbox.email(holder.email, "address_detached_email", address=shown)
    elif holder.phone and settings.sms_available:
        await outbox.sms(holder.phone, "address_detached_sms", address=shown)
