"""What the cluster agent names, found: it speaks the cluster's language (an organization's code, a
database's id, a user's e-mail), and kabinet/agent_api/ asks here rather than reading models.

Lookups only; the changes are the sessions' and update runs' own (resolvers/cloud/sessions.py,
resolvers/updates/jobs.py). A name that matches nothing is a UserFacingError with the domain field."""

from __future__ import annotations

import uuid
from typing import Any

from models.cloud import ClientKind, Database
from models.identity import User
from models.organizations import Membership, Organization
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.program_tokens import Program

CLIENT_KINDS = tuple(kind.value for kind in ClientKind)


def client_kind(value: Any) -> ClientKind:
    try:
        return ClientKind(value)
    except ValueError:
        raise UserFacingError(ErrorCode.INVALID, f"`clientKind` must be one of {', '.join(CLIENT_KINDS)}.", "client_kind") from None


async def organization_and_database(
    code: str | None, database_id: uuid.UUID | None, *, database_named: bool, program: Program
) -> tuple[Organization, Database | None]:
    """The session's organization and database, by the organization's code, the database's id or both
    (which must agree), among what the agent's token reaches (its organizations, or the databases on
    its clusters). `database_named`: the agent sent a database id (`database_id` is None when it
    decoded to nothing)."""
    database = None
    if database_named:
        database = await Database.get_or_none(id=database_id) if database_id else None
        if database is None or not program.acts_for_database(database.organization_id, database.cluster_id):
            raise UserFacingError(ErrorCode.NOT_FOUND, "No such database.", "database_id")
    if code is not None:
        organization = await Organization.get_or_none(code=code)
        if organization is None or not (
            program.acts_for(organization.id) or (database is not None and database.organization_id == organization.id)
        ):
            raise UserFacingError(ErrorCode.NOT_FOUND, "No organization has this code.", "organization_code")
        if database is not None and database.organization_id != organization.id:
            raise UserFacingError(ErrorCode.INVALID, "The database belongs to another organization.", "database_id")
        return organization, database
    if database is None:
        raise UserFacingError(
            ErrorCode.INVALID, "Name the session's organization (`organizationCode`) or database (`databaseId`).",
            "organization_code",
        )
    return await Organization.get(id=database.organization_id), database


async def member_by_email(organization_id: uuid.UUID, email: str | None) -> User | None:
    """The cabinet user the session belongs to, when the cluster knows their e-mail and they are a member."""
    if email is None:
        return None
    user = await User.get_or_none(email=email.lower())
    if user is None or not await Membership.exists(organization_id=organization_id, user_id=user.id):
        return None
    return user


async def codes_of(organization_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each organization's code, the name the cluster knows it by."""
    if not organization_ids:
        return {}
    return dict(await Organization.filter(id__in=organization_ids).values_list("id", "code"))


async def code_of(organization_id: uuid.UUID) -> str | None:
    return (await codes_of({organization_id})).get(organization_id)
