"""Invitations into an organization, from sending to accepting, and when one has expired.

Each transition of an invite has one function here, which writes its rows and its audit record:
created (`invite_member`, which withdraws a PENDING invite to the same address; `create_member`, an
invitation whose letter also carries a generated password), resent
(`resend_invite`), revoked (`withdraw`, called by `revoke_invite` and by whatever else withdraws
invites), accepted (`accept_invite`; `accept_created_member`: the first sign-in with the generated
password); expired is never written but read (`is_expired`,
`effective_status`, `status_filter`).

Rules (contract README "Invites"; seed: 1cfresh «Подтверждение приглашения в сервис»):
- only an APPROVED organization invites (a PENDING one is anybody's claim to an INN until the
  provider checks it), only the owner and admins invite, nobody is invited as the OWNER, and
  nothing in inviting tells the inviter whether an address has an account;
- a stored invite stays PENDING when its time runs out (nothing rewrites rows at midnight); it is
  EXPIRED from `expires_at` on. The `Invite.status` field, the `invites(status:)` filter and the
  mutations that refuse an expired link all decide it here, with the same clock;
- an invitation link proves an address, never an account: an address that has an account joins
  only with that account's own access token on the request (`acceptInvite` hands no tokens for
  it), and an invitation whose e-mail and phone are not one account's (two accounts, or an account
  and nobody) is refused when it is accepted;
- the provider's staff invite into any organization (`staff_invite_member`) and invite its OWNER
  where it has none (`staff_make_owner`): through the same `create_invite`, so the same rules,
  letter and audit, the staff actor named; an OWNER invitation accepted makes its holder the owner
  by the one function for that (`moderation.make_owner`), refused once the organization has one.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.cloud import Database
from models.audit import AuditEntry
from models.identity import User
from models.organizations import DatabaseGrant, Invite, InviteDatabase, InviteStatus, Membership, ModerationStatus, Organization, Role
from resolvers.identity import addresses
from resolvers.common import audit
from resolvers.identity import passwords
from resolvers.common import validation
from foundation.settings import Settings
from resolvers.common.gates import check_approved, check_member_of, check_organization_row, check_permission
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.logins import SignedIn, sign_in_user
from resolvers.organizations.memberships import end_subscriptions, lock_organization, organization_databases
from resolvers.common.permissions import Permission
from resolvers.common.staff_rights import StaffMember
from resolvers.identity.tokens import hash_opaque_token, new_opaque_token
from resolvers.common import notifications
from resolvers.organizations.invite_letters import send_invite
from resolvers.organizations.invite_status import expiry, is_expired

INVITES_ONCE_APPROVED = "it may invite people once it is approved"
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no l/1, O/0
CREATED_MEMBER_INVITES_TRIED = 3  # a login's newest pending invitations with a password a sign-in tries
INVITATIONS_PER_DAY = 50  # invitations sent or resent by one organization's members in 24 hours (each a letter or SMS)
_SENDING_ACTIONS = ("invite.create", "invite.resend")


async def _within_daily_invitations(organization_id: uuid.UUID, field: str) -> None:
    """LIMIT_EXCEEDED once the organization's members sent INVITATIONS_PER_DAY invitations (created,
    created members, resent) in 24 hours: each is a letter or an SMS (a created member's with a
    password) to any address they name. Counted on the audit log, the organization locked by the caller."""
    sent = await AuditEntry.filter(
        organization_id=organization_id, action__in=_SENDING_ACTIONS, created_at__gte=utcnow() - dt.timedelta(hours=24),
    ).count()
    if sent >= INVITATIONS_PER_DAY:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"Your organization has sent {INVITATIONS_PER_DAY} invitations in the last 24 hours, the most a day: try again later.",
            field,
        )


# ---------------------------------------------------------------------------------------- addresses


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


def address_of(email: str | None, phone: str | None) -> Address:
    email = email.strip() if email else None
    phone = phone.strip() if phone else None
    if not email and not phone:
        raise validation.invalid("email", "Give the invitee's e-mail, phone, or both.")
    return Address(
        email=validation.email(email, "email") if email else None,
        phone=validation.phone(phone, "phone") if phone else None,
    )


async def _refuse_members(org_id: uuid.UUID, address: Address, email_field: str, phone_field: str) -> None:
    """CONFLICT when the e-mail or the phone is a member's (the inviter sees the members anyway)."""
    for value, column, field in ((address.email, "email", email_field), (address.phone, "phone", phone_field)):
        if value and await Membership.filter(organization_id=org_id, **{f"user__{column}": value}).exists():
            raise UserFacingError(ErrorCode.CONFLICT, "This person is already a member of the organization.", field)


# ---------------------------------------------------------------------------------------- created


async def invite_member(
    ctx: RequestContext,
    organization_id: uuid.UUID,
    email: str | None,
    phone: str | None,
    role: Role,
    database_ids: Sequence[uuid.UUID],
) -> Invite:
    """Invite someone by e-mail and/or phone with a role (never OWNER) and the databases they may open.

    A PENDING invite to the same address in this organization is replaced (revoked: its link dies).
    """
    org_id = await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, org_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may invite people.")
    organization = await lock_organization(org_id)
    check_approved(organization, "organization_id", INVITES_ONCE_APPROVED)
    await _within_daily_invitations(org_id, "organization_id")
    address = address_of(email, phone)
    if role == Role.OWNER:
        raise validation.invalid(
            "role", "Nobody is invited as the owner: invite them with another role and transfer ownership."
        )
    databases = await organization_databases(org_id, database_ids, "database_ids")
    inviter = await User.get_or_none(id=ctx.require_viewer().user_id)
    return await create_invite(ctx, ctx.settings, organization, address, role, databases, inviter=inviter)


async def create_invite(
    actor: Actor, settings: Settings, organization: Organization, address: Address, role: Role, databases: list[Database],
    *, inviter: User | None, staff: StaffMember | None = None, full_name: str | None = None, password: str | None = None,
) -> Invite:
    """The one way an invitation is created, whoever invites (the caller checked their right, the
    organization APPROVED and locked, the role): CONFLICT for a member's address, a PENDING invite
    to the same address withdrawn, the letter (and SMS) sent, audited (`staff`: by the provider's
    staff, named in the entry; the provider's audit is the staff function's). `password`: a member
    the owner created (`create_member`): its hash kept, the password itself only in the letter."""
    await _refuse_members(organization.id, address, "email", "phone")
    replaced = await withdraw(organization.id, address.matches())
    token, token_hash = new_opaque_token()
    invite = await Invite.create(
        organization_id=organization.id, email=address.email, phone=address.phone, role=role,
        status=InviteStatus.PENDING, token_hash=token_hash, expires_at=expiry(),
        invited_by_id=inviter.id if inviter else None, full_name=full_name,
        password_hash=await passwords.hashed(settings, password) if password else None,
    )
    if databases:
        await InviteDatabase.bulk_create([InviteDatabase(invite_id=invite.id, database_id=d.id) for d in databases])
    await send_invite(settings, organization, invite, token, databases, "phone", inviter, password)
    details = {
        "email": address.email, "phone": address.phone, "role": role.value,
        "databaseIds": [str(d.id) for d in databases], "replacedInviteIds": [str(i) for i in replaced],
    }
    if staff is not None:
        details["byStaff"] = {"kind": staff.kind, "name": staff.name}
    if password:
        details["withPassword"] = True
    await audit.record(
        actor, "invite.create", organization_id=organization.id, object_type="Invite", object_id=invite.id, details=details,
    )
    return invite


def generated_password() -> str:
    """12 characters nobody confuses when reading them off a letter or an SMS."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))


async def create_member(
    ctx: RequestContext, organization_id: uuid.UUID, email: str | None, phone: str | None, full_name: str,
    role: Role, database_ids: Sequence[uuid.UUID],
) -> Invite:
    """The owner (or an admin) creates a member with a login and a generated password (1C:Кабинет
    сотрудника, 1cfresh.kz): an invitation, as `invite_member`'s, to ONE address (the login), whose
    letter (or SMS) also carries the password. Signing in with it accepts the invitation
    (`accept_created_member`: the address is proven, the name is the one given here, the password must
    be replaced at once); the link works as any invitation's. An address that already has an account
    gets the ordinary letter (a password for it would open nothing); the inviter is not told which."""
    org_id = await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, org_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may create members.")
    organization = await lock_organization(org_id)
    check_approved(organization, "organization_id", INVITES_ONCE_APPROVED)
    await _within_daily_invitations(org_id, "organization_id")
    if bool(email and email.strip()) == bool(phone and phone.strip()):
        raise validation.invalid("email", "Give the new member's e-mail or phone (one of them: it becomes the login).")
    address = address_of(email, phone)
    name = validation.non_empty(full_name, "full_name", "Full name")
    if role == Role.OWNER:
        raise validation.invalid("role", "Nobody is created as the owner: create them with another role and transfer ownership.")
    databases = await organization_databases(org_id, database_ids, "database_ids")
    inviter = await User.get_or_none(id=ctx.require_viewer().user_id)
    return await create_invite(
        ctx, ctx.settings, organization, address, role, databases, inviter=inviter, full_name=name,
        password=generated_password(),
    )


async def _refuse_an_owner(organization: Organization, field: str) -> None:
    if await Membership.exists(organization_id=organization.id, role=Role.OWNER):
        raise UserFacingError(
            ErrorCode.CONFLICT,
            "This organization has an owner: the owner invites people and may hand it over (transferOwnership).", field,
        )


# ---------------------------------------------------------------------------------------- resent, revoked


async def resend_invite(ctx: RequestContext, invite_id: uuid.UUID) -> Invite:
    """Send a PENDING (or expired) invitation again with a new link for another 7 days; the old link dies."""
    organization, invite = await _managed_invite(ctx, invite_id, "invite_id")
    if invite.status != InviteStatus.PENDING:
        raise validation.invalid("invite_id", f"This invitation is {invite.status.value.lower()}: send a new one.")
    check_approved(organization, "invite_id", INVITES_ONCE_APPROVED)
    await _within_daily_invitations(invite.organization_id, "invite_id")
    await _refuse_members(invite.organization_id, Address(invite.email, invite.phone), "invite_id", "invite_id")
    token, token_hash = new_opaque_token()
    invite.token_hash = token_hash
    invite.expires_at = expiry()
    password = generated_password() if invite.password_hash else None  # the old letter's password dies with its link
    if password:
        invite.password_hash = await passwords.hashed(ctx.settings, password)
    await invite.save(update_fields=["token_hash", "expires_at", "password_hash"])
    databases = await _databases_of_invite(invite)
    resender = await User.get_or_none(id=ctx.require_viewer().user_id)
    await send_invite(ctx.settings, organization, invite, token, databases, "invite_id", resender, password)
    await audit.record(
        ctx, "invite.resend", organization_id=invite.organization_id, object_type="Invite", object_id=invite.id,
        details={"email": invite.email, "phone": invite.phone, "role": invite.role.value},
    )
    return invite


async def revoke_invite(ctx: RequestContext, invite_id: uuid.UUID) -> Invite:
    """Withdraw a PENDING invitation: its link stops working."""
    _, invite = await _managed_invite(ctx, invite_id, "invite_id")
    if invite.status != InviteStatus.PENDING:
        raise validation.invalid("invite_id", f"Only a pending invitation can be revoked; this one is {invite.status.value.lower()}.")
    if is_expired(invite):
        raise validation.invalid("invite_id", "This invitation has already expired; its link no longer works.")
    if not await withdraw(invite.organization_id, Q(id=invite.id)):
        raise validation.invalid("invite_id", "This invitation is no longer pending.")
    await invite.refresh_from_db()
    await audit.record(
        ctx, "invite.revoke", organization_id=invite.organization_id, object_type="Invite", object_id=invite.id,
        details={"email": invite.email, "phone": invite.phone, "role": invite.role.value},
    )
    return invite


async def withdraw(organization_id: uuid.UUID, which: Q | None = None) -> list[uuid.UUID]:
    """The organization's PENDING invites (those `which` picks) become REVOKED: their links die.
    The ids withdrawn; the caller's audit record names them. Conditional on PENDING, so of a
    revoke and an accept running together only one wins."""
    pending = Invite.filter(organization_id=organization_id, status=InviteStatus.PENDING)
    if which is not None:
        pending = pending.filter(which)
    ids = list(await pending.values_list("id", flat=True))
    if not ids:
        return []
    if not await Invite.filter(id__in=ids, status=InviteStatus.PENDING).update(status=InviteStatus.REVOKED):
        return []
    return ids


async def _managed_invite(ctx: RequestContext, invite_id: uuid.UUID, field: str) -> tuple[Organization, Invite]:
    """An invite of an organization where the viewer manages members (NOT_FOUND / FORBIDDEN otherwise):
    the organization locked first, then the invite, in the order every invitation change takes them
    (accepting and inviting lock the organization first: the other order could deadlock)."""
    invite = await check_organization_row(ctx, Invite, invite_id, field, "invitation")
    check_permission(ctx, invite.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may manage invitations.")
    organization = await lock_organization(invite.organization_id)
    return organization, await Invite.filter(id=invite.id).select_for_update().get()


async def _databases_of_invite(invite: Invite) -> list[Database]:
    ids = await InviteDatabase.filter(invite_id=invite.id).values_list("database_id", flat=True)
    return list(await Database.filter(id__in=list(ids)).order_by("name", "id")) if ids else []


# ---------------------------------------------------------------------------------------- accepted


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
    field = "token"
    invite = await Invite.get_or_none(token_hash=hash_opaque_token(token or ""))
    if invite is None or invite.status != InviteStatus.PENDING:
        raise validation.invalid(field, "This invitation link is not valid: it was used, revoked or replaced.")
    now = utcnow()
    if is_expired(invite, now):
        raise UserFacingError(ErrorCode.EXPIRED, "This invitation link has expired: ask for a new one.", field)
    organization = await lock_organization(invite.organization_id)
    check_approved(organization, field, "its invitations can be accepted once it is approved")
    as_owner = invite.role == Role.OWNER
    if as_owner:
        await _refuse_an_owner(organization, field)
    account = await _invitee_account(invite, field) or await _viewer_who_gave_it(ctx, invite)
    if account is not None:
        viewer = ctx.signed_in_viewer()
        if viewer is None or viewer.user_id != account.id:
            raise UserFacingError(
                ErrorCode.FORBIDDEN,
                "This invitation is for an existing account: sign in to that account, then accept it again.",
            )
        # A member who proves the address of an OWNER invitation becomes the owner (make_owner).
        if not as_owner and await Membership.exists(organization_id=invite.organization_id, user_id=account.id):
            raise UserFacingError(ErrorCode.CONFLICT, "You are already a member of this organization.", field)
        newcomer = None
    else:
        newcomer = await _newcomer(invite, full_name or invite.full_name, password, phone)
    # Conditional: a token is used once, even by two requests at the same moment.
    if not await Invite.filter(id=invite.id, status=InviteStatus.PENDING).update(status=InviteStatus.ACCEPTED, accepted_at=now):
        raise validation.invalid(field, "This invitation link has just been used.")
    if account is not None:
        user = account
        kind, address = _proven_by_link(invite)
        if getattr(user, f"unproven_{kind}") == address:
            await addresses.prove(ctx.settings, user, **{kind: address}, field=field)
    else:
        user = await _create_newcomer(ctx, invite, newcomer)
    if as_owner:
        from resolvers.organizations import moderation  # it imports what imports this module

        await moderation.make_owner(
            ctx, organization, user.id, action="organization.owner_made", field=field,
            details={"by": "invitation", "inviteId": str(invite.id), "invitedById": str(invite.invited_by_id) if invite.invited_by_id else None},
        )
        membership = await Membership.get(organization_id=invite.organization_id, user_id=user.id)
        await end_subscriptions(ctx, membership)  # a member promoted: opened with their former rights
    else:
        membership = await Membership.create(organization_id=invite.organization_id, user_id=user.id, role=invite.role)
    await _granted_and_recorded(ctx, invite, user, membership, "link")
    await notifications.invite_accepted(ctx, organization, user, invite.role)
    if account is not None:
        ctx.forget_memberships()  # the payload's fields see the new membership
        return Accepted(user, None)
    return Accepted(user, await sign_in_user(ctx, user))


async def _granted_and_recorded(ctx: RequestContext, invite: Invite, user: User, membership: Membership, via: str) -> None:
    """The invitation's databases granted to the new membership, and the acceptance audited."""
    databases = await _databases_of_invite(invite)
    if databases:
        await DatabaseGrant.bulk_create([DatabaseGrant(membership_id=membership.id, database_id=d.id) for d in databases])
    details = {"inviteId": str(invite.id), "role": invite.role.value, "databaseIds": [str(d.id) for d in databases]}
    if via != "link":
        details["via"] = via
    await audit.record(
        ctx, "invite.accept", actor_id=user.id, organization_id=invite.organization_id, object_type="Membership",
        object_id=membership.id, details=details,
    )


async def invited_with_password(settings: Settings, login: str, password: str) -> Invite | None:
    """The PENDING, unexpired invitation of a member the owner created whose login (its one address)
    this is and whose generated password this is; None otherwise. For a login no account holds
    (`identity.check_password` asks only then); the newest few are tried, so a sign-in costs a
    bounded number of hashes."""
    column = "email" if "@" in login else "phone"
    candidates = await Invite.filter(
        status=InviteStatus.PENDING, expires_at__gt=utcnow(), password_hash__isnull=False, **{column: login},
    ).order_by("-created_at").limit(CREATED_MEMBER_INVITES_TRIED)
    for invite in candidates:
        if await passwords.verify(settings, invite.password_hash, password):
            return invite
    return None


async def accept_created_member(ctx: RequestContext, invite_id: uuid.UUID) -> Accepted:
    """The first sign-in of a member the owner created, with the password the letter carried
    (checked by `invited_with_password`): it accepts the invitation. The account is made with the
    name the owner gave and that password, which must be replaced before anything else
    (`must_change_password`); the address the password went to is proven (only its reader had it).
    Answered as a wrong password when the invitation is no longer pending or its address has
    meanwhile become an account's (whose own password is the login)."""
    wrong = UserFacingError(ErrorCode.INVALID, "Wrong login or password.", "password")
    invite = await Invite.get_or_none(id=invite_id)
    if invite is None or invite.status != InviteStatus.PENDING or invite.password_hash is None or is_expired(invite):
        raise wrong
    organization = await lock_organization(invite.organization_id)
    if organization.moderation_status != ModerationStatus.APPROVED or await _invitee_account(invite, "password") is not None:
        raise wrong
    if not await Invite.filter(id=invite.id, status=InviteStatus.PENDING).update(status=InviteStatus.ACCEPTED, accepted_at=utcnow()):
        raise wrong
    kind, address = _proven_by_link(invite)
    user = await User.create(
        full_name=invite.full_name or address, password_hash=invite.password_hash, is_active=True,
        must_change_password=True,
    )
    await addresses.prove(ctx.settings, user, **{kind: address}, field="password")
    membership = await Membership.create(organization_id=invite.organization_id, user_id=user.id, role=invite.role)
    await _granted_and_recorded(ctx, invite, user, membership, "password")
    return Accepted(user, await sign_in_user(ctx, user))


async def _invitee_account(invite: Invite, field: str) -> User | None:
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


async def _viewer_who_gave_it(ctx: RequestContext, invite: Invite) -> User | None:
    """The signed-in user who gave the address the link proves without proving it: the invitation
    is theirs (accepting it proves the address), as it would be once proven. Nobody else's."""
    viewer = ctx.signed_in_viewer()
    if viewer is None:
        return None
    kind, address = _proven_by_link(invite)
    return await User.get_or_none(id=viewer.user_id, is_active=True, **{f"unproven_{kind}": address})


def _proven_by_link(invite: Invite) -> tuple[str, str]:
    """The address following the link proves ("email" or "phone", the address): the e-mail the
    letter went to, else the phone."""
    return ("email", invite.email) if invite.email else ("phone", invite.phone)


@dataclass
class _Newcomer:
    full_name: str
    password: str
    phone: str | None


async def _newcomer(invite: Invite, full_name: str | None, password: str | None, phone: str | None) -> _Newcomer:
    """Check what a new person gives (nothing is written yet)."""
    name = validation.non_empty(full_name, "full_name", "Full name")
    secret = validation.password(password or "", "password")
    user_phone = invite.phone
    if user_phone is None and phone:
        user_phone = validation.phone(phone, "phone")
        if await User.exists(phone=user_phone, is_active=True):
            raise UserFacingError(ErrorCode.CONFLICT, "This phone already belongs to another account.", "phone")
    return _Newcomer(name, secret, user_phone)


async def _create_newcomer(ctx: RequestContext, invite: Invite, newcomer: _Newcomer) -> User:
    """A new account from the invitation. The link proves the address it went to (the e-mail; with
    no e-mail, the phone): whoever else gave that address unproven gives it up. A phone beside an
    invited e-mail stays unproven."""
    kind, address = _proven_by_link(invite)
    user = await User.create(
        full_name=newcomer.full_name, password_hash=await passwords.hashed(ctx.settings, newcomer.password),
        is_active=True, unproven_phone=None if kind == "phone" else newcomer.phone,
    )
    await addresses.prove(ctx.settings, user, **{kind: address}, field="token")
    return user
