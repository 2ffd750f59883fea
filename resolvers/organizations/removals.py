"""A member leaving an organization: removed by the owner or an admin (confirmed by a code), or
leaving of their own accord.

Rules (contract README "Roles"; seed: scloud «Удаление пользователя … потребуется ввести код»):
- removing a member takes two steps: a code goes to the owner/admin who asks, and the removal
  happens when they confirm it; the owner cannot be removed, and an admin never removes the owner;
- the owner cannot leave (INVALID: transfer ownership first);
- a member who is removed or leaves loses access at once (`end_membership`): the membership and
  its database grants are deleted (the next request sees nothing), their ACTIVE cloud sessions in
  the organization go TERMINATING (the cluster worker confirms them), and their live subscriptions
  are ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from models.cloud import Session
from models.identity import CodePurpose, User, VerificationCode
from models.organizations import DatabaseGrant, Membership, Organization, Role
from resolvers.common import audit
from resolvers.identity import api_tokens, codes
from resolvers.common import outbox
from resolvers.common import validation
from resolvers.cloud import sessions as session_lifecycle
from resolvers.common.errors import not_found
from resolvers.common.gates import check_member_of, check_permission
from resolvers.common.context import RequestContext
from resolvers.organizations.memberships import end_subscriptions, guard_owner, lock_organization, managed_membership
from resolvers.common.permissions import Permission

# Removing a member is confirmed by a code sent to the one who asks (resolvers/identity/codes.py): no sending
# limits (only an owner/admin may ask, and the code goes to themselves); the request is addressed by
# its id, so a used code is "already confirmed" on `requestId`.
REMOVAL_CODE = codes.CodeRules(
    CodePurpose.MEMBER_REMOVAL, renew="request the removal again for a new code",
    spent_field="request_id", spent_message="This removal was already confirmed.", sending_limits=False,
)


@dataclass
class RemovalRequest:
    code: VerificationCode
    membership: Membership
    sent_to: list[str]


@dataclass
class Removal:
    membership_id: uuid.UUID
    organization_id: uuid.UUID
    terminated_sessions: list[Session]


async def request_member_removal(ctx: RequestContext, membership_id: uuid.UUID) -> RemovalRequest:
    """Step one of removing a member: a code goes to the acting owner/admin by e-mail (and SMS)."""
    field = "membership_id"
    target = await managed_membership(ctx, membership_id, field)
    viewer = ctx.require_viewer()
    if target.user_id == viewer.user_id:
        raise validation.invalid(field, "To leave the organization yourself, use leaveOrganization.")
    guard_owner(ctx, target, "The owner cannot be removed.")
    actor = await User.get(id=viewer.user_id)
    by_sms = bool(actor.phone) and ctx.settings.sms_available
    if not actor.email and not by_sms:
        outbox.require_sms(ctx.settings, field)  # UNAVAILABLE: the code could reach them nowhere
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
    if by_sms:
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


async def confirm_member_removal(ctx: RequestContext, request_id: uuid.UUID, code: str) -> Removal:
    """Step two: the right code removes the member. Wrong: INVALID; 5 wrong: the code is dead
    (RATE_LIMITED); older than 15 minutes: EXPIRED. Only the one who asked may confirm."""
    viewer = ctx.require_viewer()
    await ctx.memberships()
    row = await (
        VerificationCode.filter(id=request_id, purpose=CodePurpose.MEMBER_REMOVAL, user_id=viewer.user_id)
        .select_for_update().first()
    )
    if row is None:
        raise not_found("removal request", "request_id")
    await codes.check(ctx, REMOVAL_CODE, row, code)
    org_id = uuid.UUID(row.payload["organization_id"])
    if org_id not in await ctx.memberships():
        raise not_found("removal request", "request_id")
    check_permission(ctx, org_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may remove members.")
    await lock_organization(org_id)
    target = await Membership.get_or_none(id=uuid.UUID(row.payload["membership_id"]), organization_id=org_id)
    if target is None:
        raise not_found("member (they are no longer in the organization)", "request_id")
    guard_owner(ctx, target, "The owner cannot be removed.")
    sessions = await end_membership(ctx, target, "member.remove")
    return Removal(target.id, org_id, sessions)


async def leave_organization(ctx: RequestContext, organization_id: uuid.UUID) -> Removal:
    """Leave an organization yourself; the owner cannot (INVALID: transfer ownership first)."""
    field = "organization_id"
    org_id = await check_member_of(ctx, organization_id, field)
    await lock_organization(org_id)
    membership = await Membership.get_or_none(organization_id=org_id, user_id=ctx.require_viewer().user_id)
    if membership is None:
        raise not_found("organization", field)
    if membership.role == Role.OWNER:
        raise validation.invalid(field, "The owner cannot leave: transfer ownership to another member first.")
    sessions = await end_membership(ctx, membership, "member.leave")
    return Removal(membership.id, org_id, sessions)


async def end_membership(ctx: RequestContext, membership: Membership, action: str) -> list[Session]:
    """Access ends now: grants and membership deleted, ACTIVE sessions TERMINATING, subscriptions
    ended, the API tokens they made for it revoked; recorded as `action` (member.remove, member.leave).
    The sessions asked to end."""
    sessions = await session_lifecycle.access_ended(ctx, membership.organization_id, membership.user_id)
    await DatabaseGrant.filter(membership_id=membership.id).delete()
    await Membership.filter(id=membership.id).delete()
    await audit.record(
        ctx, action, organization_id=membership.organization_id, object_type="Membership", object_id=membership.id,
        details={"userId": str(membership.user_id), "role": membership.role.value, "terminatedSessions": len(sessions)},
    )
    await end_subscriptions(ctx, membership)
    await api_tokens.revoke_members_tokens(ctx, membership.organization_id, membership.user_id)
    ctx.forget_memberships()
    return sessions
