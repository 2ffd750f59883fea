"""Programs' bearer tokens, one store: the provider's service accounts (the provider API), cluster
agents (the agent API), and later integrators' organization-scoped tokens.

A token has a kind (which door it opens), a name, scopes (what it may do there) and an organization
scope (every organization, or the ones named in `program_token_organization`); only its sha256 is
kept. Clusters join the organization scope when kabinet knows more than one (issue 18): a
`program_token_cluster` table beside the organizations' one.
"""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity


class TokenKind(str, Enum):
    SERVICE = "SERVICE"  # a program of the provider writing its records (/provider/v1/…)
    AGENT = "AGENT"  # a 1C cluster's agent (/cluster/…)


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
