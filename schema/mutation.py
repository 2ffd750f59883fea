"""The Mutation root. Each mutation's body is its business action; refusals become userErrors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from kabinet.errors import UserFacingError
from resolvers import identity as identity_resolvers
from resolvers.identity import SignedIn
from schema.errors import UserError
from schema.identity import AuthPayload, LoginInput, LogoutPayload, User

P = TypeVar("P")


def refusals_as_user_errors(payload: type[P]) -> Callable[[Callable[..., Awaitable[P]]], Callable[..., Awaitable[P]]]:
    """The one place a mutation's UserFacingError becomes `payload(userErrors=[…])`."""

    def decorate(mutation: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
        @functools.wraps(mutation)
        async def run(*args: Any, **kwargs: Any) -> P:
            try:
                return await mutation(*args, **kwargs)
            except UserFacingError as refusal:
                return payload(user_errors=[UserError.from_exception(refusal)])

        return run

    return decorate


def auth_payload(signed_in: SignedIn) -> AuthPayload:
    return AuthPayload(
        access_token=signed_in.access.token,
        refresh_token=signed_in.refresh_token,
        access_token_expires_at=signed_in.access.expires_at,
        user=User.from_model(signed_in.user),
    )


@strawberry.type(description="Everything a cabinet user can change.")
class Mutation:
    @strawberry.mutation(description="Sign in with an e-mail or phone and a password. Five wrong passwords lock the login for 10 minutes.")
    @refusals_as_user_errors(AuthPayload)
    async def login(self, info: strawberry.Info, input: LoginInput) -> AuthPayload:
        return auth_payload(await identity_resolvers.login(info.context, input.login, input.password))

    @strawberry.mutation(description="Exchange a refresh token for new tokens. Each refresh token works once; reuse revokes the login.")
    @refusals_as_user_errors(AuthPayload)
    async def refresh_token(self, info: strawberry.Info, refresh_token: str) -> AuthPayload:
        return auth_payload(await identity_resolvers.refresh(info.context, refresh_token))

    @strawberry.mutation(description="Sign out: revokes the login the refresh token belongs to.")
    @refusals_as_user_errors(LogoutPayload)
    async def logout(self, info: strawberry.Info, refresh_token: str) -> LogoutPayload:
        await identity_resolvers.logout(info.context, refresh_token)
        return LogoutPayload(ok=True)
