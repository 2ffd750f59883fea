"""Invitations, members, roles and ownership: the mutations that change who is in an organization
(resolvers/organizations/invitations.py, memberships.py, removals.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import strawberry

from models.organizations import Role
from resolvers.organizations import invitations
from resolvers.organizations import memberships as membership_resolvers
from resolvers.organizations import removals as removal_resolvers
from schema.batching import expand
from schema.cloud import Session
from schema.errors import UserError, transactional
from schema.identity import AuthPayload, User, auth_payload
from foundation.ids import NO_SUCH_ID, pk_of, to_global_id

from schema.organizations import Invite, Membership


@strawberry.input(description="Who to invite, with which role and databases.")
class InviteMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization to invite into.")
    email: str | None = strawberry.field(default=None, description="The invitee's e-mail (this and/or `phone`).")
    phone: str | None = strawberry.field(default=None, description="The invitee's phone, +7XXXXXXXXXX; an SMS goes there too.")
    role: Role = strawberry.field(description="Role on accepting: ADMIN, ACCOUNTANT or USER (never OWNER).")
    database_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Cloud databases the invitee may open."
    )


@strawberry.type(description="The result of `inviteMember`.")
class InviteMemberPayload:
    invite: Invite | None = strawberry.field(default=None, description="The invitation sent.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `resendInvite`.")
class ResendInvitePayload:
    invite: Invite | None = strawberry.field(default=None, description="The invitation, with its new expiry.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `revokeInvite`.")
class RevokeInvitePayload:
    invite: Invite | None = strawberry.field(default=None, description="The invitation, now REVOKED.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.input(description="Accepting an invitation from its link.")
class AcceptInviteInput:
    token: str = strawberry.field(description="The `token` parameter of the invitation link.")
    full_name: str | None = strawberry.field(
        default=None,
        description="Ignored when the invite's address already belongs to a user (they are added to the organization).",
    )
    password: str | None = strawberry.field(
        default=None, description="The new account's password, 8 characters or more; ignored for an existing user "
        "(who signs in first and sends their own access token)."
    )
    phone: str | None = strawberry.field(
        default=None, description="Optional phone of the new account, when the invitation did not name one."
    )


@strawberry.type(description="The result of `changeMemberRole`.")
class ChangeMemberRolePayload:
    membership: Membership | None = strawberry.field(default=None, description="The member with the new role.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `requestMemberRemoval`: a code went to you; confirm with it.")
class RequestMemberRemovalPayload:
    request_id: strawberry.ID | None = strawberry.field(default=None, description="Pass to `confirmMemberRemoval`.")
    expires_at: dt.datetime | None = strawberry.field(default=None, description="When the code stops working (15 minutes).")
    sent_to: list[str] | None = strawberry.field(default=None, description="Where the code went, partly hidden.")
    membership: Membership | None = strawberry.field(default=None, description="The member to be removed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `confirmMemberRemoval`.")
class ConfirmMemberRemovalPayload:
    removed_membership_id: strawberry.ID | None = strawberry.field(default=None, description="The membership that ended.")
    terminated_sessions: list[Session] | None = strawberry.field(
        default=None, description="The member's cloud sessions asked to end (now TERMINATING)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `leaveOrganization`.")
class LeaveOrganizationPayload:
    ok: bool = strawberry.field(default=False, description="True when you are no longer a member.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `transferOwnership`.")
class TransferOwnershipPayload:
    owner: Membership | None = strawberry.field(default=None, description="The new owner.")
    previous_owner: Membership | None = strawberry.field(default=None, description="You, now an ADMIN.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `updateMemberDatabases`.")
class UpdateMemberDatabasesPayload:
    membership: Membership | None = strawberry.field(default=None, description="The member; `databases` lists the grants now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


REMOVAL_REQUEST_TYPE = "MemberRemovalRequest"  # the global id type of a removal request (a code row)


def _pk(global_id: str, type_name: str) -> uuid.UUID:
    """The primary key the id names; an id that does not decode names nothing, so the resolver's
    own lookup answers NOT_FOUND on its field, as for an id of somebody else's."""
    return pk_of(global_id, type_name) or NO_SUCH_ID


def _pks(global_ids: list[str], type_name: str) -> list[uuid.UUID]:
    return [_pk(global_id, type_name) for global_id in global_ids]


MembershipArg = Annotated[strawberry.ID, strawberry.argument(description="The member (a Membership id).")]
OrganizationArg = Annotated[strawberry.ID, strawberry.argument(description="The organization.")]
InviteArg = Annotated[strawberry.ID, strawberry.argument(description="The invitation.")]


@strawberry.type(description="Invites, members, roles and ownership.")
class OrganizationMutations:
    @strawberry.mutation(
        description="Invite someone by e-mail and/or phone (OWNER, ADMIN of an APPROVED organization; a pending "
        "or rejected one: INVALID). The link lasts 7 days and works once; a pending invite to the same address is "
        "replaced. Nothing in the answer tells whether an address has an account."
    )
    @transactional(InviteMemberPayload)
    async def invite_member(
        self, info: strawberry.Info, input: Annotated[InviteMemberInput, strawberry.argument(description="Who is invited (an e-mail and/or a phone), with which role and databases.")]
    ) -> InviteMemberPayload:
        invite = await invitations.invite_member(
            info.context, _pk(input.organization_id, "Organization"), input.email, input.phone, input.role,
            _pks(input.database_ids or [], "Database"),
        )
        return await expand(info, InviteMemberPayload(invite=Invite.from_model(invite)))

    @strawberry.mutation(
        description="Send a pending or expired invitation again: a new link for 7 more days; the old link stops working. "
        "Only an APPROVED organization (INVALID otherwise)."
    )
    @transactional(ResendInvitePayload)
    async def resend_invite(self, info: strawberry.Info, invite_id: InviteArg) -> ResendInvitePayload:
        invite = await invitations.resend_invite(info.context, _pk(invite_id, "Invite"))
        return await expand(info, ResendInvitePayload(invite=Invite.from_model(invite)))

    @strawberry.mutation(description="Withdraw a pending invitation (OWNER, ADMIN): its link stops working.")
    @transactional(RevokeInvitePayload)
    async def revoke_invite(self, info: strawberry.Info, invite_id: InviteArg) -> RevokeInvitePayload:
        invite = await invitations.revoke_invite(info.context, _pk(invite_id, "Invite"))
        return await expand(info, RevokeInvitePayload(invite=Invite.from_model(invite)))

    @strawberry.mutation(
        description="Join an organization by an invitation link. An address nobody has: a new account with the "
        "full name and password given, signed in at once (tokens in the answer). An address of an existing account: "
        "send that account's own access token with the request (FORBIDDEN otherwise: sign in first); it is added, "
        "and the answer carries no tokens. An invitation whose e-mail and phone are not one account's (two accounts, "
        "or an account and nobody) is INVALID: ask for a new one with one address. A refused invitation stays usable."
    )
    @transactional(AuthPayload)
    async def accept_invite(
        self, info: strawberry.Info, input: Annotated[AcceptInviteInput, strawberry.argument(description="The link's token; a new person's name, password and phone.")]
    ) -> AuthPayload:
        accepted = await invitations.accept_invite(
            info.context, input.token, input.full_name, input.password, input.phone
        )
        if accepted.signed_in is None:
            return await expand(info, AuthPayload(user=User.from_model(accepted.user)))
        return await expand(info, auth_payload(accepted.signed_in))

    @strawberry.mutation(
        description="Give a member another role (OWNER, ADMIN). Never OWNER (see transferOwnership); "
        "the owner's own role never changes."
    )
    @transactional(ChangeMemberRolePayload)
    async def change_member_role(
        self, info: strawberry.Info, membership_id: MembershipArg,
        role: Annotated[Role, strawberry.argument(description="ADMIN, ACCOUNTANT or USER.")],
    ) -> ChangeMemberRolePayload:
        membership = await membership_resolvers.change_member_role(info.context, _pk(membership_id, "Membership"), role)
        return await expand(info, ChangeMemberRolePayload(membership=Membership.from_model(membership)))

    @strawberry.mutation(
        description="Step one of removing a member (OWNER, ADMIN): a code goes to your e-mail (and phone); "
        "confirm with `confirmMemberRemoval` within 15 minutes."
    )
    @transactional(RequestMemberRemovalPayload)
    async def request_member_removal(self, info: strawberry.Info, membership_id: MembershipArg) -> RequestMemberRemovalPayload:
        request = await removal_resolvers.request_member_removal(info.context, _pk(membership_id, "Membership"))
        return await expand(info, RequestMemberRemovalPayload(
            request_id=to_global_id(REMOVAL_REQUEST_TYPE, request.code.id), expires_at=request.code.expires_at,
            sent_to=request.sent_to, membership=Membership.from_model(request.membership),
        ))

    @strawberry.mutation(
        description="Step two: the code removes the member at once: their access ends and their cloud sessions are "
        "terminated. 5 wrong codes kill the code."
    )
    @transactional(ConfirmMemberRemovalPayload)
    async def confirm_member_removal(
        self, info: strawberry.Info,
        request_id: Annotated[strawberry.ID, strawberry.argument(description="From `requestMemberRemoval`.")],
        code: Annotated[str, strawberry.argument(description="The code from the message.")],
    ) -> ConfirmMemberRemovalPayload:
        removal = await removal_resolvers.confirm_member_removal(info.context, _pk(request_id, REMOVAL_REQUEST_TYPE), code)
        return await expand(info, ConfirmMemberRemovalPayload(
            removed_membership_id=to_global_id("Membership", removal.membership_id),
            terminated_sessions=[Session.from_model(s) for s in removal.terminated_sessions],
        ))

    @strawberry.mutation(description="Leave an organization; your sessions in it are terminated. The owner cannot leave.")
    @transactional(LeaveOrganizationPayload)
    async def leave_organization(self, info: strawberry.Info, organization_id: OrganizationArg) -> LeaveOrganizationPayload:
        await removal_resolvers.leave_organization(info.context, _pk(organization_id, "Organization"))
        return LeaveOrganizationPayload(ok=True)

    @strawberry.mutation(description="Hand the organization to another member (OWNER only); you become an ADMIN.")
    @transactional(TransferOwnershipPayload)
    async def transfer_ownership(
        self, info: strawberry.Info, organization_id: OrganizationArg,
        membership_id: Annotated[strawberry.ID, strawberry.argument(description="The member who becomes the owner.")],
    ) -> TransferOwnershipPayload:
        owner, previous = await membership_resolvers.transfer_ownership(
            info.context, _pk(organization_id, "Organization"), _pk(membership_id, "Membership")
        )
        return await expand(
            info, TransferOwnershipPayload(owner=Membership.from_model(owner), previous_owner=Membership.from_model(previous))
        )

    @strawberry.mutation(
        description="Set the cloud databases a USER member may open (OWNER, ADMIN); "
        "their sessions in databases taken away are terminated."
    )
    @transactional(UpdateMemberDatabasesPayload)
    async def update_member_databases(
        self, info: strawberry.Info, membership_id: MembershipArg,
        database_ids: Annotated[list[strawberry.ID], strawberry.argument(description="All databases granted from now on.")],
    ) -> UpdateMemberDatabasesPayload:
        membership = await membership_resolvers.update_member_databases(
            info.context, _pk(membership_id, "Membership"), _pks(database_ids, "Database")
        )
        return await expand(info, UpdateMemberDatabasesPayload(membership=Membership.from_model(membership)))
