"""Joining the cabinet: sign-up with a confirmation code, password recovery, e-mail change, adding an
organization by INN (or asking to join the one that is already there) and the provider's moderation.

Confirmation codes (sign-up, recovery, e-mail change) follow resolvers/codes.py: 6 digits, stored
as an HMAC (never the code itself), valid 15 minutes (EXPIRED), single use (INVALID once used or
replaced by a newer one: only the latest code of an address or user counts), 5 wrong answers kill
the code (RATE_LIMITED afterwards), at most one code a minute and 5 an hour per address and 20
an hour per client address (settings; RATE_LIMITED beyond).

No answer tells whether an address has an account: signing up with a taken e-mail or phone, or
recovering the password of an unknown login, or changing the e-mail to another account's, answers
exactly as it would otherwise, stores a code that goes nowhere (so that attempts, expiry and the
limits behave the same), and whoever reads the address the code would have gone to gets a notice
instead. Only the one who holds an address learns about it.

A User with `is_active=False` is a sign-up waiting for its code and nothing else: it cannot sign
in, and whoever registers (or takes the address) later replaces it (`release_pending_sign_ups`).
One that lacks its e-mail or phone is a stand-in for a sign-up at a taken address (`_is_stand_in`):
it can never be confirmed.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from resolvers import passwords
from kabinet.clock import utcnow
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, UserFacingError, forbidden, Refusal
from resolvers.permissions import Permission
from models.identity import CodePurpose, LoginThrottle, User, VerificationCode
from models.organizations import (
    Invite,
    InviteStatus,
    JoinRequest,
    JoinRequestStatus,
    KnownContact,
    Membership,
    ModerationStatus,
    Organization,
    OrganizationKind,
    Role,
)
from resolvers import audit, codes, messages, outbox, validation
from resolvers.common import (
    member_organization, not_found, organization_row, page_request, related_one, require, require_approved, wants_total,
)
from resolvers.identity import SignedIn, normalize_login, revoke_user_logins, sign_in_user, viewer_user
from kabinet.ids import pk_of
from resolvers.pagination import Ordering, Page, load_pages

JOIN_REQUEST_ORDER = Ordering(("created_at",))
MY_JOIN_REQUEST_ORDER = Ordering(("-created_at",))
MODERATION_ORDER = Ordering(("created_at",))


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


@dataclass
class AddedOrganization:
    """What `addOrganization` did: created (or re-submitted) an organization, or asked to join one."""

    organization: Organization | None = None
    join_request: JoinRequest | None = None


# ---------------------------------------------------------------- confirmation codes


SIGN_UP_CODE = codes.CodeRules(CodePurpose.SIGN_UP)
PASSWORD_RESET_CODE = codes.CodeRules(CodePurpose.PASSWORD_RESET)
EMAIL_CHANGE_CODE = codes.CodeRules(CodePurpose.EMAIL_CHANGE)


async def _send_code(
    ctx: RequestContext, rules: codes.CodeRules, target: str, *, user: User | None, by_email: str, by_sms: str | None,
    deliver: bool = True,
) -> VerificationCode:
    """Issue a new code (it supersedes the earlier ones) and queue the SMS or e-mail that carries it
    (the message templates `by_email`, `by_sms`, filled with the code and its minutes).

    `deliver=False` stores a code that goes nowhere: a recovery for an unknown login then leaves
    the same trace (attempts, expiry, lockout) as one for a real login.
    """
    row, code = await codes.issue(ctx, rules, target, user=user)
    if deliver:
        if "@" in target:
            await outbox.email(target, by_email, code=code, minutes=rules.minutes)
        elif by_sms is not None:
            await outbox.sms(target, by_sms, code=code, minutes=rules.minutes)
        else:
            raise ValueError(f"{rules.purpose} codes go by e-mail only, not to {target!r}.")
    return row


async def release_pending_sign_ups(*, email: str | None = None, phone: str | None = None) -> None:
    """Unconfirmed sign-ups holding this e-mail or phone, or waiting for a code sent to it (a
    stand-in holds no taken address), give it up (they are deleted).

    An address is only ever held for good by a confirmed (active) user; whoever proves it later
    takes it over. The codes sent to the removed sign-up stay, unlinked, so that the per-address
    sending limits still count them. (acceptInvite calls this too, for a new account's addresses.)
    """
    addresses = [a for a in (email, phone) if a]
    if not addresses:
        return
    where = [Q(email=email)] if email else []
    where += [Q(phone=phone)] if phone else []
    pending = set(await User.filter(Q(*where, join_type="OR"), is_active=False).values_list("id", flat=True))
    pending |= set(await VerificationCode.filter(
        purpose=CodePurpose.SIGN_UP, target__in=addresses, user__is_active=False
    ).values_list("user_id", flat=True))
    if pending:
        await VerificationCode.filter(user_id__in=list(pending)).update(user_id=None)
        await User.filter(id__in=list(pending)).delete()


async def _taken(email: str | None = None, phone: str | None = None, *, exclude: uuid.UUID | None = None) -> bool:
    query = User.filter(email=email) if email else User.filter(phone=phone)
    if exclude is not None:
        query = query.exclude(id=exclude)
    return await query.filter(is_active=True).exists()


# ---------------------------------------------------------------- sign-up


async def register(
    ctx: RequestContext, full_name: str, phone: str, email: str, password: str,
    channel: ConfirmationChannel = ConfirmationChannel.SMS,
) -> CodeSent:
    """An inactive account and a confirmation code (by SMS unless asked otherwise).

    An e-mail or phone that already belongs to an account is answered like any other: the sign-up
    is a stand-in holding only the free addresses, and its code goes nowhere (`_send_sign_up_code`).
    """
    full_name = validation.non_empty(full_name, ["input", "fullName"], "Full name")
    phone = validation.phone(phone, ["input", "phone"])
    email = validation.email(email, ["input", "email"])
    password = validation.password(password, ["input", "password"])
    target = phone if channel == ConfirmationChannel.SMS else email
    await codes.require_may_send(ctx, SIGN_UP_CODE, target)
    await release_pending_sign_ups(email=email, phone=phone)
    email_taken, phone_taken = await _taken(email=email), await _taken(phone=phone)
    user = await User.create(
        email=None if email_taken else email, phone=None if phone_taken else phone, full_name=full_name,
        password_hash=await passwords.hashed(ctx.settings, password), is_active=False,
    )
    row = await _send_sign_up_code(ctx, user, target)
    return CodeSent(user, codes.mask(target), row.expires_at)


def _is_stand_in(user: User) -> bool:
    """A sign-up that gave an address of an account: it lacks that address and is never confirmed
    (a real sign-up always holds both its e-mail and its phone)."""
    return not user.is_active and (user.email is None or user.phone is None)


async def _send_sign_up_code(ctx: RequestContext, user: User, target: str) -> VerificationCode:
    """The code to `target`; for a stand-in a code that goes nowhere and, to `target`, a notice:
    this address has an account (sign in or recover the password), or the other address has one."""
    by = {"by_email": "sign_up_code_email", "by_sms": "sign_up_code_sms"}
    if not _is_stand_in(user):
        return await _send_code(ctx, SIGN_UP_CODE, target, user=user, **by)
    row = await _send_code(ctx, SIGN_UP_CODE, target, user=user, **by, deliver=False)
    own_address = target not in (user.email, user.phone)
    if "@" in target:
        await outbox.email(target, "sign_up_address_taken_email" if own_address else "sign_up_other_taken_email")
    else:
        await outbox.sms(target, "sign_up_address_taken_sms" if own_address else "sign_up_other_taken_sms")
    return row


async def _pending_sign_up(registration_id: str, *, lock: bool = True) -> User:
    pk = pk_of(registration_id, "Registration")
    query = User.filter(id=pk, is_active=False)
    user = await (query.select_for_update() if lock else query).first() if pk else None
    if user is None:
        raise UserFacingError(
            ErrorCode.INVALID, "No sign-up waits for confirmation under this id (it was confirmed or replaced).",
            ["registrationId"],
        )
    return user


async def resend_registration_code(ctx: RequestContext, registration_id: str) -> CodeSent:
    """A new code to the same address (the previous one stops working)."""
    user = await _pending_sign_up(registration_id, lock=False)
    previous = await codes.latest(SIGN_UP_CODE, user_id=user.id)
    target = previous.target if previous else user.phone
    await codes.require_may_send(ctx, SIGN_UP_CODE, target)  # before the row lock (see codes.require_may_send)
    user = await _pending_sign_up(registration_id)
    row = await _send_sign_up_code(ctx, user, target)
    return CodeSent(user, codes.mask(target), row.expires_at)


async def confirm_registration(ctx: RequestContext, registration_id: str, code: str) -> SignedIn:
    """The right code activates the account, marks the address it went to as verified, signs in."""
    user = await _pending_sign_up(registration_id)
    row = await codes.latest(SIGN_UP_CODE, user_id=user.id)
    await codes.check(ctx, SIGN_UP_CODE, row, code)
    if _is_stand_in(user):  # its code went nowhere: even a right guess makes no account
        raise UserFacingError(ErrorCode.INVALID, f"{codes.WRONG_CODE}: check it, or {SIGN_UP_CODE.renew}.", ["code"])
    user.is_active = True
    if row.target == user.phone:
        user.phone_verified = True
    if row.target == user.email:
        user.email_verified = True
    await user.save(update_fields=["is_active", "phone_verified", "email_verified"])
    signed_in = await sign_in_user(ctx, user)
    await audit.record(ctx, "user.signed_up", organization_id=None, object_type="User", object_id=user.id)
    return signed_in


# ---------------------------------------------------------------- password recovery


def _login_key(login: str, field: list[str]) -> str:
    key = normalize_login(login)
    return validation.email(key, field) if "@" in key else validation.phone(key, field)


async def request_password_reset(ctx: RequestContext, login: str) -> None:
    """Send a code to the login (e-mail or phone) if it is an account's; answer the same either way.

    For an unknown login a code that goes nowhere is stored, so that wrong answers, expiry, the
    lockout and the sending limits (RATE_LIMITED; the previous code keeps working) behave exactly
    as for a real one.
    """
    key = _login_key(login, ["login"])
    await codes.require_may_send(ctx, PASSWORD_RESET_CODE, key)
    user = await User.get_or_none(Q(email=key) if "@" in key else Q(phone=key), is_active=True)
    await _send_code(
        ctx, PASSWORD_RESET_CODE, key, user=user, by_email="password_reset_code_email",
        by_sms="password_reset_code_sms", deliver=user is not None,
    )


async def reset_password(ctx: RequestContext, login: str, code: str, new_password: str) -> SignedIn:
    """The right code sets the new password, ends every login of the account, and signs in afresh."""
    key = _login_key(login, ["login"])
    new_password = validation.password(new_password, ["newPassword"])
    row = await codes.latest(PASSWORD_RESET_CODE, target=key)
    await codes.check(ctx, PASSWORD_RESET_CODE, row, code)
    user = await User.filter(id=row.user_id, is_active=True).select_for_update().first() if row.user_id else None
    if user is None or key not in (user.email, user.phone):
        raise UserFacingError(ErrorCode.INVALID, "This code is not right: check it, or request a new one.", ["code"])
    user.password_hash = await passwords.hashed(ctx.settings, new_password)
    if key == user.phone:
        user.phone_verified = True
    else:
        user.email_verified = True
    await user.save(update_fields=["password_hash", "phone_verified", "email_verified"])
    revoked = await revoke_user_logins(ctx, user.id)
    await LoginThrottle.filter(login__in=[v for v in (user.email, user.phone) if v]).delete()
    signed_in = await sign_in_user(ctx, user)
    await audit.record(
        ctx, "user.password_reset", organization_id=None, object_type="User", object_id=user.id,
        details={"via": "phone" if key == user.phone else "email", "revoked_refresh_tokens": revoked},
    )
    return signed_in


# ---------------------------------------------------------------- e-mail change


async def request_email_change(ctx: RequestContext, new_email: str) -> CodeSent:
    """A code to the NEW address; the address changes only when that code comes back.

    An address of another account is answered the same (nothing tells that it has an account): its
    code goes nowhere, and the address is told that someone tried to take it.
    """
    user = await viewer_user(ctx)
    new_email = validation.email(new_email, ["newEmail"])
    if new_email == user.email:
        raise validation.invalid(["newEmail"], "This is already your e-mail.")
    await codes.require_may_send(ctx, EMAIL_CHANGE_CODE, new_email)
    taken = await _taken(email=new_email, exclude=user.id)
    row = await _send_code(
        ctx, EMAIL_CHANGE_CODE, new_email, user=user, by_email="email_change_code_email", by_sms=None, deliver=not taken
    )
    if taken:
        await outbox.email(new_email, "email_change_address_taken")
    return CodeSent(user, codes.mask(new_email), row.expires_at)


async def confirm_email_change(ctx: RequestContext, code: str) -> User:
    """Switch to the address the latest code went to; the old address is told about it."""
    user = await viewer_user(ctx)
    row = await codes.latest(EMAIL_CHANGE_CODE, user_id=user.id)
    await codes.check(ctx, EMAIL_CHANGE_CODE, row, code)
    new_email = row.target
    if await _taken(email=new_email, exclude=user.id):
        raise UserFacingError(ErrorCode.CONFLICT, "This e-mail has meanwhile been taken by another account.", ["code"])
    await release_pending_sign_ups(email=new_email)
    old_email = user.email
    user.email, user.email_verified = new_email, True
    await user.save(update_fields=["email", "email_verified"])
    if old_email:
        await outbox.email(old_email, "email_changed", new_email=new_email)
    await audit.record(
        ctx, "user.email_changed", organization_id=None, object_type="User", object_id=user.id,
        details={"from": old_email, "to": new_email},
    )
    return user


# ---------------------------------------------------------------- adding an organization


def _default_name(kind: OrganizationKind, inn: str) -> str:
    return {
        OrganizationKind.LEGAL_ENTITY: f"Организация, ИНН {inn}",
        OrganizationKind.SOLE_PROPRIETOR: f"ИП, ИНН {inn}",
        OrganizationKind.INDIVIDUAL: f"Физическое лицо, ИНН {inn}",
    }[kind]


async def _moderation_on_adding(user: User, inn: str) -> ModerationStatus:
    """APPROVED at once when the caller's verified phone is one the provider knows for this INN."""
    if user.phone and user.phone_verified and await KnownContact.exists(inn=inn, phone=user.phone):
        return ModerationStatus.APPROVED
    return ModerationStatus.PENDING


async def _new_organization(name: str, inn: str, kind: OrganizationKind, status: ModerationStatus) -> Organization | None:
    """Create it with a free 6-digit subscriber code; None if someone added this INN a moment ago."""
    for _ in range(10):
        code = str(100000 + secrets.randbelow(900000))
        if await Organization.exists(code=code):
            continue
        try:
            async with in_transaction():  # a savepoint: a lost race leaves the outer transaction usable
                return await Organization.create(name=name, inn=inn, kind=kind, moderation_status=status, code=code)
        except IntegrityError:
            if await Organization.exists(inn=inn):
                return None
    raise RuntimeError("no free subscriber code found")


async def _reload_memberships(ctx: RequestContext) -> None:
    ctx.forget_memberships()
    await ctx.memberships()


async def add_organization(
    ctx: RequestContext, inn: str, kind: OrganizationKind, name: str | None, position: str
) -> AddedOrganization:
    """A new INN: the organization, the caller its OWNER, moderation PENDING (or APPROVED for a
    known contact). An INN already here: a join request to its owner and admins.

    A REJECTED organization's INN is not blocked for ever: its owner may submit it again, and
    anyone else who adds it takes over the claim (the rejected claim's members lose it).
    """
    user = await viewer_user(ctx)
    inn = validation.inn(inn, ["input", "inn"], legal_entity=kind == OrganizationKind.LEGAL_ENTITY)
    position = validation.non_empty(position, ["input", "position"], "Position")
    if name is not None and name.strip():
        name = validation.non_empty(name, ["input", "name"], "Name", max_length=300)
    else:
        name = None
    existing = await Organization.filter(inn=inn).select_for_update().first()
    if existing is None:
        status = await _moderation_on_adding(user, inn)
        organization = await _new_organization(name or _default_name(kind, inn), inn, kind, status)
        if organization is not None:
            await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
            await audit.record(
                ctx, "organization.added", organization_id=organization.id, object_type="Organization",
                object_id=organization.id, details={"inn": inn, "moderation": status.value},
            )
            await _reload_memberships(ctx)
            return AddedOrganization(organization=organization)
        existing = await Organization.filter(inn=inn).select_for_update().first()
    membership = await Membership.get_or_none(organization_id=existing.id, user_id=user.id)
    if existing.moderation_status == ModerationStatus.REJECTED and (membership is None or membership.role == Role.OWNER):
        return AddedOrganization(organization=await _claim_again(ctx, user, existing, name, kind, position))
    if membership is not None:
        raise UserFacingError(ErrorCode.CONFLICT, "You already belong to this organization.", ["input", "inn"])
    if await JoinRequest.exists(organization_id=existing.id, user_id=user.id, status=JoinRequestStatus.PENDING):
        raise UserFacingError(
            ErrorCode.CONFLICT, "You have already asked to join this organization: wait for its administrator.",
            ["input", "inn"],
        )
    request = await JoinRequest.create(organization=existing, user=user, position=position)
    await _notify_approvers(existing, user, position)
    await audit.record(
        ctx, "join_request.created", organization_id=existing.id, object_type="JoinRequest", object_id=request.id,
    )
    return AddedOrganization(join_request=request)


async def _claim_again(
    ctx: RequestContext, user: User, organization: Organization, name: str | None, kind: OrganizationKind, position: str
) -> Organization:
    """A REJECTED organization goes back to moderation, owned by the caller."""
    previous_owners = await Membership.filter(organization_id=organization.id, role=Role.OWNER).values_list("user_id", flat=True)
    if user.id not in previous_owners:
        await Membership.filter(organization_id=organization.id).delete()
        await JoinRequest.filter(organization_id=organization.id, status=JoinRequestStatus.PENDING).update(
            status=JoinRequestStatus.REJECTED, decided_at=utcnow()
        )
        await Invite.filter(organization_id=organization.id, status=InviteStatus.PENDING).update(status=InviteStatus.REVOKED)
        await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
    else:
        await Membership.filter(organization_id=organization.id, user_id=user.id).update(position=position)
    organization.moderation_status = await _moderation_on_adding(user, organization.inn)
    organization.moderation_note = None
    organization.kind = kind
    if name:
        organization.name = name
    await organization.save(update_fields=["moderation_status", "moderation_note", "kind", "name"])
    await audit.record(
        ctx, "organization.resubmitted", organization_id=organization.id, object_type="Organization",
        object_id=organization.id,
        details={"moderation": organization.moderation_status.value, "previous_owners": [str(u) for u in previous_owners]},
    )
    await _reload_memberships(ctx)
    return organization


async def _approver_emails(organization_id: uuid.UUID) -> list[str]:
    approvers = await Membership.filter(
        organization_id=organization_id, role__in=[Role.OWNER, Role.ADMIN]
    ).values_list("user_id", flat=True)
    return await User.filter(id__in=list(approvers), email__not_isnull=True).order_by("email").values_list("email", flat=True)


async def _notify_approvers(organization: Organization, requester: User, position: str) -> None:
    contacts = ", ".join(v for v in (requester.email, requester.phone) if v)
    for email in await _approver_emails(organization.id):
        await outbox.email(
            email, "join_request_to_approvers", requester_name=requester.full_name, contacts=contacts,
            organization_name=organization.name, inn=organization.inn, organization_code=organization.code,
            position=position,
        )


# ---------------------------------------------------------------- join requests


async def _join_request_to_decide(ctx: RequestContext, request_id: str) -> JoinRequest:
    row = await organization_row(ctx, JoinRequest, request_id, ["requestId"], "join request", lock=True)
    require(ctx, row.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an administrator decides on join requests.")
    if row.status != JoinRequestStatus.PENDING:
        raise UserFacingError(ErrorCode.CONFLICT, "This request has already been decided.", ["requestId"])
    return row


async def approve_join_request(ctx: RequestContext, request_id: str, role: Role) -> tuple[JoinRequest, Membership]:
    """The requester becomes a member with `role` (never OWNER) and the position they gave."""
    viewer = ctx.require_viewer()
    if role == Role.OWNER:
        raise validation.invalid(["role"], "An organization has exactly one owner: choose another role.")
    row = await _join_request_to_decide(ctx, request_id)
    organization = await Organization.get(id=row.organization_id)
    require_approved(organization, ["requestId"], "let people in once it is approved (the request waits)")
    if await Membership.exists(organization_id=row.organization_id, user_id=row.user_id):
        raise UserFacingError(ErrorCode.CONFLICT, "This person is already a member: reject the request.", ["requestId"])
    membership = await Membership.create(
        organization_id=row.organization_id, user_id=row.user_id, role=role, position=row.position
    )
    row.status, row.decided_by_id, row.decided_at = JoinRequestStatus.APPROVED, viewer.user_id, utcnow()
    await row.save(update_fields=["status", "decided_by_id", "decided_at"])
    requester = await User.get(id=row.user_id)
    if requester.email:
        await outbox.email(
            requester.email, "join_request_approved", organization_name=organization.name,
            organization_code=organization.code, role=messages.QUOTED_ROLE_NAMES[role],
        )
    await audit.record(
        ctx, "join_request.approved", organization_id=row.organization_id, object_type="JoinRequest", object_id=row.id,
        details={"user_id": str(row.user_id), "role": role.value},
    )
    return row, membership


async def reject_join_request(ctx: RequestContext, request_id: str) -> JoinRequest:
    viewer = ctx.require_viewer()
    row = await _join_request_to_decide(ctx, request_id)
    row.status, row.decided_by_id, row.decided_at = JoinRequestStatus.REJECTED, viewer.user_id, utcnow()
    await row.save(update_fields=["status", "decided_by_id", "decided_at"])
    requester = await User.get(id=row.user_id)
    if requester.email:
        organization = await Organization.get(id=row.organization_id)
        await outbox.email(requester.email, "join_request_rejected", inn=organization.inn)
    await audit.record(
        ctx, "join_request.rejected", organization_id=row.organization_id, object_type="JoinRequest", object_id=row.id,
        details={"user_id": str(row.user_id)},
    )
    return row


async def join_requests_of(ctx: RequestContext, organization_global_id: str, args: dict[str, Any]) -> Page | None:
    """An organization's join requests for its OWNER/ADMIN; None for an organization not the caller's."""
    try:
        organization_id = await member_organization(ctx, organization_global_id, ["organizationId"])
    except UserFacingError:
        return None
    if not ctx.may(organization_id, Permission.MANAGE_MEMBERS):
        raise forbidden("join requests")
    status = args.get("status")
    pages = await load_pages(
        JoinRequest, "organization_id", [organization_id], JOIN_REQUEST_ORDER, page_request(ctx, args),
        filters=Q(status=JoinRequestStatus(status)) if status else None, with_total=wants_total(args),
    )
    return pages[organization_id]


async def viewer_join_requests(ctx: RequestContext, args: dict[str, Any]) -> Page:
    viewer = ctx.require_viewer()
    pages = await load_pages(
        JoinRequest, "user_id", [viewer.user_id], MY_JOIN_REQUEST_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    return pages[viewer.user_id]


async def join_request_by_id(ctx: RequestContext, pk: uuid.UUID) -> JoinRequest | None:
    """For `node(id)`: the requester's own, or one of an organization where the caller decides."""
    viewer = ctx.require_viewer()
    await ctx.memberships()
    row = await JoinRequest.get_or_none(id=pk)
    if row and (row.user_id == viewer.user_id or ctx.may(row.organization_id, Permission.MANAGE_MEMBERS)):
        return row
    return None


async def users_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    return await related_one(User, rows, "user_id")


async def visible_organization_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    """The organization of each row (the Organization rule shows it to its members only: a requester
    is not one yet)."""
    return await related_one(Organization, rows, "organization_id")


async def inns_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    organizations = await related_one(Organization, rows, "organization_id")
    return [o.inn if o else "" for o in organizations]


# ---------------------------------------------------------------- moderation by the provider's staff


async def _staff(ctx: RequestContext) -> User:
    user = await viewer_user(ctx)
    if not user.is_staff:
        raise UserFacingError(ErrorCode.FORBIDDEN, "Only the provider's staff moderate organizations.")
    return user


async def _organization_to_moderate(organization_global_id: str) -> Organization:
    pk = pk_of(organization_global_id, "Organization")
    row = await Organization.filter(id=pk).select_for_update().first() if pk else None
    if row is None:
        raise not_found(["organizationId"], "organization")
    return row


async def approve_organization(ctx: RequestContext, organization_global_id: str) -> Organization:
    """PENDING (or REJECTED, on second thought) → APPROVED; the owner is told by e-mail."""
    await _staff(ctx)
    organization = await _organization_to_moderate(organization_global_id)
    if organization.moderation_status == ModerationStatus.APPROVED:
        raise UserFacingError(ErrorCode.CONFLICT, "This organization is already approved.", ["organizationId"])
    organization.moderation_status, organization.moderation_note = ModerationStatus.APPROVED, None
    await organization.save(update_fields=["moderation_status", "moderation_note"])
    if owner_email := await _owner_email(organization):
        await outbox.email(
            owner_email, "organization_approved", organization_name=organization.name, inn=organization.inn,
            organization_code=organization.code,
        )
    await audit.record(
        ctx, "organization.approved", organization_id=organization.id, object_type="Organization", object_id=organization.id,
    )
    return organization


async def reject_organization(ctx: RequestContext, organization_global_id: str, reason: str) -> Organization:
    """PENDING → REJECTED with the reason the owner is given; an approved subscriber cannot be."""
    await _staff(ctx)
    reason = validation.non_empty(reason, ["reason"], "A reason", max_length=500)
    organization = await _organization_to_moderate(organization_global_id)
    if organization.moderation_status != ModerationStatus.PENDING:
        raise UserFacingError(
            ErrorCode.CONFLICT, f"Only a PENDING organization can be rejected; this one is {organization.moderation_status.value}.",
            ["organizationId"],
        )
    organization.moderation_status, organization.moderation_note = ModerationStatus.REJECTED, reason
    await organization.save(update_fields=["moderation_status", "moderation_note"])
    if owner_email := await _owner_email(organization):
        await outbox.email(owner_email, "organization_rejected", inn=organization.inn, reason=reason)
    await audit.record(
        ctx, "organization.rejected", organization_id=organization.id, object_type="Organization",
        object_id=organization.id, details={"reason": reason},
    )
    return organization


async def _owner_email(organization: Organization) -> str | None:
    """Where the owner is told about moderation (None: no owner, or one without an e-mail)."""
    owner = await Membership.get_or_none(organization_id=organization.id, role=Role.OWNER)
    user = await User.get_or_none(id=owner.user_id) if owner else None
    return user.email if user else None


async def organizations_for_moderation(ctx: RequestContext, status: ModerationStatus | None, args: dict[str, Any]) -> Page:
    """Staff only (FORBIDDEN for anyone else): organizations by moderation status, oldest first."""
    user = await viewer_user(ctx)
    if not user.is_staff:
        raise Refusal("FORBIDDEN", "Only the provider's staff moderate organizations.")
    pages = await load_pages(
        Organization, None, (), MODERATION_ORDER, page_request(ctx, args),
        filters=Q(moderation_status=status) if status else None, with_total=wants_total(args),
    )
    return pages[None]


async def owners_of(ctx: RequestContext, organizations: list[Organization], args: dict[str, Any]) -> list:
    owners = await Membership.filter(organization_id__in=[o.id for o in organizations], role=Role.OWNER)
    users = await related_one(User, owners, "user_id")
    by_org = {m.organization_id: u for m, u in zip(owners, users)}
    return [by_org.get(o.id) for o in organizations]

