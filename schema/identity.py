"""People: the User type and what login, token refresh and logout answer."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from models.identity import User as UserModel
from models.organizations import Invite as InviteModel
from resolvers.organizations import reads as org_resolvers
from resolvers.identity import logins as identity_resolvers
from resolvers.common.errors import UserFacingError
from resolvers.identity.logins import SignedIn
from schema.batching import batched, loaded
from schema.errors import UserError, transactional
from foundation.ids import to_global_id
from schema.relay import Node, list_of

if TYPE_CHECKING:
    from schema.organizations import Membership


def _is_viewer(info: strawberry.Info, user: UserModel) -> bool:
    viewer = info.context.signed_in_viewer()
    return viewer is not None and viewer.user_id == user.id


def _membership(model: Any) -> Any:
    from schema.organizations import Membership

    return Membership.from_model(model)


@strawberry.type(description="A person who signs in to the cabinet; may belong to several organizations.")
class User(Node):
    full_name: str = strawberry.field(description="Full name as the person gave it.")
    email: str | None = strawberry.field(
        description="E-mail address proven by a code; also a login. Null until one is proven (see `unprovenEmail`)."
    )
    phone: str | None = strawberry.field(
        description="Phone number proven by a code, +7XXXXXXXXXX; also a login. Null until one is proven "
        "(see `unprovenPhone`)."
    )
    model: strawberry.Private[UserModel]

    @strawberry.field(
        description="Only to the user themselves (null for anyone else): the e-mail they gave but have not "
        "proven by a code yet. It is no login and reserves nothing (whoever proves it first has it); "
        "`requestEmailChange` with it sends the code that proves it."
    )
    def unproven_email(self, info: strawberry.Info) -> str | None:
        return self.model.unproven_email if _is_viewer(info, self.model) else None

    @strawberry.field(
        description="Only to the user themselves (null for anyone else): the phone they gave but have not "
        "proven by a code yet (a sign-up confirmed by SMS, or an invitation's SMS, proves one). It is no login "
        "and reserves nothing."
    )
    def unproven_phone(self, info: strawberry.Info) -> str | None:
        return self.model.unproven_phone if _is_viewer(info, self.model) else None

    @classmethod
    def from_model(cls, model: UserModel) -> User:
        return cls(
            id=to_global_id("User", model.id), full_name=model.full_name, email=model.email, phone=model.phone,
            model=model,
        )

    @strawberry.field(
        description="The organizations this user belongs to and the role in each "
        "(for another user: only those organizations where you may see members)."
    )
    @batched(org_resolvers.memberships_of_user, to=list_of(_membership))
    def memberships(self, info: strawberry.Info) -> list[Annotated[Membership, strawberry.lazy("schema.organizations")]]:
        return loaded(self, info)


@strawberry.input(description="Credentials for `login`.")
class LoginInput:
    login: str = strawberry.field(description="E-mail or phone number (+7XXXXXXXXXX).")
    password: str = strawberry.field(description="The password.")


@strawberry.type(description="Tokens of a signed-in user, or why signing in failed.")
class AuthPayload:
    access_token: str | None = strawberry.field(
        default=None, description="Short-lived JWT; send it as `Authorization: Bearer <token>`. Null on a refusal, "
        "and when `acceptInvite` added an existing account (it came signed in: no new login is started for it)."
    )
    refresh_token: str | None = strawberry.field(
        default=None, description="Opaque, single-use token that `refreshToken` exchanges for new tokens; "
        "null whenever `accessToken` is."
    )
    access_token_expires_at: dt.datetime | None = strawberry.field(
        default=None, description="When the access token stops working; null whenever `accessToken` is."
    )
    user: User | None = strawberry.field(
        default=None, description="The signed-in user (for `acceptInvite`, the account that joined)."
    )
    must_change_password: bool | None = strawberry.field(
        default=None, description="True when the password used was one someone else chose (a member the owner "
        "created, first sign-in): every operation but `changePassword` is refused until it is changed. Null "
        "whenever `accessToken` is."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `logout`.")
class LogoutPayload:
    ok: bool = strawberry.field(default=False, description="True when the login was signed out.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


def auth_payload(signed_in: SignedIn) -> AuthPayload:
    return AuthPayload(
        access_token=signed_in.access.token,
        refresh_token=signed_in.refresh_token,
        access_token_expires_at=signed_in.access.expires_at,
        user=User.from_model(signed_in.user),
        must_change_password=bool(signed_in.user.must_change_password),
    )


@transactional(AuthPayload)
async def _signed_in(self: Any, info: strawberry.Info, user: UserModel | InviteModel) -> AuthPayload:
    if isinstance(user, InviteModel):  # a created member's first sign-in accepts their invitation
        from resolvers.organizations import invitations

        return auth_payload((await invitations.accept_created_member(info.context, user.id)).signed_in)
    return auth_payload(await identity_resolvers.sign_in_user(info.context, user))


@strawberry.type(description="Signing in and out.")
class IdentityMutations:
    @strawberry.mutation(description="Sign in with an e-mail or phone and a password. Five wrong passwords lock the login for 10 minutes.")
    async def login(
        self, info: strawberry.Info, input: Annotated[LoginInput, strawberry.argument(description="The e-mail or phone, and the password.")]
    ) -> AuthPayload:
        """The password is checked before the transaction opens: no transaction (on SQLite, the one
        connection) is held while it is hashed."""
        try:
            user = await identity_resolvers.check_password(info.context, input.login, input.password)
        except UserFacingError as refusal:
            return AuthPayload(user_errors=[UserError.from_exception(refusal, info)])
        return await _signed_in(self, info, user)

    @strawberry.mutation(description="Exchange a refresh token for new tokens. Each refresh token works once; reuse revokes the login.")
    @transactional(AuthPayload)
    async def refresh_token(
        self, info: strawberry.Info,
        refresh_token: Annotated[str, strawberry.argument(description="The refresh token from signing in or from the last refresh.")],
    ) -> AuthPayload:
        return auth_payload(await identity_resolvers.refresh(info.context, refresh_token))

    @strawberry.mutation(description="Sign out: revokes the login the refresh token belongs to.")
    @transactional(LogoutPayload)
    async def logout(
        self, info: strawberry.Info, refresh_token: Annotated[str, strawberry.argument(description="A refresh token of the login to end.")]
    ) -> LogoutPayload:
        await identity_resolvers.logout(info.context, refresh_token)
        return LogoutPayload(ok=True)
