"""Who belongs to an organization: invites, accepting them, roles, removal, leaving, ownership.

Rules (contract README "Invites", "Roles"; seeds: 1cfresh «Подтверждение приглашения в сервис» /
«Добавление к абоненту», scloud «Удаление пользователя … потребуется ввести код»):
- the owner and admins manage members; an admin never touches the owner (FORBIDDEN); the owner
  cannot be demoted, removed or leave (INVALID: transfer ownership first); nobody becomes OWNER
  except by `transferOwnership`, so an organization always has exactly one owner;
- a member who is removed or leaves loses access at once: the membership and its database grants
  are deleted (the next request sees nothing), their ACTIVE cloud sessions in the organization go
  TERMINATING (the cluster worker confirms them), and their live subscriptions are ended;
- member-changing mutations lock the organization row first (PostgreSQL), so concurrent changes
  of one organization's members run one after another;
- only an APPROVED organization invites (a PENDING one is anybody's claim to an INN until the
  provider checks it), and nothing in inviting tells the inviter whether an address has an account;
- an invitation link proves an address, never an account: an address that has an account joins
  only with that account's own access token on the request (`acceptInvite` hands no tokens for
  it), and an invitation whose e-mail and phone are not one account's (two accounts, or an account
  and nobody) is refused when it is accepted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import Q

from resolvers import events
from resolvers import passwords
from resolvers.tokens import hash_opaque_token, new_opaque_token
from kabinet.clock import utcnow
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, Refusal, UserFacingError
from resolvers.permissions import Permission
from models.cloud import Database, Session
from models.identity import CodePurpose, User, VerificationCode
from models.organizations import (
    DatabaseGrant,
    Invite,
    InviteDatabase,
    InviteStatus,
    Membership,
    Organization,
    Role,
)
from resolvers import audit, codes, invitations, messages, outbox, validation
from resolvers import sessions as session_lifecycle
from resolvers.common import member_organization, not_found, organization_row, require, require_approved
from resolvers.identity import SignedIn, sign_in_user
from kabinet.ids import pk_of, to_global_id
from resolvers.sign_ups import release_pending_sign_ups

INVITE_DAYS = 7
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
REMOVAL_REQUEST_TYPE = "MemberRemovalRequest"  # the global id type of a removal request
# Removing a member is confirmed by a code sent to the one who asks (resolvers/codes.py): no sending
# limits (only an owner/admin may ask, and the code goes to themselves); the request is addressed by
# its id, so a used code is "already confirmed" on `requestId`.
REMOVAL_CODE = codes.CodeRules(
    CodePurpose.MEMBER_REMOVAL, renew="request the removal again for a new code",
    spent_field=("requestId",), spent_message="This removal was already confirmed.", sending_limits=False,
)

INVITES_ONCE_APPROVED = "it may invite people once it is approved"


def _refuse(code: ErrorCode, message: str, field: list[str] | None = None) -> UserFacingError:
    return UserFacingError(code, message, field)


# ---------------------------------------------------------------------------------------- invites


@dataclass
class Address:
    """Where an invitation goes: an e-mail, a phone, or both (validated, normalized)."""

    email: str | None
    phone: str | None

    def matches(self) -> Q:
        """Rows (invites, users) with this e-mail or this phone; never the NULLs of the other."""
        condition = Q()
        if self.email:
            condition |= Q(email=self.email)
        if self.phone:
            condition |= Q(phone=self.phone)
        return condition


def _address(email: str | None, phone: str | None) -> Address:
    email = email.strip() if email else None
    phone = phone.strip() if phone else None
    if not email and not phone:
        raise validation.invalid(["input", "email"], "Give the invitee's e-mail, phone, or both.")
    return Address(
        email=validation.email(email, ["input", "email"]) if email else None,
        phone=validation.phone(phone, ["input", "phone"]) if phone else None,
    )


async def invite_member(
    ctx: RequestContext,
    organization_global_id: str,
    email: str | None,
    phone: str | None,
    role: Role,
    database_global_ids: Sequence[str] | None,
) -> Invite:
    """Invite someone by e-mail and/or phone with a role (never OWNER) and the databases they may open.

    A PENDING invite to the same address in this organization is replaced (revoked: its link dies).
    """
    org_id = await member_organization(ctx, organization_global_id, ["input", "organizationId"])
    require(ctx, org_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may invite people.")
    organization = await _lock_organization(org_id)
    require_approved(organization, ["input", "organizationId"], INVITES_ONCE_APPROVED)
    address = _address(email, phone)
    if role == Role.OWNER:
        raise validation.invalid(
            ["input", "role"], "Nobody is invited as the owner: invite them with another role and transfer ownership."
        )
    databases = await _databases_of(org_id, database_global_ids or [], ["input", "databaseIds"])
    await _refuse_members(org_id, address, ["input", "email"], ["input", "phone"])
    replaced = await _pending_invites(org_id, address).values_list("id", flat=True)
    if replaced:
        await Invite.filter(id__in=list(replaced)).update(status=InviteStatus.REVOKED)
    token, token_hash = new_opaque_token()
    invite = await Invite.create(
        organization_id=org_id, email=address.email, phone=address.phone, role=role, status=InviteStatus.PENDING,
        token_hash=token_hash, expires_at=utcnow() + dt.timedelta(days=INVITE_DAYS),
        invited_by_id=ctx.require_viewer().user_id,
    )
    for database in databases:
        await InviteDatabase.create(invite_id=invite.id, database_id=database.id)
    await _send_invite(ctx, organization, invite, token, databases)
    await audit.record(
        ctx, "invite.create", organization_id=org_id, object_type="Invite", object_id=invite.id,
        details={
            "email": address.email, "phone": address.phone, "role": role.value,
            "databaseIds": [str(d.id) for d in databases], "replacedInviteIds": [str(i) for i in replaced],
        },
    )
    return invite


async def resend_invite(ctx: RequestContext, invite_global_id: str) -> Invite:
    """Send a PENDING (or expired) invitation again with a new link for another 7 days; the old link dies."""
    invite = await _managed_invite(ctx, invite_global_id, ["inviteId"])
    if invite.status != InviteStatus.PENDING:
        raise validation.invalid(["inviteId"], f"This invitation is {invite.status.value.lower()}: send a new one.")
    organization = await _lock_organization(invite.organization_id)
    require_approved(organization, ["inviteId"], INVITES_ONCE_APPROVED)
    await _refuse_members(invite.organization_id, Address(invite.email, invite.phone), ["inviteId"], ["inviteId"])
    token, token_hash = new_opaque_token()
    invite.token_hash = token_hash
    invite.expires_at = utcnow() + dt.timedelta(days=INVITE_DAYS)
    await invite.save(update_fields=["token_hash", "expires_at"])
    databases = await _databases_of_invite(invite)
    await _send_invite(ctx, organization, invite, token, databases)
    await audit.record(
        ctx, "invite.resend", organization_id=invite.organization_id, object_type="Invite", object_id=invite.id,
        details={"email": invite.email, "phone": invite.phone, "role": invite.role.value},
    )
    return invite


async def revoke_invite(ctx: RequestContext, invite_global_id: str) -> Invite:
    """Withdraw a PENDING invitation: its link stops working."""
    invite = await _managed_invite(ctx, invite_global_id, ["inviteId"])
    if invite.status != InviteStatus.PENDING:
        raise validation.invalid(["inviteId"], f"Only a pending invitation can be revoked; this one is {invite.status.value.lower()}.")
    if invitations.is_expired(invite):
        raise validation.invalid(["inviteId"], "This invitation has already expired; its link no longer works.")
    # Conditional: of a revoke and an accept running together only one wins.
    if not await Invite.filter(id=invite.id, status=InviteStatus.PENDING).update(status=InviteStatus.REVOKED):
        raise validation.invalid(["inviteId"], "This invitation is no longer pending.")
    await invite.refresh_from_db()
    await audit.record(
        ctx, "invite.revoke", organization_id=invite.organization_id, object_type="Invite", object_id=invite.id,
        details={"email": invite.email, "phone": invite.phone, "role": invite.role.value},
    )
    return invite


@dataclass
class Accepted:
    """Who joined by an invitation; `signed_in` only for a new account (an existing one came signed in)."""

    user: User
    signed_in: SignedIn | None


async def accept_invite(
    ctx: RequestContext, token: str, full_name: str | None, password: str | None, phone: str | None
) -> Accepted:
    """Join the organization by the link's token.

    The token proves an address, not an account. An address nobody has becomes a new account with
    the full name and password given here (the phone is optional), signed in at once. An address
    that belongs to an account joins that account only when the request carries its own access
    token (FORBIDDEN otherwise: sign in first); no tokens are handed out for it. An invitation whose
    e-mail and phone are not one account's (two accounts, or an account and nobody; decided now,
    accounts may have appeared since it was sent) is INVALID: ask for a new one with one address.
    Every refusal leaves the invitation PENDING: the claim comes after every check.
    """
    field = ["input", "token"]
    invite = await Invite.get_or_none(token_hash=hash_opaque_token(token or ""))
    if invite is None or invite.status != InviteStatus.PENDING:
        raise validation.invalid(field, "This invitation link is not valid: it was used, revoked or replaced.")
    now = utcnow()
    if invitations.is_expired(invite, now):
        raise _refuse(ErrorCode.EXPIRED, "This invitation link has expired: ask for a new one.", field)
    organization = await _lock_organization(invite.organization_id)
    require_approved(organization, field, "its invitations can be accepted once it is approved")
    account = await _invitee_account(invite, field)
    if account is not None:
        if not _signed_in_as(ctx, account.id):
            raise _refuse(
                ErrorCode.FORBIDDEN,
                "This invitation is for an existing account: sign in to that account, then accept it again.",
            )
        if await Membership.exists(organization_id=invite.organization_id, user_id=account.id):
            raise _refuse(ErrorCode.CONFLICT, "You are already a member of this organization.", field)
        newcomer = None
    else:
        newcomer = await _newcomer(invite, full_name, password, phone)
    # Conditional: a token is used once, even by two requests at the same moment.
    if not await Invite.filter(id=invite.id, status=InviteStatus.PENDING).update(status=InviteStatus.ACCEPTED, accepted_at=now):
        raise validation.invalid(field, "This invitation link has just been used.")
    if account is not None:
        user = account
        if invite.email and user.email == invite.email and not user.email_verified:
            user.email_verified = True
            await user.save(update_fields=["email_verified"])
    else:
        user = await _create_newcomer(ctx, invite, newcomer)
    membership = await Membership.create(organization_id=invite.organization_id, user_id=user.id, role=invite.role)
    databases = await _databases_of_invite(invite)
    for database in databases:
        await DatabaseGrant.create(membership_id=membership.id, database_id=database.id)
    await audit.record(
        ctx, "invite.accept", actor_id=user.id, organization_id=invite.organization_id, object_type="Membership",
        object_id=membership.id,
        details={"inviteId": str(invite.id), "role": invite.role.value, "databaseIds": [str(d.id) for d in databases]},
    )
    if account is not None:
        ctx.forget_memberships()  # the payload's fields see the new membership
        return Accepted(user, None)
    return Accepted(user, await sign_in_user(ctx, user))


async def _refuse_members(org_id: uuid.UUID, address: Address, email_field: list[str], phone_field: list[str]) -> None:
    """CONFLICT when the e-mail or the phone is a member's (the inviter sees the members anyway)."""
    for value, column, field in ((address.email, "email", email_field), (address.phone, "phone", phone_field)):
        if value and await Membership.filter(organization_id=org_id, **{f"user__{column}": value}).exists():
            raise _refuse(ErrorCode.CONFLICT, "This person is already a member of the organization.", field)


def _signed_in_as(ctx: RequestContext, user_id: uuid.UUID) -> bool:
    """The request carries this user's own valid access token."""
    try:
        return ctx.require_viewer().user_id == user_id
    except Refusal:
        return False


async def _invitee_account(invite: Invite, field: list[str]) -> User | None:
    """The account the invited addresses belong to, or None when they belong to nobody (an
    unconfirmed sign-up is nobody: the link proves the address, the sign-up did not). INVALID when
    the e-mail and the phone are not one account's; the message does not say which has one."""
    by_email = await User.get_or_none(email=invite.email, is_active=True) if invite.email else None
    by_phone = await User.get_or_none(phone=invite.phone, is_active=True) if invite.phone else None
    if invite.email and invite.phone and (by_email and by_email.id) != (by_phone and by_phone.id):
        raise validation.invalid(
            field, "This invitation's e-mail and phone do not belong to the same person's account: "
            "ask the organization for a new invitation with only one of them.",
        )
    return by_email or by_phone


@dataclass
class _Newcomer:
    full_name: str
    password: str
    phone: str | None


async def _newcomer(invite: Invite, full_name: str | None, password: str | None, phone: str | None) -> _Newcomer:
    """Check what a new person gives (nothing is written yet)."""
    name = validation.non_empty(full_name, ["input", "fullName"], "Full name")
    secret = validation.password(password or "", ["input", "password"])
    user_phone = invite.phone
    if user_phone is None and phone:
        user_phone = validation.phone(phone, ["input", "phone"])
        if await User.exists(phone=user_phone, is_active=True):
            raise _refuse(ErrorCode.CONFLICT, "This phone already belongs to another account.", ["input", "phone"])
    return _Newcomer(name, secret, user_phone)


async def _create_newcomer(ctx: RequestContext, invite: Invite, newcomer: _Newcomer) -> User:
    """A new account from the invitation. Unconfirmed sign-ups holding its addresses give them up:
    the link proves the invited address, so whoever started such a sign-up did not own it."""
    await release_pending_sign_ups(email=invite.email, phone=newcomer.phone)
    return await User.create(
        email=invite.email, phone=newcomer.phone, full_name=newcomer.full_name,
        password_hash=await passwords.hashed(ctx.settings, newcomer.password), is_active=True,
        # The link went to the e-mail (and the phone); with no e-mail, the phone received it.
        email_verified=invite.email is not None, phone_verified=invite.email is None and invite.phone is not None,
    )


async def _managed_invite(ctx: RequestContext, invite_global_id: str, field: list[str]) -> Invite:
    """An invite of an organization where the viewer manages members (NOT_FOUND / FORBIDDEN otherwise)."""
    invite = await organization_row(ctx, Invite, invite_global_id, field, "invitation")
    require(ctx, invite.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may manage invitations.")
    return await Invite.filter(id=invite.id).select_for_update().get()


def _pending_invites(org_id: uuid.UUID, address: Address):
    return Invite.filter(organization_id=org_id, status=InviteStatus.PENDING).filter(address.matches())


async def _databases_of(org_id: uuid.UUID, global_ids: Sequence[str], field: list[str]) -> list[Database]:
    """The organization's databases by global id, in the order given; NOT_FOUND for any other id."""
    wanted: list[uuid.UUID] = []
    for global_id in global_ids:
        pk = pk_of(global_id, "Database")
        if pk is None:
            raise not_found(field, "database")
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        return []
    found = {d.id: d for d in await Database.filter(id__in=wanted, organization_id=org_id)}
    if len(found) != len(wanted):
        raise not_found(field, "database")
    return [found[pk] for pk in wanted]


async def _databases_of_invite(invite: Invite) -> list[Database]:
    ids = await InviteDatabase.filter(invite_id=invite.id).values_list("database_id", flat=True)
    return list(await Database.filter(id__in=list(ids)).order_by("name", "id")) if ids else []


def invite_link(ctx: RequestContext, token: str) -> str:
    return f"{ctx.settings.public_url or DEFAULT_PUBLIC_URL}/invite?token={token}"


async def _send_invite(
    ctx: RequestContext, organization: Organization, invite: Invite, token: str, databases: list[Database]
) -> None:
    """The letter and the SMS. The letter's kind says whether the e-mail itself has an account (only
    its reader learns it); nothing depends on the phone's account, and the inviter sees neither."""
    link = invite_link(ctx, token)
    inviter = await User.get_or_none(id=ctx.require_viewer().user_id)
    if invite.email:
        # An unconfirmed sign-up is not an account yet.
        has_account = await User.exists(email=invite.email, is_active=True)
        await outbox.email(
            invite.email, "invite_existing_user" if has_account else "invite_new_user",
            inviter=messages.inviter_phrase(inviter.full_name if inviter else None),
            organization_name=organization.name, organization_code=organization.code,
            role=messages.ROLE_NAMES[invite.role],
            databases=messages.databases_list(invite.role, [(d.name, d.configuration) for d in databases]),
            link=link, days=INVITE_DAYS, expires_at=messages.moscow_time(invite.expires_at),
        )
    if invite.phone:
        await outbox.sms(
            invite.phone, "invite_sms", organization_name=organization.name, organization_code=organization.code,
            role=messages.ROLE_NAMES[invite.role], link=link,
        )


# ---------------------------------------------------------------------------------------- members


async def change_member_role(ctx: RequestContext, membership_global_id: str, role: Role) -> Membership:
    """Give a member another role. Never OWNER (that is `transferOwnership`); never the owner's."""
    target = await _managed_membership(ctx, membership_global_id, ["membershipId"])
    if role == Role.OWNER:
        raise validation.invalid(["role"], "Nobody becomes the owner by a role change: use transferOwnership.")
    _guard_owner(ctx, target, "The owner cannot be demoted: transfer ownership to another member first.")
    if target.role == role:
        return target
    previous = target.role
    target.role = role
    await target.save(update_fields=["role"])
    await audit.record(
        ctx, "member.role_change", organization_id=target.organization_id, object_type="Membership",
        object_id=target.id, details={"userId": str(target.user_id), "from": previous.value, "to": role.value},
    )
    await _end_subscriptions(ctx, target)  # live lists were filtered by the old role
    return target


@dataclass
class RemovalRequest:
    code: VerificationCode
    membership: Membership
    sent_to: list[str]


async def request_member_removal(ctx: RequestContext, membership_global_id: str) -> RemovalRequest:
    """Step one of removing a member: a code goes to the acting owner/admin by e-mail (and SMS)."""
    field = ["membershipId"]
    target = await _managed_membership(ctx, membership_global_id, field)
    viewer = ctx.require_viewer()
    if target.user_id == viewer.user_id:
        raise validation.invalid(field, "To leave the organization yourself, use leaveOrganization.")
    _guard_owner(ctx, target, "The owner cannot be removed.")
    actor = await User.get(id=viewer.user_id)
    member = await User.get(id=target.user_id)
    organization = await Organization.get(id=target.organization_id)
    row, code = await codes.issue(
        ctx, REMOVAL_CODE, actor.email or actor.phone, user=actor,
        payload={"membership_id": str(target.id), "organization_id": str(target.organization_id)},
    )
    sent_to = []
    if actor.email:
        await outbox.email(
            actor.email, "member_removal_code_email", member_name=member.full_name,
            member_contact=member.email or member.phone or "", organization_name=organization.name,
            organization_code=organization.code, code=code, minutes=REMOVAL_CODE.minutes,
        )
        sent_to.append(codes.mask(actor.email))
    if actor.phone:
        await outbox.sms(
            actor.phone, "member_removal_code_sms", code=code, member_name=member.full_name,
            organization_name=organization.name,
        )
        sent_to.append(codes.mask(actor.phone))
    await audit.record(
        ctx, "member.removal_request", organization_id=target.organization_id, object_type="Membership",
        object_id=target.id, details={"userId": str(target.user_id), "role": target.role.value},
    )
    return RemovalRequest(row, target, sent_to)


@dataclass
class Removal:
    membership_id: uuid.UUID
    organization_id: uuid.UUID
    terminated_sessions: list[Session]


async def confirm_member_removal(ctx: RequestContext, request_global_id: str, code: str) -> Removal:
    """Step two: the right code removes the member. Wrong: INVALID; 5 wrong: the code is dead
    (RATE_LIMITED); older than 15 minutes: EXPIRED. Only the one who asked may confirm."""
    viewer = ctx.require_viewer()
    await ctx.memberships()
    pk = pk_of(request_global_id, REMOVAL_REQUEST_TYPE)
    row = (
        await VerificationCode.filter(id=pk, purpose=CodePurpose.MEMBER_REMOVAL, user_id=viewer.user_id)
        .select_for_update().first()
        if pk else None
    )
    if row is None:
        raise not_found(["requestId"], "removal request")
    await codes.check(ctx, REMOVAL_CODE, row, code)
    org_id = uuid.UUID(row.payload["organization_id"])
    if org_id not in await ctx.memberships():
        raise not_found(["requestId"], "removal request")
    require(ctx, org_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may remove members.")
    await _lock_organization(org_id)
    target = await Membership.get_or_none(id=uuid.UUID(row.payload["membership_id"]), organization_id=org_id)
    if target is None:
        raise not_found(["requestId"], "member (they are no longer in the organization)")
    _guard_owner(ctx, target, "The owner cannot be removed.")
    sessions = await _remove_membership(ctx, target, "member.remove")
    return Removal(target.id, org_id, sessions)


async def leave_organization(ctx: RequestContext, organization_global_id: str) -> Removal:
    """Leave an organization yourself; the owner cannot (INVALID: transfer ownership first)."""
    field = ["organizationId"]
    org_id = await member_organization(ctx, organization_global_id, field)
    await _lock_organization(org_id)
    membership = await Membership.get_or_none(organization_id=org_id, user_id=ctx.require_viewer().user_id)
    if membership is None:
        raise not_found(field, "organization")
    if membership.role == Role.OWNER:
        raise validation.invalid(field, "The owner cannot leave: transfer ownership to another member first.")
    sessions = await _remove_membership(ctx, membership, "member.leave")
    return Removal(membership.id, org_id, sessions)


async def transfer_ownership(
    ctx: RequestContext, organization_global_id: str, membership_global_id: str
) -> tuple[Membership, Membership]:
    """The owner hands the organization to another member and becomes an admin: (new, previous owner)."""
    org_id = await member_organization(ctx, organization_global_id, ["organizationId"])
    require(ctx, org_id, Permission.TRANSFER_OWNERSHIP, "Only the owner may hand the organization over.")
    await _lock_organization(org_id)
    pk = pk_of(membership_global_id, "Membership")
    target = await Membership.get_or_none(id=pk, organization_id=org_id) if pk else None
    if target is None:
        raise not_found(["membershipId"], "member")
    if target.user_id == ctx.require_viewer().user_id:
        raise validation.invalid(["membershipId"], "You already own this organization.")
    previous = await Membership.get(organization_id=org_id, role=Role.OWNER)
    if previous.user_id != ctx.require_viewer().user_id:  # ownership moved while this request waited
        raise _refuse(ErrorCode.FORBIDDEN, "Only the owner may hand the organization over.")
    target_role = target.role
    previous.role, target.role = Role.ADMIN, Role.OWNER
    await previous.save(update_fields=["role"])
    await target.save(update_fields=["role"])
    await audit.record(
        ctx, "organization.transfer_ownership", organization_id=org_id, object_type="Membership", object_id=target.id,
        details={
            "fromUserId": str(previous.user_id), "toUserId": str(target.user_id), "toPreviousRole": target_role.value,
        },
    )
    ctx.forget_memberships()  # the payload's fields see the caller as the admin they now are
    for membership in (target, previous):
        await _end_subscriptions(ctx, membership)
    return target, previous


async def update_member_databases(
    ctx: RequestContext, membership_global_id: str, database_global_ids: Sequence[str]
) -> Membership:
    """Set the databases a USER may open; their sessions in databases taken away are terminated."""
    target = await _managed_membership(ctx, membership_global_id, ["membershipId"])
    if target.role != Role.USER:
        raise validation.invalid(
            ["membershipId"], f"Only a user's databases are chosen; {messages.ROLE_NAMES[target.role].lower()} sees every database."
        )
    databases = await _databases_of(target.organization_id, database_global_ids, ["databaseIds"])
    wanted = {d.id for d in databases}
    current = set(await DatabaseGrant.filter(membership_id=target.id).values_list("database_id", flat=True))
    added, removed = wanted - current, current - wanted
    if removed:
        await DatabaseGrant.filter(membership_id=target.id, database_id__in=list(removed)).delete()
    for database_id in sorted(added, key=str):
        await DatabaseGrant.create(membership_id=target.id, database_id=database_id)
    sessions: list[Session] = []
    if removed:
        sessions = await session_lifecycle.access_ended(ctx, target.organization_id, target.user_id, list(removed))
        await _end_subscriptions(ctx, target)
    if added or removed:
        await audit.record(
            ctx, "member.databases_change", organization_id=target.organization_id, object_type="Membership",
            object_id=target.id,
            details={
                "userId": str(target.user_id), "added": sorted(map(str, added)), "removed": sorted(map(str, removed)),
                "terminatedSessions": len(sessions),
            },
        )
    return target


async def _managed_membership(ctx: RequestContext, membership_global_id: str, field: list[str]) -> Membership:
    """A membership in an organization of the viewer's, who must manage members there; locked."""
    target = await organization_row(ctx, Membership, membership_global_id, field, "member")
    require(ctx, target.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may manage members.")
    await _lock_organization(target.organization_id)
    target = await Membership.get_or_none(id=target.id)
    if target is None:
        raise not_found(field, "member")
    return target


def _guard_owner(ctx: RequestContext, target: Membership, message_for_owner: str) -> None:
    """The owner's membership is out of anyone's reach: an admin is FORBIDDEN, the owner INVALID."""
    if target.role != Role.OWNER:
        return
    if target.user_id == ctx.require_viewer().user_id:
        raise validation.invalid(["membershipId"], message_for_owner)
    raise _refuse(ErrorCode.FORBIDDEN, "An admin cannot change or remove the owner.")


async def _remove_membership(ctx: RequestContext, membership: Membership, action: str) -> list[Session]:
    """Access ends now: grants and membership deleted, ACTIVE sessions TERMINATING, subscriptions ended."""
    sessions = await session_lifecycle.access_ended(ctx, membership.organization_id, membership.user_id)
    await DatabaseGrant.filter(membership_id=membership.id).delete()
    await Membership.filter(id=membership.id).delete()
    await audit.record(
        ctx, action, organization_id=membership.organization_id, object_type="Membership", object_id=membership.id,
        details={"userId": str(membership.user_id), "role": membership.role.value, "terminatedSessions": len(sessions)},
    )
    await _end_subscriptions(ctx, membership)
    ctx.forget_memberships()
    return sessions


async def _end_subscriptions(ctx: RequestContext, membership: Membership) -> None:
    """The member's live subscriptions of this organization end (they were opened with other rights)."""
    await ctx.record_event(membership.organization_id, events.ACCESS, "REVOKED", {"user_id": str(membership.user_id)})


async def _lock_organization(org_id: uuid.UUID) -> Organization:
    """Serialize changes of one organization's members (a row lock on PostgreSQL)."""
    return await Organization.filter(id=org_id).select_for_update().get()


def removal_request_id(code: VerificationCode) -> str:
    return to_global_id(REMOVAL_REQUEST_TYPE, code.id)
