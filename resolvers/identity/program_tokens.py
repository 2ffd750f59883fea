"""Programs' tokens, one store (models/program_tokens.py): the provider's service accounts, cluster
agents, integrators (their organization-scoped tokens: resolvers/identity/api_tokens.py, which makes,
lists and revokes them through an organization's OWNER or ADMIN and checks them here).

Every kind has the same life: made with a name, scopes and organizations, shown once (only its sha256
is kept: a token is 256 random bits, so a plain hash is as good as a slow one), listed with its last
use, revoked by name (refused from that moment: every request looks the token up, no cache to outlive
it). A token reads `<prefix><random>` so that logs and leak scanners recognise one. `last_used_at` is
written at most once a minute per token, so a busy program costs a read per request, not a write.

What a kind's scopes are is its door's: the provider API's are resolvers/provider/records.py SCOPES,
the agent API's resolvers/cloud/agent_tokens.py AGENT_SCOPES. Which organizations a token acts for is the
same for every kind (`Program.organization_ids`); an agent token may instead act for clusters
(`Program.cluster_ids`: the databases on them, resolvers/cloud/clusters.py `reach`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.organizations import Organization
from models.cloud import Cluster
from models.program_tokens import ProgramToken, ProgramTokenCluster, ProgramTokenOrganization, TokenKind
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.provider.audit import ActorKind, record_action
from resolvers.identity.tokens import hash_opaque_token

# kabinet provider service, kabinet cluster agent, kabinet integrator token
PREFIXES = {TokenKind.SERVICE: "kps_", TokenKind.AGENT: "kca_", TokenKind.INTEGRATOR: "kit_"}
MAX_TOKEN_LENGTH = 200
LAST_USED_EVERY = dt.timedelta(minutes=1)
NAME_LENGTH = 100
KIND_NAMES = {TokenKind.SERVICE: "service account", TokenKind.AGENT: "agent token", TokenKind.INTEGRATOR: "API token"}


@dataclass(frozen=True)
class Program:
    """A program as its token proves it: which token (`name`, unique per kind), what it may do
    (`scopes`) and for which organizations (`organization_ids`; None: every one) or clusters
    (`cluster_ids`: the databases on them; its `organization_ids` is then empty). `token_id` is None
    for a token the deployment's settings name (KABINET_CLUSTER_AGENT_TOKENS)."""

    kind: TokenKind
    name: str
    scopes: frozenset[str]
    organization_ids: frozenset[uuid.UUID] | None
    token_id: uuid.UUID | None = None
    cluster_ids: frozenset[uuid.UUID] = frozenset()
    created_by_id: uuid.UUID | None = None  # an integrator's token: the member it acts as
    expires_at: dt.datetime | None = None

    def acts_for(self, organization_id: uuid.UUID | None) -> bool:
        """For everything of this organization (a cluster-scoped token: for no organization as a whole)."""
        return self.organization_ids is None or organization_id in self.organization_ids

    def acts_for_database(self, organization_id: uuid.UUID | None, cluster_id: uuid.UUID | None) -> bool:
        """For a database of this organization on this cluster (and what is in it: sessions, runs)."""
        return self.acts_for(organization_id) or (cluster_id is not None and cluster_id in self.cluster_ids)


def new_token(kind: TokenKind) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def scopes_of(value: str | Iterable[str], known: Sequence[str]) -> list[str]:
    """The scopes named (comma-separated, or a list), each one of `known`, in their order there."""
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {name.strip() for name in names if name and name.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UserFacingError(ErrorCode.INVALID, f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(known)}.", "scopes")
    if not wanted:
        raise UserFacingError(ErrorCode.INVALID, f"Name at least one scope: {', '.join(known)}.", "scopes")
    return [scope for scope in known if scope in wanted]


async def _every_one_named(model: Any, key: str, names: Iterable[str], field: str, none: str, unknown: str) -> list:
    """The rows of `model` whose `key` is one of `names` (blanks dropped), in `key` order; INVALID
    (`none`) when nothing is named, NOT_FOUND (`unknown`, with the names) when a name finds no row."""
    wanted = sorted({name.strip() for name in names if name and name.strip()})
    if not wanted:
        raise UserFacingError(ErrorCode.INVALID, none, field)
    found = list(await model.filter(**{f"{key}__in": wanted}).order_by(key))
    missing = sorted(set(wanted) - {getattr(row, key) for row in found})
    if missing:
        raise UserFacingError(ErrorCode.NOT_FOUND, unknown.format(", ".join(missing)), field)
    return found


async def _organizations_named(codes: Iterable[str]) -> list[Organization]:
    """The organizations of these codes (as the provider knows them); every code must name one."""
    return await _every_one_named(
        Organization, "code", codes, "organizations",
        "Name at least one organization (its code), or every organization.", "No organization has the code {}.",
    )


async def _clusters_named(names: Iterable[str]) -> list[Cluster]:
    """The clusters of these names; every name must name one."""
    return await _every_one_named(
        Cluster, "name", names, "clusters", "Name at least one cluster.", "No cluster is named {} (`kabinet cluster list`).",
    )


async def create(
    kind: TokenKind, name: str, scopes: list[str], *, organization_codes: Iterable[str] | None, by: tuple[ActorKind, str],
    cluster_names: Iterable[str] | None = None,
) -> tuple[ProgramToken, str]:
    """A new token of `kind` for the organizations of `organization_codes`, or the clusters of
    `cluster_names` (both None: every organization): the only time the token is seen (its hash is
    kept). `scopes` are the caller's, checked by it."""
    name = (name or "").strip()
    if not name or len(name) > NAME_LENGTH:
        raise UserFacingError(ErrorCode.INVALID, f"A {KIND_NAMES[kind]}'s name is 1 to {NAME_LENGTH} characters.", "name")
    if await ProgramToken.exists(kind=kind, name=name):
        raise UserFacingError(
            ErrorCode.CONFLICT, f"A {KIND_NAMES[kind]} named {name!r} exists already (names stay taken after a revocation).", "name"
        )
    organizations = await _organizations_named(organization_codes) if organization_codes is not None else None
    clusters = await _clusters_named(cluster_names) if cluster_names is not None else None
    token = new_token(kind)
    row = await ProgramToken.create(
        kind=kind, name=name, token_hash=hash_opaque_token(token), scopes=scopes,
        all_organizations=organizations is None and clusters is None,
    )
    if organizations:
        await ProgramTokenOrganization.bulk_create([ProgramTokenOrganization(token_id=row.id, organization_id=o.id) for o in organizations])
    if clusters:
        await ProgramTokenCluster.bulk_create([ProgramTokenCluster(token_id=row.id, cluster_id=c.id) for c in clusters])
    details: dict = {"scopes": scopes}
    if kind is not TokenKind.SERVICE:
        details.update(kind=kind.value, organizations=[o.code for o in organizations] if organizations else "all")
        if clusters:
            details.update(organizations=[], clusters=[c.name for c in clusters])
    await record_action(by[0], by[1], "token.create", name, details)
    return row, token


async def tokens(kind: TokenKind) -> list[ProgramToken]:
    """Every token of `kind`, revoked ones too, oldest first."""
    return list(await ProgramToken.filter(kind=kind).order_by("created_at", "name"))


async def organization_codes(tokens_: Iterable[ProgramToken]) -> dict[uuid.UUID, list[str]]:
    """Each token's organizations by code (for those not acting for every organization)."""
    ids = [t.id for t in tokens_ if not t.all_organizations]
    codes: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if ids:
        for token_id, code in await ProgramTokenOrganization.filter(token_id__in=ids).order_by("organization__code").values_list(
            "token_id", "organization__code"
        ):
            codes[token_id].append(code)
    return codes


async def cluster_names(tokens_: Iterable[ProgramToken]) -> dict[uuid.UUID, list[str]]:
    """Each token's clusters by name (tokens scoped to none are absent)."""
    ids = [t.id for t in tokens_ if not t.all_organizations]
    names: dict[uuid.UUID, list[str]] = {}
    if ids:
        for token_id, name in await ProgramTokenCluster.filter(token_id__in=ids).order_by("cluster__name").values_list(
            "token_id", "cluster__name"
        ):
            names.setdefault(token_id, []).append(name)
    return names


async def revoke(kind: TokenKind, name: str, *, by: tuple[ActorKind, str]) -> ProgramToken:
    """Revoke a token by its name: its next request is refused."""
    row = await ProgramToken.get_or_none(kind=kind, name=(name or "").strip())
    if row is None:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No {KIND_NAMES[kind]} is named {name!r}.", "name")
    if row.revoked_at is not None:
        raise UserFacingError(ErrorCode.CONFLICT, f"The {KIND_NAMES[kind]} {name!r} was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC.", "name")
    row.revoked_at = utcnow()
    await row.save(update_fields=["revoked_at"])
    await record_action(by[0], by[1], "token.revoke", row.name, None if kind is TokenKind.SERVICE else {"kind": kind.value})
    return row


async def authenticate(kind: TokenKind, token: str | None) -> Program | None:
    """The program a bearer token of `kind` belongs to; None for no token, an unknown, revoked or
    expired one, or one of another kind."""
    if not token or not token.startswith(PREFIXES[kind]) or len(token) > MAX_TOKEN_LENGTH:
        return None
    now = utcnow()
    row = await ProgramToken.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), token_hash=hash_opaque_token(token), kind=kind, revoked_at=None).first()
    if row is None:
        return None
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_EVERY:
        # conditional: of the requests arriving together, one writes
        await ProgramToken.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY), id=row.id
        ).update(last_used_at=now)
    organization_ids, cluster_ids = None, frozenset()
    if not row.all_organizations:
        organization_ids = frozenset(await ProgramTokenOrganization.filter(token_id=row.id).values_list("organization_id", flat=True))
        if kind is TokenKind.AGENT:
            cluster_ids = frozenset(await ProgramTokenCluster.filter(token_id=row.id).values_list("cluster_id", flat=True))
    return Program(kind, row.name, frozenset(row.scopes), organization_ids, row.id, cluster_ids, row.created_by_id, row.expires_at)


async def ever_issued(kind: TokenKind) -> bool:
    """Whether a token of `kind` was ever made here (revoked ones count)."""
    return await ProgramToken.exists(kind=kind)
