"""What the cluster agent is told to admit: per organization, its concurrent-sessions limit and the
sessions running; per database, its lock of new sessions. The agent refuses what goes beyond, and
kabinet refuses it again when the agent reports it anyway (`sessions.admission_refusal`)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from tortoise.functions import Count

from models.cloud import Database, Session
from models.organizations import Organization
from resolvers.cloud import database_locks
from resolvers.cloud.subscriptions import limits_of
from resolvers.cloud.sessions import LIVE


@dataclass(frozen=True)
class DatabaseAdmission:
    database_id: uuid.UUID
    name: str
    refusal: str | None  # why no new session is admitted now (locked), or None
    lock_message: str | None
    locked_from: dt.datetime | None
    locked_until: dt.datetime | None


@dataclass(frozen=True)
class OrganizationAdmission:
    organization_id: uuid.UUID
    organization_code: str
    sessions_limit: int | None  # None: no cloud subscription, nothing to admit
    databases_limit: int | None
    running_sessions: int
    databases: list[DatabaseAdmission]


async def admission_limits(
    now: dt.datetime, organization_code: str | None = None, organization_ids: frozenset[uuid.UUID] | None = None
) -> list[OrganizationAdmission]:
    """Every organization with a cloud subscription (or the one with this code), of `organization_ids`
    only (an agent token's scope) when given."""
    query = Organization.filter(**({"code": organization_code} if organization_code else {}))
    if organization_ids is not None:
        query = query.filter(id__in=list(organization_ids))
    limits = await limits_of([row["id"] for row in await query.values("id")], now)
    organizations = await Organization.filter(id__in=list(limits)).order_by("code")
    running = {
        row["organization_id"]: row["n"]
        for row in await Session.filter(organization_id__in=list(limits), status__in=LIVE)
        .annotate(n=Count("id")).group_by("organization_id").values("organization_id", "n")
    }
    databases: dict[uuid.UUID, list[DatabaseAdmission]] = {}
    for database in await Database.filter(organization_id__in=list(limits)).order_by("name", "id"):
        databases.setdefault(database.organization_id, []).append(DatabaseAdmission(
            database.id, database.name, database_locks.refusal_of(database, now),
            database.lock_message, database.locked_from, database.locked_until,
        ))
    return [
        OrganizationAdmission(
            o.id, o.code, limits[o.id].sessions, limits[o.id].databases, running.get(o.id, 0), databases.get(o.id, []),
        )
        for o in organizations
    ]
