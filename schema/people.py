"""People: a member's name and job title, their phone (by their own SMS code), a member the owner
creates with a login and a generated password, and replacing that password (resolvers/organizations/people.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry

from models.identity import User as UserModel
from models.organizations import Role
from resolvers.identity import logins as identity_resolvers
from resolvers.organizations import invitations
from resolvers.organizations import people as resolvers
from resolvers.common.errors import ErrorCode, UserFacingError
from schema.batching import expand
from schema.errors import UserError, token_refusal, transactional
from schema.identity import AuthPayload, User, auth_payload
from schema.members import _pk, _pks
from schema.organizations import Invite, Membership


@strawberry.type(description="The member after `updateMember`, or why it failed.")
class UpdateMemberPayload:
    membership: Membership | None = strawberry.field(default=None, description="The member, with the new name and job title.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="Where the phone change code went, or why it failed.")
class RequestPhoneChangePayload:
    sent_to: str | None = strawberry.field(default=None, description="The new phone, partly hidden.")
    expires_at: dt.datetime | None = strawberry.field(default=None, description="When the code stops working (15 minutes).")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The account with its new phone, or why it failed.")
class ConfirmPhoneChangePayload:
    user: User | None = strawberry.field(default=None, description="You, with the new phone.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.input(description="A member the owner creates with a login and a generated password.")
class CreateMemberInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization.")
    email: str | None = strawberry.field(default=None, description="The login: an e-mail (this or `phone`, not both).")
    phone: str | None = strawberry.field(default=None, description="The login: a phone, +7XXXXXXXXXX (this or `email`).")
    full_name: str = strawberry.field(description="The member's full name.")
    role: Role = strawberry.field(description="ADMIN, ACCOUNTANT or USER (never OWNER).")
    database_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Cloud databases the member may open (for a USER)."
    )


@strawberry.type(description="The invitation a created member signs in by, or why it failed.")
class CreateMemberPayload:
    invite: Invite | None = strawberry.field(
        default=None, description="The invitation: PENDING until the member signs in with the password sent to them "
        "(or follows the link). The password itself is never in any answer."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


MembershipArg = Annotated[strawberry.ID, strawberry.argument(description="The member (a Membership id).")]


@transactional(AuthPayload)
async def _password_changed(self: Any, info: strawberry.Info, user: UserModel, new_password: str) -> AuthPayload:
    return auth_payload(await resolvers.change_password(info.context, user, new_password))


@strawberry.type(description="People: names, job titles, phones, created members, passwords.")
class PeopleMutations:
    @strawberry.mutation(
        description="Change a member's full name and/or job title («должность»; empty clears it, at most 100 "
        "characters). Your own: any member. Another's: OWNER, ADMIN (an admin never the owner's); their full name "
        "only while they belong to no other organization (FORBIDDEN otherwise: it is theirs)."
    )
    @transactional(UpdateMemberPayload)
    async def update_member(
        self, info: strawberry.Info, membership_id: MembershipArg,
        full_name: Annotated[str | None, strawberry.argument(description="The new full name; null: unchanged.")] = None,
        job_title: Annotated[str | None, strawberry.argument(description="The new job title; null: unchanged, empty: none.")] = None,
    ) -> UpdateMemberPayload:
        membership = await resolvers.update_member(info.context, _pk(membership_id, "Membership"), full_name, job_title)
        return await expand(info, UpdateMemberPayload(membership=Membership.from_model(membership)))

    @strawberry.mutation(
        description="Start changing a phone: a 6-digit code goes by SMS to the NEW phone (15 minutes). Your own, or, "
        "as OWNER or ADMIN, a member's (`membershipId`): either way only the member, signed in, confirms it with "
        "`confirmPhoneChange`. A phone of another account answers the same (its holder is told instead)."
    )
    @transactional(RequestPhoneChangePayload)
    async def request_phone_change(
        self, info: strawberry.Info,
        phone: Annotated[str, strawberry.argument(description="The new phone, +7XXXXXXXXXX.")],
        membership_id: Annotated[strawberry.ID | None, strawberry.argument(description="A member's (OWNER, ADMIN); null: your own.")] = None,
    ) -> RequestPhoneChangePayload:
        started = await resolvers.request_phone_change(
            info.context, phone, _pk(membership_id, "Membership") if membership_id is not None else None
        )
        return RequestPhoneChangePayload(sent_to=started.sent_to, expires_at=started.expires_at)

    @strawberry.mutation(
        description="Your phone becomes the one the latest code went to. 5 wrong codes kill it; the old phone is told."
    )
    @transactional(ConfirmPhoneChangePayload)
    async def confirm_phone_change(
        self, info: strawberry.Info, code: Annotated[str, strawberry.argument(description="The code from the SMS.")]
    ) -> ConfirmPhoneChangePayload:
        user = await resolvers.confirm_phone_change(info.context, code)
        return await expand(info, ConfirmPhoneChangePayload(user=User.from_model(user)))

    @strawberry.mutation(
        description="Create a member with a login (an e-mail or a phone) and a generated password sent there "
        "(OWNER, ADMIN of an APPROVED organization). It is an invitation: signing in with that password accepts it, "
        "proves the address and must be followed by `changePassword`; the link in the letter works too. An address "
        "that already has an account gets the ordinary invitation; nothing in the answer tells which."
    )
    @transactional(CreateMemberPayload)
    async def create_member(
        self, info: strawberry.Info,
        input: Annotated[CreateMemberInput, strawberry.argument(description="The login, name, role and databases.")],
    ) -> CreateMemberPayload:
        invite = await invitations.create_member(
            info.context, _pk(input.organization_id, "Organization"), input.email, input.phone, input.full_name,
            input.role, _pks(input.database_ids or [], "Database"),
        )
        return await expand(info, CreateMemberPayload(invite=Invite.from_model(invite)))

    @strawberry.mutation(
        description="Set a new password (the current one checked, counted as a sign-in attempt). Required first after "
        "signing in with a password someone else chose (`mustChangePassword`). Every sign-in of the account ends; "
        "the answer carries new tokens."
    )
    async def change_password(
        self, info: strawberry.Info,
        current_password: Annotated[str, strawberry.argument(description="The password you signed in with.")],
        new_password: Annotated[str, strawberry.argument(description="At least 8 characters.")],
    ) -> AuthPayload:
        """The current password is checked before the transaction opens, as `login` does (its
        attempts count and lock the login). An API token is refused first: it must not try its
        creator's password (an oracle, and a lockout of their sign-in)."""
        if (refused := token_refusal(info)) is not None:
            return AuthPayload(user_errors=[UserError.from_exception(refused)])
        user = await resolvers.password_changer(info.context)
        try:
            checked = await identity_resolvers.check_password(info.context, resolvers.viewer_login(user), current_password)
        except UserFacingError as refusal:
            refusal.field = "current_password" if refusal.field == "password" else refusal.field
            return AuthPayload(user_errors=[UserError.from_exception(refusal, info)])
        if getattr(checked, "id", None) != user.id or not isinstance(checked, UserModel):
            return AuthPayload(user_errors=[UserError.from_exception(
                UserFacingError(ErrorCode.INVALID, identity_resolvers.WRONG_CREDENTIALS, "current_password"), info,
            )])
        return await _password_changed(self, info, user, new_password)
