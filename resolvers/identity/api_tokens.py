"""Integrators' API tokens (`kit_…`): an organization's OWNER or ADMIN makes one for a program, with
a name, scopes and an expiry; the program then calls the GraphQL API as that member, cut down.

They live in the one token store (models/program_tokens.py, resolvers/identity/program_tokens.py:
kind INTEGRATOR, the sha256 kept, the token shown once, `last_used_at` written at most once a
minute). What a token may do is the role table's (resolvers/common/permissions.py `TokenGrant`): its
one organization (the request's context knows no other membership of its creator), its scopes
(`<domain>:read|write` over TOKEN_DOMAINS, write implying read), the creator's current role (read at
every request: a demoted member's tokens do at most the new role, a removed member's nothing), and
the mutations TOKEN_MUTATIONS names for its write scopes; never more tokens, passwords or the
account. Revoking one refuses its next request, and closes the WebSockets it opened in every
process: its id is the requests' login id, ended like a sign-in (resolvers/identity/sign_ins.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from foundation.clock import utcnow
from models.identity import User
from models.organizations import Organization
from models.program_tokens import ProgramToken, ProgramTokenOrganization, TokenKind
from resolvers.common import audit
from resolvers.common.context import RequestContext, Viewer
from resolvers.common.errors import ErrorCode, UserFacingError, not_found
from resolvers.common.gates import check_member_of, check_permission
from resolvers.common.permissions import TOKEN_DOMAINS, Permission, TokenGrant
from resolvers.identity.tokens import hash_opaque_token

SCOPES = tuple(f"{domain}:{mode}" for domain in TOKEN_DOMAINS for mode in ("read", "write"))
NAME_LENGTH = 60
PER_ORGANIZATION = 20  # tokens in force (neither revoked nor expired) at once
STORED_PER_ORGANIZATION = 200  # rows kept, revoked and expired ones included (housekeeping prunes those)
KEPT_AFTER_END = dt.timedelta(days=30)  # a revoked or expired token stays listed this long, then goes
LISTED = 100  # the newest this many, revoked and expired ones included
DEFAULT_LIFETIME = dt.timedelta(days=90)
MAX_LIFETIME = dt.timedelta(days=366)
PREFIX = "kit_"  # program_tokens.PREFIXES[TokenKind.INTEGRATOR]
_SEP = "/"  # the store's name is "<organization id>/<name>": unique per organization, nothing said of others'


@dataclass(frozen=True)
class ApiToken:
    """One of an organization's API tokens as its managers see it (never the token nor its hash)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    created_by_id: uuid.UUID | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, row: ProgramToken, organization_id: uuid.UUID) -> ApiToken:
        return cls(
            row.id, organization_id, row.name.partition(_SEP)[2] or row.name, tuple(row.scopes), row.created_by_id,
            row.created_at, row.expires_at, row.last_used_at, row.revoked_at,
        )


def scopes_of(names: Iterable[str]) -> list[str]:
    """The scopes asked for, checked and in canonical form: per domain the stronger one (write implies
    read), in TOKEN_DOMAINS order. INVALID on `scopes` for an unknown one or none."""
    wanted = {(name or "").strip().lower() for name in names} - {""}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise UserFacingError(ErrorCode.INVALID, f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(SCOPES)}.", "scopes")
    if not wanted:
        raise UserFacingError(ErrorCode.INVALID, f"Name at least one scope: {', '.join(SCOPES)}.", "scopes")
    return [
        f"{domain}:write" if f"{domain}:write" in wanted else f"{domain}:read"
        for domain in TOKEN_DOMAINS if wanted & {f"{domain}:read", f"{domain}:write"}
    ]


def _expiry(expires_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if expires_at is None:
        return now + DEFAULT_LIFETIME
    if expires_at <= now:
        raise UserFacingError(ErrorCode.INVALID, "The expiry must be in the future.", "expires_at")
    if expires_at > now + MAX_LIFETIME:
        raise UserFacingError(ErrorCode.INVALID, f"A token lasts at most {MAX_LIFETIME.days} days.", "expires_at")
    return expires_at


async def _check_manager(ctx: RequestContext, organization_id: uuid.UUID, field: str | None) -> None:
    """NOT_FOUND outside the viewer's organizations, FORBIDDEN for a role (or a token) that may not."""
    await check_member_of(ctx, organization_id, field)
    check_permission(ctx, organization_id, Permission.MANAGE_API_TOKENS, "Only the owner or an administrator manages API tokens.")


async def create(
    ctx: RequestContext, organization_id: uuid.UUID, name: str, scopes: list[str], expires_at: dt.datetime | None,
) -> tuple[ApiToken, str]:
    """A new token of the organization acting as the viewer: the only time its text is seen."""
    viewer = ctx.require_viewer()
    await _check_manager(ctx, organization_id, "organization_id")
    name = (name or "").strip()
    if not name or len(name) > NAME_LENGTH or _SEP in name:
        raise UserFacingError(ErrorCode.INVALID, f"A token's name is 1 to {NAME_LENGTH} characters, without «{_SEP}».", "name")
    chosen = scopes_of(scopes)
    now = utcnow()
    until = _expiry(expires_at, now)
    # creations for one organization one at a time: the count and the name below are then what they
    # are when this one commits (PostgreSQL let racing ones past the limit, or a name's unique key fail)
    await Organization.filter(id=organization_id).select_for_update().first()
    in_force = ProgramToken.filter(
        kind=TokenKind.INTEGRATOR, organization_scope__organization_id=organization_id, revoked_at=None, expires_at__gt=now
    )
    if await in_force.count() >= PER_ORGANIZATION:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED, f"An organization has at most {PER_ORGANIZATION} API tokens in force: revoke one first.", "organization_id"
        )
    # a create-and-revoke loop must not grow the table without end: ended tokens count until pruned
    stored = ProgramToken.filter(kind=TokenKind.INTEGRATOR, organization_scope__organization_id=organization_id)
    if await stored.count() >= STORED_PER_ORGANIZATION:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED, f"An organization keeps at most {STORED_PER_ORGANIZATION} API tokens, ended ones "
            f"included, until {KEPT_AFTER_END.days} days after they end: try again later.", "organization_id"
        )
    stored_name = f"{organization_id}{_SEP}{name}"
    if await ProgramToken.exists(kind=TokenKind.INTEGRATOR, name=stored_name):
        raise UserFacingError(ErrorCode.CONFLICT, f"A token named {name!r} exists already (a name stays taken until {KEPT_AFTER_END.days} days after its token ends).", "name")
    token = _store().new_token(TokenKind.INTEGRATOR)
    row = await ProgramToken.create(
        kind=TokenKind.INTEGRATOR, name=stored_name, token_hash=hash_opaque_token(token), scopes=chosen,
        all_organizations=False, expires_at=until, created_by_id=viewer.user_id,
    )
    await ProgramTokenOrganization.create(token_id=row.id, organization_id=organization_id)
    await audit.record(
        ctx, "api_token.create", organization_id=organization_id, object_type="ApiToken", object_id=row.id,
        details={"name": name, "scopes": chosen, "expiresAt": until.isoformat()},
    )
    return ApiToken.of(row, organization_id), token


async def tokens_of(ctx: RequestContext, organizations: list[Any], args: dict[str, Any]) -> list[list[ApiToken]]:
    """Each organization's tokens, newest first (LISTED at most), revoked and expired ones too (the
    field's rule admits only its managers)."""
    ids = [o.id for o in organizations]
    found: dict[uuid.UUID, list[ApiToken]] = {i: [] for i in ids}
    links = await ProgramTokenOrganization.filter(
        organization_id__in=ids, token__kind=TokenKind.INTEGRATOR
    ).values_list("token_id", "organization_id")
    organization_of = dict(links)
    if organization_of:
        for row in await ProgramToken.filter(id__in=list(organization_of)).order_by("-created_at", "-id"):
            listed = found[organization_of[row.id]]
            if len(listed) < LISTED:
                listed.append(ApiToken.of(row, organization_of[row.id]))
    return [found[i] for i in ids]


async def creators_of(ctx: RequestContext, tokens: list[ApiToken], args: dict[str, Any]) -> list[User | None]:
    rows = {u.id: u for u in await User.filter(id__in=list({t.created_by_id for t in tokens if t.created_by_id}))}
    return [rows.get(t.created_by_id) if t.created_by_id else None for t in tokens]


async def revoke(ctx: RequestContext, token_id: uuid.UUID | None) -> ApiToken:
    """Revoke one of the organization's tokens: its next request is refused, its open WebSockets closed
    (here and in every process, once the change commits)."""
    ctx.require_viewer()
    link = await ProgramTokenOrganization.filter(token_id=token_id, token__kind=TokenKind.INTEGRATOR).first() if token_id else None
    if link is None or link.organization_id not in await ctx.memberships():
        raise not_found("API token", "id")
    await _check_manager(ctx, link.organization_id, "id")
    row = await ProgramToken.filter(id=token_id).select_for_update().first()
    if row is None:
        raise not_found("API token", "id")
    if row.revoked_at is not None:
        raise UserFacingError(ErrorCode.CONFLICT, f"This token was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC.", "id")
    row.revoked_at = utcnow()
    await row.save(update_fields=["revoked_at"])
    seen = ApiToken.of(row, link.organization_id)
    await audit.record(
        ctx, "api_token.revoke", organization_id=link.organization_id, object_type="ApiToken", object_id=row.id,
        details={"name": seen.name},
    )
    ended = ctx.ended_logins
    if hasattr(ended, "end_everywhere"):
        ctx.after_commit(lambda: ended.end_everywhere([row.id]))
    return seen


async def revoke_members_tokens(ctx: Any, organization_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """A member leaves or is removed (resolvers/organizations/removals.py `end_membership`): the tokens
    they made for the organization are revoked with them, so that coming back never revives them.
    How many were in force."""
    return await _revoke_made_by(ctx, user_id, organization_id, "its creator left the organization")


async def revoke_accounts_tokens(ctx: Any, user_id: uuid.UUID) -> int:
    """An account is disabled (resolvers/provider/staff.py `disable`): every token it made, in every
    organization, is revoked. Refusing them at the door (`viewer_of` reads `is_active`) is not enough:
    a WebSocket opened before stays open until its token's id ends, and the servers a broker's notice
    does not reach learn that only from revoked tokens (resolvers/identity/sign_ins.py's poll)."""
    return await _revoke_made_by(ctx, user_id, None, "its creator's account was disabled")


async def _revoke_made_by(ctx: Any, user_id: uuid.UUID, organization_id: uuid.UUID | None, reason: str) -> int:
    """Revoke the tokens in force `user_id` made (in `organization_id`, or in every organization), each
    an audit entry of its organization; their sockets are closed once the change commits."""
    in_force = ProgramToken.filter(kind=TokenKind.INTEGRATOR, created_by_id=user_id, revoked_at=None)
    if organization_id is not None:
        in_force = in_force.filter(organization_scope__organization_id=organization_id)
    ids = list(await in_force.values_list("id", flat=True))
    if not ids:
        return 0
    organization_of = dict(await ProgramTokenOrganization.filter(token_id__in=ids).values_list("token_id", "organization_id"))
    await ProgramToken.filter(id__in=ids, revoked_at=None).update(revoked_at=utcnow())
    for token_id in ids:
        await audit.record(
            ctx, "api_token.revoke", organization_id=organization_of.get(token_id, organization_id), object_type="ApiToken",
            object_id=token_id, details={"reason": reason},
        )
    ended = getattr(ctx, "ended_logins", None)
    if hasattr(ended, "end_everywhere"):
        ctx.after_commit(lambda: ended.end_everywhere(ids))
    return len(ids)


async def drop_claims_tokens(organization_id: uuid.UUID) -> int:
    """A claim is folded into the provider's organization and deleted (resolvers/organizations/
    moderation.py `_fold`): the tokens made on it are revoked and let go of it (they were made in an
    organization that ends, and never act in the one it joins). Their sockets close when the servers
    read the revocation (resolvers/identity/sign_ins.py's poll). How many."""
    ids = list(await ProgramTokenOrganization.filter(
        organization_id=organization_id, token__kind=TokenKind.INTEGRATOR
    ).values_list("token_id", flat=True))
    if ids:
        await ProgramToken.filter(id__in=ids, revoked_at=None).update(revoked_at=utcnow())
        await ProgramTokenOrganization.filter(organization_id=organization_id, token_id__in=ids).delete()
    return len(ids)


async def viewer_of(token: str) -> Viewer | None:
    """The viewer a `kit_` bearer token stands for: its creator, cut down to the token's organization
    and scopes (TokenGrant); None for an unknown, revoked or expired token, or one whose creator is
    gone or disabled. The creator's role is read with the request's memberships, so it is the current one."""
    program = await _store().authenticate(TokenKind.INTEGRATOR, token)
    if program is None or program.created_by_id is None or program.token_id is None or not program.organization_ids:
        return None
    if not await User.exists(id=program.created_by_id, is_active=True):
        return None
    (organization_id,) = program.organization_ids
    grant = TokenGrant(program.token_id, organization_id, program.scopes)
    return Viewer(program.created_by_id, program.token_id, program.expires_at, False, grant)


def is_api_token(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX)


def _store() -> Any:
    """resolvers/identity/program_tokens.py, imported when first needed: it and the provider's rooms
    import each other, and this module is imported early (by the GraphQL view)."""
    from resolvers.identity import program_tokens

    return program_tokens
