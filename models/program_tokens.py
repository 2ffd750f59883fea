"""Programs' bearer tokens, one store: the provider's service accounts (the provider API), cluster
agents (the agent API), and integrators' organization-scoped tokens (`kit_`, made by an OWNER or ADMIN
over GraphQL: resolvers/identity/api_tokens.py).

A token has a kind (which door it opens), a name, scopes (what it may do there) and an organization
scope (every organization, or the ones named in `program_token_organization`); only its sha256 is
kept. An agent token may instead be scoped to clusters (`program_token_cluster`): it acts for the
databases on them.
"""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity


class TokenKind(str, Enum):
    SERVICE = "SERVICE"  # a program of the provider writing its records (/provider/v1/…)
    AGENT = "AGENT"  # a 1C cluster's agent (/cluster/…)
    INTEGRATOR = "INTEGRATOR"  # an integrator's program acting as its creator in one organization (/graphql)


class ProgramToken(Entity):
    """A program's bearer token: kind, name (unique per kind, kept after a revocation), the sha256 of
    the token, its scopes, and its organizations (every one when `all_organizations`, otherwise those
    of program_token_organization). Refused from `revoked_at` or `expires_at` on."""

    kind = fields.CharEnumField(TokenKind, max_length=20)
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    scopes = fields.JSONField(default=list)
    all_organizations = fields.BooleanField(default=False)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    # An integrator's token acts as the member who made it (their current role, cut down to its scopes);
    # its `name` is "<organization id>/<name>", so names are unique per organization and kind.
    created_by = fields.ForeignKeyField("models.User", related_name="program_tokens", null=True, on_delete=fields.SET_NULL)

    class Meta:
        table = "program_token"
        unique_together = (("kind", "name"),)


class ProgramTokenOrganization(Entity):
    """One organization a token acts for (a token without `all_organizations` acts for these only)."""

    token = fields.ForeignKeyField("models.ProgramToken", related_name="organization_scope", on_delete=fields.CASCADE)
    organization = fields.ForeignKeyField("models.Organization", related_name="program_tokens", on_delete=fields.CASCADE)

    class Meta:
        table = "program_token_organization"
        unique_together = (("token", "organization"),)


class ProgramTokenCluster(Entity):
    """One cluster a token acts for: the databases on it, their sessions and update runs (a token
    scoped to clusters acts for these only)."""

    token = fields.ForeignKeyField("models.ProgramToken", related_name="cluster_scope", on_delete=fields.CASCADE)
    cluster = fields.ForeignKeyField("models.Cluster", related_name="program_tokens", on_delete=fields.CASCADE)

    class Meta:
        table = "program_token_cluster"
        unique_together = (("token", "cluster"),)
