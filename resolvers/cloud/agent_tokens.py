"""Cluster agents' tokens: AGENT tokens of the programs' one store (resolvers/identity/program_tokens.py), each
issued for named organizations, named clusters, or (explicitly) every organization. The
deployment's cluster mode is resolvers/cloud/cluster_mode.py's (`cluster_mode` below reads it for the agent API).

An agent token is the agent's identity: its name owns the agent's leases (update_jobs.agent_owner),
and its organizations (or the databases on its clusters: resolvers/cloud/clusters.py `reach`) are all it
sees and touches over /cluster/… (kabinet/agent_api/).

Hashes in KABINET_CLUSTER_AGENT_TOKENS (before the store) still authenticate, as tokens for every
organization named `env:<first 12 of the hash>`; the server says so at start-up (`legacy_warning`).
"""

from __future__ import annotations

import hmac
import re

from foundation.settings import Settings
from models.program_tokens import ProgramToken, TokenKind
from resolvers.cloud import cluster_mode as modes
from resolvers.identity import program_tokens
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.program_tokens import Program
from resolvers.provider.audit import ActorKind
from resolvers.identity.tokens import hash_opaque_token

AGENT_SCOPES = ("cluster",)  # sessions, terminations, limits and update runs of its organizations
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LEGACY_PREFIX = "env:"  # a settings token's name: no agent token's name has a colon


async def create(
    name: str, organization_codes: list[str] | None, *, all_organizations: bool, by: tuple[ActorKind, str],
    cluster_names: list[str] | None = None,
) -> tuple[ProgramToken, str]:
    """A new agent token for the organizations of these codes, for the clusters of these names (the
    databases on them), or for every organization when `all_organizations` (a deployment with one
    cluster); exactly one of the three."""
    if not NAME.fullmatch((name or "").strip()):
        raise UserFacingError(
            ErrorCode.INVALID, "An agent token's name is 1 to 100 letters, digits, '.', '_' or '-', e.g. cluster-msk-1.", "name"
        )
    if [all_organizations, organization_codes is not None, cluster_names is not None].count(True) != 1:
        raise UserFacingError(
            ErrorCode.INVALID, "Name the token's organizations (their codes), its clusters, or say it is for every "
            "organization: exactly one of the three.", "organizations",
        )
    return await program_tokens.create(
        TokenKind.AGENT, name, list(AGENT_SCOPES), organization_codes=organization_codes, cluster_names=cluster_names, by=by
    )


async def tokens() -> list[ProgramToken]:
    return await program_tokens.tokens(TokenKind.AGENT)


async def revoke(name: str, *, by: tuple[ActorKind, str]) -> ProgramToken:
    return await program_tokens.revoke(TokenKind.AGENT, name, by=by)


def _legacy(settings: Settings, token: str) -> Program | None:
    """A token whose hash is in KABINET_CLUSTER_AGENT_TOKENS: for every organization."""
    presented = hash_opaque_token(token)
    # Compare with every hash (no early exit), in constant time each.
    matches = [known for known in settings.agent_token_hashes if hmac.compare_digest(presented, known)]
    if not matches:
        return None
    return Program(TokenKind.AGENT, f"{LEGACY_PREFIX}{matches[0][:12]}", frozenset(AGENT_SCOPES), None)


async def authenticate(settings: Settings, token: str | None) -> Program | None:
    """The agent a bearer token belongs to: a token of the store, or one of the settings' hashes."""
    if not token or len(token) > program_tokens.MAX_TOKEN_LENGTH:
        return None
    program = await program_tokens.authenticate(TokenKind.AGENT, token)
    return program or _legacy(settings, token)


def legacy_warning(settings: Settings) -> str | None:
    """What start-up says when KABINET_CLUSTER_AGENT_TOKENS is set (None when it is not)."""
    count = len(settings.agent_token_hashes)
    if not count:
        return None
    return (
        f"KABINET_CLUSTER_AGENT_TOKENS holds {count} agent token hash(es): each acts for EVERY organization. "
        "Replace them with scoped tokens (`kabinet agent token create --name … --organizations CODE,…`, or "
        "`--all-organizations` for a deployment with one cluster), then remove the setting."
    )


async def cluster_mode(settings: Settings) -> str:
    """`agent` or `simulated`: the deployment's mode by resolvers/cloud/cluster_mode.py's rules (kept here for
    the agent API, which refuses claims to a deployment whose runs its simulated cluster carries out)."""
    return (await modes.read(settings)).mode
