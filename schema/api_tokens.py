"""Integrators' API tokens: `Organization.apiTokens`, `createApiToken`, `revokeApiToken`
(resolvers/identity/api_tokens.py; docs/api-tokens.md for the integrator)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from foundation.clock import utcnow
from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from resolvers.identity import api_tokens as resolvers
from schema.batching import batched, expand, loaded
from schema.errors import UserError, transactional
from schema.identity import User

SCOPES_TEXT = ", ".join(resolvers.SCOPES)


@strawberry.type(
    description="A program's token to call this API as the member who made it, in one organization and within its "
    "scopes (and that member's current role). The token itself is shown once, by `createApiToken`; only its hash is kept."
)
class ApiToken:
    id: strawberry.ID = strawberry.field(description="The token's global id (for `revokeApiToken`); not the token.")
    name: str = strawberry.field(description="Its name, unique in the organization (kept after a revocation).")
    scopes: list[str] = strawberry.field(
        description=f"What it may do: one of {SCOPES_TEXT} per domain (write implies read)."
    )
    created_at: dt.datetime = strawberry.field(description="When it was made.")
    expires_at: dt.datetime | None = strawberry.field(description="When it stops working.")
    last_used_at: dt.datetime | None = strawberry.field(
        description="When a request last came with it (written at most once a minute); null if never."
    )
    revoked_at: dt.datetime | None = strawberry.field(description="When it was revoked; null while it is not.")
    model: strawberry.Private[resolvers.ApiToken]

    @classmethod
    def from_model(cls, model: resolvers.ApiToken) -> ApiToken:
        return cls(
            id=to_global_id("ApiToken", model.id), name=model.name, scopes=list(model.scopes), created_at=model.created_at,
            expires_at=model.expires_at, last_used_at=model.last_used_at, revoked_at=model.revoked_at, model=model,
        )

    @strawberry.field(description="Whether it works now: neither revoked nor expired.")
    def active(self) -> bool:
        expires_at = self.model.expires_at
        return self.model.revoked_at is None and (expires_at is None or expires_at > utcnow())

    @strawberry.field(description="The member who made it and whom it acts as; null once their account is gone or out of sight.")
    @batched(resolvers.creators_of, to=User.from_model)
    def created_by(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)


@strawberry.input(description="A new API token for an organization.")
class CreateApiTokenInput:
    organization_id: strawberry.ID = strawberry.field(description="The organization it acts in (and in no other).")
    name: str = strawberry.field(description=f"What it is for, 1 to {resolvers.NAME_LENGTH} characters, unique in the organization.")
    scopes: list[str] = strawberry.field(description=f"What it may do: any of {SCOPES_TEXT} (write implies read).")
    expires_at: dt.datetime | None = strawberry.field(
        default=None,
        description=f"When it stops working: in the future, at most {resolvers.MAX_LIFETIME.days} days ahead; "
        f"{resolvers.DEFAULT_LIFETIME.days} days from now when omitted.",
    )


@strawberry.type(description="The result of `createApiToken`.")
class CreateApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(default=None, description="The token's record.")
    token: str | None = strawberry.field(
        default=None,
        description="The token itself (`kit_…`), for `Authorization: Bearer`: shown this once, never again. Keep it secret.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `revokeApiToken`.")
class RevokeApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(default=None, description="The token, revoked.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type
class ApiTokenMutations:
    @strawberry.mutation(
        description="Make an API token for a program (OWNER, ADMIN; FORBIDDEN to others and to API tokens). It acts as you, "
        f"in this organization only, within its scopes and your role; at most {resolvers.PER_ORGANIZATION} in force per "
        "organization. The answer holds the token, once."
    )
    @transactional(CreateApiTokenPayload)
    async def create_api_token(
        self, info: strawberry.Info,
        input: Annotated[CreateApiTokenInput, strawberry.argument(description="The organization, name, scopes and expiry.")],
    ) -> CreateApiTokenPayload:
        row, token = await resolvers.create(
            info.context, pk_of(input.organization_id, "Organization") or NO_SUCH_ID, input.name, input.scopes, input.expires_at
        )
        return await expand(info, CreateApiTokenPayload(api_token=ApiToken.from_model(row), token=token))

    @strawberry.mutation(
        description="Revoke an API token (OWNER, ADMIN): its next request is refused and the WebSockets it opened are "
        "closed (code 4403). A revoked token's name stays taken."
    )
    @transactional(RevokeApiTokenPayload)
    async def revoke_api_token(
        self, info: strawberry.Info, id: Annotated[strawberry.ID, strawberry.argument(description="The token's global id (`ApiToken.id`).")],
    ) -> RevokeApiTokenPayload:
        row = await resolvers.revoke(info.context, pk_of(id, "ApiToken"))
        return await expand(info, RevokeApiTokenPayload(api_token=ApiToken.from_model(row)))
