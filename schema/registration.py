"""Joining the cabinet: sign-up, password recovery, e-mail change, adding an organization by INN,
join requests, and the provider's moderation of new organizations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import strawberry

from models.organizations import JoinRequest as JoinRequestModel
from models.organizations import JoinRequestStatus, ModerationStatus
from models.organizations import Organization as OrganizationModel
from models.organizations import OrganizationKind, Role
from resolvers.identity import email_change
from resolvers.organizations import join_requests
from resolvers.organizations import moderation
from resolvers.organizations import claims as organization_claims
from resolvers.identity import password_reset
from resolvers.identity import sign_ups
from resolvers.common.gates import SELECTED
from resolvers.common.pagination import PageRequest
from resolvers.identity.sign_ups import CodeSent, ConfirmationChannel
from schema.batching import batched, expand, loaded, selected
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.identity import AuthPayload, User, auth_payload
from schema.organizations import Membership, Organization
from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from schema.relay import Connection, First, Node, connection_of

described_enum(ConfirmationChannel, "Where a sign-up's confirmation code is sent: SMS to the phone, or the e-mail.", {
    "SMS": "A text message to the phone.",
    "EMAIL": "A letter to the e-mail address.",
})
described_enum(JoinRequestStatus, "PENDING until the organization's owner or an administrator decides.", {
    "PENDING": "Waiting for the owner's or an administrator's decision.",
    "APPROVED": "Accepted: the requester is a member.",
    "REJECTED": "Declined.",
})


# ---------------------------------------------------------------- arguments in the domain's terms


def _registration_pk(registration_id: str) -> uuid.UUID:
    """A malformed id names no sign-up: the domain answers it as one confirmed or replaced."""
    return pk_of(registration_id, "Registration") or NO_SUCH_ID


def _page_request(info: strawberry.Info, first: int | None, after: str | None) -> PageRequest:
    """The page asked for; a caller not signed in hears that first, not what is wrong with `first`."""
    info.context.require_viewer()
    return PageRequest.from_args({"first": first, "after": after}, info.context.settings.max_page_size)


def _wants_total(info: strawberry.Info) -> bool:
    return "total_count" in selected(info)[SELECTED]


# ---------------------------------------------------------------- types


@strawberry.type(
    description="A request to join an organization that was already in the cabinet when the user added its INN."
)
class JoinRequest(Node):
    position: str | None = strawberry.field(description="Job title the requester gave.")
    status: JoinRequestStatus = strawberry.field(description="PENDING, APPROVED or REJECTED.")
    created_at: dt.datetime = strawberry.field(description="When the request was made.")
    decided_at: dt.datetime | None = strawberry.field(description="When it was approved or rejected.")
    model: strawberry.Private[JoinRequestModel]

    @classmethod
    def from_model(cls, model: JoinRequestModel) -> JoinRequest:
        return cls(
            id=to_global_id("JoinRequest", model.id), position=model.position, status=model.status,
            created_at=model.created_at, decided_at=model.decided_at, model=model,
        )

    @strawberry.field(description="INN of the organization the request is for.")
    @batched(join_requests.inns_of)
    def inn(self, info: strawberry.Info) -> str:
        return loaded(self, info)

    @strawberry.field(description="Who asks to join.")
    @batched(join_requests.users_of, to=User.from_model)
    def user(self, info: strawberry.Info) -> User:
        return loaded(self, info)

    @strawberry.field(description="The organization; null while the caller is not a member of it (e.g. for the requester until approved).")
    @batched(join_requests.visible_organization_of, to=Organization.from_model)
    def organization(self, info: strawberry.Info) -> Organization | None:
        return loaded(self, info)


@strawberry.type(description="An organization as the provider's moderators see it.")
class ModeratedOrganization:
    organization_id: strawberry.ID = strawberry.field(description="Global id of the organization.")
    name: str = strawberry.field(description="Its name: as the owner gave it (a placeholder with the INN when they gave none), or as the provider's records set it.")
    inn: str = strawberry.field(description="Taxpayer number.")
    kind: OrganizationKind = strawberry.field(description="Legal form.")
    code: str = strawberry.field(description="Subscriber code, given when it was added.")
    moderation_status: ModerationStatus = strawberry.field(description="PENDING, APPROVED or REJECTED.")
    moderation_note: str | None = strawberry.field(description="Why it was rejected.")
    created_at: dt.datetime = strawberry.field(description="When it was added.")
    model: strawberry.Private[OrganizationModel]

    @classmethod
    def from_model(cls, model: OrganizationModel) -> ModeratedOrganization:
        return cls(
            organization_id=to_global_id("Organization", model.id), name=model.name, inn=model.inn, kind=model.kind,
            code=model.code, moderation_status=model.moderation_status, moderation_note=model.moderation_note,
            created_at=model.created_at, model=model,
        )

    @strawberry.field(description="Its OWNER (who added it); null when nobody owns it yet, e.g. a customer the provider's records sent.")
    @batched(moderation.owners_of, to=User.from_model)
    def owner(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)

    @strawberry.field(description="Whether the provider's records sent it (it carries the provider's own id, never shown).")
    def from_provider(self) -> bool:
        return self.model.external_id is not None

    @strawberry.field(
        description="Who claims it — its OWNER — with what they have proved; null when nobody owns it yet."
    )
    @batched(moderation.claimants_of, to=lambda claimant: Claimant.from_domain(claimant))
    def claimant(self, info: strawberry.Info) -> Claimant | None:
        return loaded(self, info)

    @strawberry.field(
        description="For a claim (PENDING or REJECTED): the customer of the same INN that stands beside it — the "
        "organization the provider's records sent (or one approved before). Approving the claim makes its claimant "
        "that organization's OWNER (the claim folds into it). Null for a customer, or when the INN has none."
    )
    @batched(moderation.customers_beside, to=lambda row: ModeratedOrganization.from_model(row))
    def customer(self, info: strawberry.Info) -> ModeratedOrganization | None:
        return loaded(self, info)


@strawberry.type(description="Who claims an organization, as the provider's moderators see them: the person and what they have proved.")
class Claimant:
    user_id: strawberry.ID = strawberry.field(description="Global id of the user.")
    full_name: str = strawberry.field(description="Full name as the person gave it.")
    email: str | None = strawberry.field(description="E-mail address.")
    email_verified: bool = strawberry.field(description="Whether they confirmed the e-mail by a code sent to it.")
    phone: str | None = strawberry.field(description="Phone number, +7XXXXXXXXXX.")
    phone_verified: bool = strawberry.field(description="Whether they confirmed the phone by an SMS code.")
    known_contact: bool = strawberry.field(
        description="Whether their confirmed phone is one the provider lists for this INN (a known contact): such a "
        "claim is approved without staff."
    )
    claimed_at: dt.datetime = strawberry.field(description="When they claimed it (became its owner).")
    model: strawberry.Private[moderation.Claimant]  # what the type rule (staff only) is asked about

    @classmethod
    def from_domain(cls, claimant: moderation.Claimant) -> Claimant:
        user = claimant.user
        return cls(
            user_id=to_global_id("User", user.id), full_name=user.full_name, email=user.email,
            email_verified=user.email_verified, phone=user.phone, phone_verified=user.phone_verified,
            known_contact=claimant.known_contact, claimed_at=claimant.claimed_at, model=claimant,
        )


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input(description="Sign-up form: who you are and how you will sign in.")
class RegisterInput:
    full_name: str = strawberry.field(description="Full name (Ф.И.О.).")
    phone: str = strawberry.field(description="Mobile phone, +7XXXXXXXXXX; a login, and where the code goes by default.")
    email: str = strawberry.field(description="E-mail; a login, and where notifications go.")
    password: str = strawberry.field(description="At least 8 characters.")
    confirm_by: ConfirmationChannel = strawberry.field(
        default=ConfirmationChannel.SMS, description="Where to send the confirmation code: SMS (default) or EMAIL."
    )


@strawberry.type(description="A sign-up waiting for its confirmation code.")
class RegistrationPayload:
    registration_id: strawberry.ID | None = strawberry.field(
        default=None, description="Pass it to `confirmRegistration` and `resendRegistrationCode`."
    )
    code_sent_to: str | None = strawberry.field(default=None, description="Where the code went, partly hidden.")
    code_expires_at: dt.datetime | None = strawberry.field(default=None, description="When the code stops working.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")

    @classmethod
    def of(cls, sent: CodeSent) -> RegistrationPayload:
        return cls(
            registration_id=strawberry.ID(to_global_id("Registration", sent.user.id)), code_sent_to=sent.sent_to,
            code_expires_at=sent.expires_at,
        )


@strawberry.type(description="The result of `requestPasswordReset`: the same whether or not the login exists.")
class RequestPasswordResetPayload:
    ok: bool = strawberry.field(default=False, description="True: if the login is an account's, a code is on its way.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="A code was sent to the new e-mail address.")
class RequestEmailChangePayload:
    code_sent_to: str | None = strawberry.field(default=None, description="Where the code went, partly hidden.")
    code_expires_at: dt.datetime | None = strawberry.field(default=None, description="When the code stops working.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `confirmEmailChange`.")
class ConfirmEmailChangePayload:
    user: User | None = strawberry.field(default=None, description="The signed-in user with the new e-mail.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.input(description="An organization to add to your account, by its INN.")
class AddOrganizationInput:
    inn: str = strawberry.field(description="10 digits for a legal entity, 12 for a sole proprietor or an individual.")
    kind: OrganizationKind = strawberry.field(description="Legal form; decides how many digits the INN has.")
    name: str | None = strawberry.field(
        default=None, description="Name, e.g. ООО «Ромашка»; a placeholder with the INN when left out."
    )
    position: str = strawberry.field(description="Your job title in the organization.")


@strawberry.type(
    description="What `addOrganization` did: added the organization (`organization`), or, when its INN was "
    "already in the cabinet, asked its owner and administrators to let you in (`joinRequest`)."
)
class AddOrganizationPayload:
    organization: Organization | None = strawberry.field(
        default=None, description="The added organization (moderationStatus PENDING, or APPROVED for a known contact)."
    )
    join_request: JoinRequest | None = strawberry.field(
        default=None, description="The request to join an organization that already exists."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of approving or rejecting a join request.")
class DecideJoinRequestPayload:
    join_request: JoinRequest | None = strawberry.field(default=None, description="The request, now decided.")
    membership: Membership | None = strawberry.field(default=None, description="The new membership (on approval).")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of moderating an organization.")
class ModerateOrganizationPayload:
    organization: ModeratedOrganization | None = strawberry.field(default=None, description="The organization, moderated.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


# ---------------------------------------------------------------- mutations


@strawberry.type(description="Signing up, recovering a password, changing e-mail, adding organizations and moderating them.")
class RegistrationMutations:
    @strawberry.mutation(
        description="Sign up (no token needed). Creates an account that works once `confirmRegistration` gets "
        "the 6-digit code sent by SMS (or e-mail). The answer never tells whether an address already has an "
        "account: then no code is sent, the address gets a notice instead (sign in or recover the password). "
        "At most one code a minute and 5 an hour to an address, 20 an hour from one client address (RATE_LIMITED)."
    )
    @transactional(RegistrationPayload)
    async def register(
        self, info: strawberry.Info,
        input: Annotated[RegisterInput, strawberry.argument(description="The new user's name, phone, e-mail, password and where the code goes.")],
    ) -> RegistrationPayload:
        sent = await sign_ups.register(
            info.context, input.full_name, input.phone, input.email, input.password, input.confirm_by
        )
        return RegistrationPayload.of(sent)

    @strawberry.mutation(
        description="Send a new confirmation code for a sign-up (the previous one stops working). "
        "At most one a minute and 5 an hour (RATE_LIMITED)."
    )
    @transactional(RegistrationPayload)
    async def resend_registration_code(
        self, info: strawberry.Info,
        registration_id: Annotated[strawberry.ID, strawberry.argument(description="From `register`.")],
    ) -> RegistrationPayload:
        return RegistrationPayload.of(await sign_ups.resend_registration_code(info.context, _registration_pk(registration_id)))

    @strawberry.mutation(
        description="Confirm a sign-up with its code: activates the account and signs in. A code works once, "
        "for 15 minutes (EXPIRED), and 5 wrong codes kill it (RATE_LIMITED)."
    )
    @transactional(AuthPayload)
    async def confirm_registration(
        self, info: strawberry.Info,
        registration_id: Annotated[strawberry.ID, strawberry.argument(description="From `register`.")],
        code: Annotated[str, strawberry.argument(description="The 6 digits from the SMS or e-mail.")],
    ) -> AuthPayload:
        return await expand(info, auth_payload(await sign_ups.confirm_registration(info.context, _registration_pk(registration_id), code)))

    @strawberry.mutation(
        description="Forgot the password (no token needed): sends a code to the login (e-mail or phone) if it is "
        "an account's. Answers ok either way, so nothing tells whether the login exists. At most one code a "
        "minute and 5 an hour to a login, 20 an hour from one client address (RATE_LIMITED, the same for any login)."
    )
    @transactional(RequestPasswordResetPayload)
    async def request_password_reset(
        self, info: strawberry.Info,
        login: Annotated[str, strawberry.argument(description="E-mail or phone number (+7XXXXXXXXXX).")],
    ) -> RequestPasswordResetPayload:
        await password_reset.request_password_reset(info.context, login)
        return RequestPasswordResetPayload(ok=True)

    @strawberry.mutation(
        description="Set a new password with the code from `requestPasswordReset`: every other login of the "
        "account is signed out, and you are signed in."
    )
    @transactional(AuthPayload)
    async def reset_password(
        self, info: strawberry.Info,
        login: Annotated[str, strawberry.argument(description="The login the code was requested for.")],
        code: Annotated[str, strawberry.argument(description="The 6 digits from the SMS or e-mail.")],
        new_password: Annotated[str, strawberry.argument(description="At least 8 characters.")],
    ) -> AuthPayload:
        return await expand(info, auth_payload(await password_reset.reset_password(info.context, login, code, new_password)))

    @strawberry.mutation(
        description="Start changing your e-mail: a code goes to the NEW address. The answer is the same when another "
        "account has that address (nothing tells it): then no code goes, and the address is told someone tried."
    )
    @transactional(RequestEmailChangePayload)
    async def request_email_change(
        self, info: strawberry.Info,
        new_email: Annotated[str, strawberry.argument(description="The address to switch to.")],
    ) -> RequestEmailChangePayload:
        sent = await email_change.request_email_change(info.context, new_email)
        return RequestEmailChangePayload(code_sent_to=sent.sent_to, code_expires_at=sent.expires_at)

    @strawberry.mutation(description="Finish changing your e-mail with the code sent to the new address.")
    @transactional(ConfirmEmailChangePayload)
    async def confirm_email_change(
        self, info: strawberry.Info,
        code: Annotated[str, strawberry.argument(description="The 6 digits from the e-mail.")],
    ) -> ConfirmEmailChangePayload:
        user = await email_change.confirm_email_change(info.context, code)
        return await expand(info, ConfirmEmailChangePayload(user=User.from_model(user)))

    @strawberry.mutation(
        description="Add an organization by INN. A new one: you become its OWNER and it awaits moderation "
        "(approved at once when your confirmed phone is one the provider knows for that INN). One already in the "
        "cabinet: its owner and administrators are asked to let you in (a join request)."
    )
    @transactional(AddOrganizationPayload)
    async def add_organization(
        self, info: strawberry.Info,
        input: Annotated[AddOrganizationInput, strawberry.argument(description="The organization's INN, kind and name, and the caller's position in it.")],
    ) -> AddOrganizationPayload:
        added = await organization_claims.add_organization(info.context, input.inn, input.kind, input.name, input.position)
        return await expand(info, AddOrganizationPayload(
            organization=Organization.from_model(added.organization) if added.organization else None,
            join_request=JoinRequest.from_model(added.join_request) if added.join_request else None,
        ))

    @strawberry.mutation(
        description="Let the requester in with a role (never OWNER). OWNER or ADMIN of the organization, once the "
        "provider has approved it (INVALID while it awaits moderation or was rejected; the request waits)."
    )
    @transactional(DecideJoinRequestPayload)
    async def approve_join_request(
        self, info: strawberry.Info,
        request_id: Annotated[strawberry.ID, strawberry.argument(description="The join request.")],
        role: Annotated[Role, strawberry.argument(description="The role the requester gets: ADMIN, ACCOUNTANT or USER.")],
    ) -> DecideJoinRequestPayload:
        row, membership = await join_requests.approve_join_request(
            info.context, pk_of(request_id, "JoinRequest") or NO_SUCH_ID, role
        )
        return await expand(
            info, DecideJoinRequestPayload(join_request=JoinRequest.from_model(row), membership=Membership.from_model(membership))
        )

    @strawberry.mutation(description="Turn a join request down. OWNER or ADMIN of the organization.")
    @transactional(DecideJoinRequestPayload)
    async def reject_join_request(
        self, info: strawberry.Info,
        request_id: Annotated[strawberry.ID, strawberry.argument(description="The join request.")],
    ) -> DecideJoinRequestPayload:
        row = await join_requests.reject_join_request(info.context, pk_of(request_id, "JoinRequest") or NO_SUCH_ID)
        return await expand(info, DecideJoinRequestPayload(join_request=JoinRequest.from_model(row)))

    @strawberry.mutation(
        description="Provider staff only: approve an organization awaiting moderation (or one rejected before). When "
        "the provider's records sent its INN, the claim folds into that organization: the answer is that organization, "
        "with the claimant its OWNER (CONFLICT when it has an owner already)."
    )
    @transactional(ModerateOrganizationPayload)
    async def approve_organization(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
    ) -> ModerateOrganizationPayload:
        row = await moderation.approve_organization(info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID)
        return await expand(info, ModerateOrganizationPayload(organization=ModeratedOrganization.from_model(row)))

    @strawberry.mutation(description="Provider staff only: reject an organization awaiting moderation, saying why.")
    @transactional(ModerateOrganizationPayload)
    async def reject_organization(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
        reason: Annotated[str, strawberry.argument(description="Why; the owner is told.")],
    ) -> ModerateOrganizationPayload:
        row = await moderation.reject_organization(
            info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID, reason
        )
        return await expand(info, ModerateOrganizationPayload(organization=ModeratedOrganization.from_model(row)))


# ---------------------------------------------------------------- queries (merged into the Query root)


@strawberry.type(description="Join requests and the moderation queue.")
class RegistrationQueries:
    @strawberry.field(
        description="Requests to join an organization, oldest first. OWNER and ADMIN only (FORBIDDEN for other "
        "roles); null for an organization that is not yours."
    )
    async def join_requests(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
        status: Annotated[
            JoinRequestStatus | None, strawberry.argument(description="Only these; PENDING unless given (null: all).")
        ] = JoinRequestStatus.PENDING,
        first: First = None,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> Connection[JoinRequest] | None:
        page = await join_requests.join_requests_of(
            info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID, status,
            _page_request(info, first, after), with_total=_wants_total(info),
        )
        return await expand(info, connection_of(JoinRequest.from_model)(page)) if page is not None else None

    @strawberry.field(description="Your own requests to join organizations, newest first.")
    async def my_join_requests(
        self, info: strawberry.Info,
        first: First = None,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> Connection[JoinRequest]:
        page = await join_requests.viewer_join_requests(
            info.context, _page_request(info, first, after), with_total=_wants_total(info)
        )
        return await expand(info, connection_of(JoinRequest.from_model)(page))

    @strawberry.field(description="Provider staff only (FORBIDDEN for others): organizations by moderation status, oldest first.")
    async def organizations_for_moderation(
        self, info: strawberry.Info,
        status: Annotated[
            ModerationStatus | None, strawberry.argument(description="Only these; PENDING unless given (null: all).")
        ] = ModerationStatus.PENDING,
        first: First = None,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> Connection[ModeratedOrganization]:
        page = await moderation.organizations_for_moderation(
            info.context, status, _page_request(info, first, after), with_total=_wants_total(info)
        )
        return await expand(info, connection_of(ModeratedOrganization.from_model)(page))
