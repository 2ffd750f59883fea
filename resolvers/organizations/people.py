"""People in an organization beyond their role: a member's job title and name, their phone (changed
only by a code the member enters), and replacing a password someone else chose.

Rules (issue 20 "People"; seeds: BIT.LK «изменить должность», 1C:Кабинет сотрудника «поменять ФИО,
телефон», 1cfresh.kz «владелец… сообщит логин и пароль»):
- the job title («должность») is per membership (`Membership.position`): the owner and admins set
  anyone's (an admin never the owner's), every member their own; at most JOB_TITLE_MAX characters;
- the full name is the account's, shared by every organization it belongs to: the member changes
  their own; the owner and admins change a member's only while that member belongs to no other
  organization (else it is theirs alone: FORBIDDEN), an admin never the owner's;
- a phone is a login: it changes only when a code sent to the NEW phone comes back from the member
  themselves, signed in (`confirm_phone_change`). The owner or an admin may start it for a member
  (`request_phone_change` with a membership): the code still goes to the new phone and only the
  member's own entry of it changes anything. So the code proves the phone, the sign-in proves the
  member agrees. A phone of another account is answered the same (its code goes nowhere, the phone
  is told), as an e-mail change is (resolvers/identity/email_change.py); codes as resolvers/identity/codes.py says;
- a member the owner created (`invitations.create_member`) signs in first with the password the
  letter carried; until `change_password` every other operation is refused (the access token's
  `pwc` claim, `RequestContext.require_viewer`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from models.identity import CodePurpose, LoginThrottle, User
from models.organizations import Membership, Organization
from resolvers.identity import addresses
from resolvers.common import audit
from resolvers.identity import codes
from resolvers.common import outbox
from resolvers.identity import passwords
from resolvers.common import validation
from resolvers.identity.addresses import address_taken
from resolvers.common.errors import not_found
from resolvers.common.gates import check_organization_row, check_permission
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, unauthenticated
from resolvers.identity.logins import SignedIn, revoke_user_logins, sign_in_user, viewer_user
from resolvers.organizations.memberships import guard_owner, lock_organization
from resolvers.common.permissions import Permission

JOB_TITLE_MAX = 100
FULL_NAME_MAX = 200
PHONE_CHANGE_CODE = codes.CodeRules(CodePurpose.PHONE_CHANGE, renew="ask for a new one (requestPhoneChange)")


# ---------------------------------------------------------------------------------------- name and job title


async def update_member(
    ctx: RequestContext, membership_id: uuid.UUID, full_name: str | None, job_title: str | None,
) -> Membership:
    """Change a member's full name and/or job title (None: left as it is; an empty job title clears it)."""
    viewer = ctx.require_viewer()
    target = await check_organization_row(ctx, Membership, membership_id, "membership_id", "member")
    own = target.user_id == viewer.user_id
    if not own:
        check_permission(ctx, target.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin changes another member's name or job title.")
    await lock_organization(target.organization_id)
    target = await Membership.get_or_none(id=target.id)
    if target is None:
        raise not_found("member", "membership_id")
    if not own:
        guard_owner(ctx, target, "")  # an admin never touches the owner (the owner is `own` here)
    if full_name is None and job_title is None:
        raise validation.invalid("full_name", "Give a new full name, a job title, or both.")
    changes: dict[str, dict[str, str | None]] = {}
    if job_title is not None:
        title = job_title.strip() or None
        if title is not None:
            title = validation.non_empty(title, "job_title", "Job title", max_length=JOB_TITLE_MAX)
        if title != target.position:
            changes["jobTitle"] = {"from": target.position, "to": title}
            target.position = title
            await target.save(update_fields=["position"])
    if full_name is not None:
        name = validation.non_empty(full_name, "full_name", "Full name", max_length=FULL_NAME_MAX)
        user = await User.get(id=target.user_id)
        if name != user.full_name:
            if not own:
                await _name_is_the_organizations(target, user)
            changes["fullName"] = {"from": user.full_name, "to": name}
            user.full_name = name
            await user.save(update_fields=["full_name"])
    if changes:
        await audit.record(
            ctx, "member.update", organization_id=target.organization_id, object_type="Membership", object_id=target.id,
            details={"userId": str(target.user_id), **changes},
        )
    return target


async def _name_is_the_organizations(target: Membership, user: User) -> None:
    """FORBIDDEN when the account is not this organization's alone (another membership, or staff):
    its name is then its owner's to change, not one organization's."""
    if user.is_staff or await Membership.filter(user_id=user.id).exclude(organization_id=target.organization_id).exists():
        raise UserFacingError(
            ErrorCode.FORBIDDEN,
            "This person also belongs to another organization: only they change their own name.", "full_name",
        )


# ---------------------------------------------------------------------------------------- phone


@dataclass
class PhoneChangeStarted:
    """A code went to the new phone (masked), working until `expires_at`; for whom."""

    user: User
    sent_to: str
    expires_at: datetime


async def request_phone_change(ctx: RequestContext, phone: str, membership_id: uuid.UUID | None) -> PhoneChangeStarted:
    """A code to the NEW phone, for the viewer's own phone, or (`membership_id`, OWNER or ADMIN) for a
    member's: nothing changes until the member, signed in, enters it (`confirm_phone_change`)."""
    viewer = ctx.require_viewer()
    organization_id = None
    if membership_id is not None:
        target = await check_organization_row(ctx, Membership, membership_id, "membership_id", "member")
        if target.user_id != viewer.user_id:
            check_permission(ctx, target.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin starts a member's phone change.")
            guard_owner(ctx, target, "")
            organization_id = target.organization_id
        user = await User.get(id=target.user_id)
    else:
        user = await viewer_user(ctx)
    outbox.require_sms(ctx.settings, "phone")
    new_phone = validation.phone(phone or "", "phone")
    if new_phone == user.phone:
        raise validation.invalid("phone", "This is already the member's phone.")
    await codes.require_may_send(ctx, PHONE_CHANGE_CODE, new_phone)
    taken = await address_taken(phone=new_phone, exclude=user.id)
    row, code = await codes.issue(
        ctx, PHONE_CHANGE_CODE, new_phone, user=user, payload={"startedBy": str(viewer.user_id)},
    )
    if taken:  # the code goes nowhere; only the phone's holder learns anything
        await outbox.sms(new_phone, "phone_change_address_taken")
    else:
        await outbox.sms(new_phone, "phone_change_code", code=code, minutes=PHONE_CHANGE_CODE.minutes)
    if organization_id is not None:
        # The member hears of it where they can be reached: an admin holding the new phone cannot
        # make the change without the member entering the code, and the member knows whose it is.
        if user.email:
            organization = await Organization.get(id=organization_id)
            await outbox.email(
                user.email, "phone_change_started", organization_name=organization.name, phone=codes.mask(new_phone),
                minutes=PHONE_CHANGE_CODE.minutes,
            )
        await audit.record(
            ctx, "member.phone_change_started", organization_id=organization_id, object_type="User", object_id=user.id,
            details={"to": codes.mask(new_phone)},
        )
    return PhoneChangeStarted(user, codes.mask(new_phone), row.expires_at)


async def confirm_phone_change(ctx: RequestContext, code: str) -> User:
    """The signed-in member's latest phone code: their phone becomes the one it went to (a login
    from now on); the old phone is told."""
    user = await viewer_user(ctx)
    row = await codes.latest(PHONE_CHANGE_CODE, user_id=user.id)
    await codes.check(ctx, PHONE_CHANGE_CODE, row, code)
    old_phone = user.phone
    await addresses.prove(ctx.settings, user, phone=row.target)
    if old_phone and ctx.settings.sms_available:
        await outbox.sms(old_phone, "phone_changed", new_phone=codes.mask(row.target))
    await audit.record(
        ctx, "user.phone_changed", organization_id=None, object_type="User", object_id=user.id,
        details={"from": old_phone, "to": row.target, "startedBy": row.payload.get("startedBy")},
    )
    return user


# ---------------------------------------------------------------------------------------- password


async def change_password(ctx: RequestContext, user: User, new_password: str) -> SignedIn:
    """The signed-in user (their current password checked by the caller, `identity.check_password`,
    outside the transaction) sets a new one: the one a member the owner created must set before
    anything else. Every sign-in of the account ends; a new one starts, without the restriction."""
    viewer = ctx.require_viewer(password_change=True)
    if user.id != viewer.user_id:
        raise unauthenticated()
    new_password = validation.password(new_password or "", "new_password")
    if await passwords.verify(ctx.settings, user.password_hash, new_password):
        raise validation.invalid("new_password", "Choose a password other than the current one.")
    user = await User.filter(id=user.id, is_active=True).select_for_update().get()
    user.password_hash = await passwords.hashed(ctx.settings, new_password)
    was_sent = user.must_change_password
    user.must_change_password = False
    await user.save(update_fields=["password_hash", "must_change_password"])
    revoked = await revoke_user_logins(ctx, user.id)
    await LoginThrottle.filter(login__in=[v for v in (user.email, user.phone) if v]).delete()
    if user.email:
        await outbox.email(user.email, "password_changed")
    await audit.record(
        ctx, "user.password_change", organization_id=None, object_type="User", object_id=user.id,
        details={"replacedSentPassword": was_sent, "revoked_refresh_tokens": revoked},
    )
    return await sign_in_user(ctx, user)


def viewer_login(user: User) -> str:
    """The login `check_password` checks the current password under: the proven e-mail, else the phone."""
    return user.email or user.phone or ""


async def password_changer(ctx: RequestContext) -> User:
    """The account whose password is being changed: the signed-in viewer, restricted or not."""
    viewer = ctx.require_viewer(password_change=True)
    user = await User.get_or_none(id=viewer.user_id, is_active=True)
    if user is None:
        raise unauthenticated()
    return user

