"""1C clusters kabinet knows: their databases (infobases), what an agent token reaches on them, the
snapshot of their sessions an agent reports, and whether an agent is reporting (`connected`).

A cluster is a name the operator adds (`kabinet cluster add`); a database names its cluster and its
infobase there (`kabinet cluster attach`, the provider's database record). The agent reports a
cluster's sessions as a snapshot (resolvers/cloud/cluster_snapshot.py), which also marks the cluster
connected; the housekeeping worker marks it disconnected when none came for
KABINET_CLUSTER_STALE_SECONDS. `set_connected` owns that flip, both ways, with the organizations'
data event.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.cloud import Cluster, Database, Session
from models.select import select_by_ids
from resolvers.cloud import cluster_mode, sessions
from resolvers.common.context import Actor
from resolvers.common.errors import ErrorCode, UserFacingError
from events.log import DATA
from resolvers.identity.program_tokens import Program

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
DESCRIPTION = 500
TIME_ZONE = 64
INFOBASE = 200  # characters: models.cloud.Database.infobase



# ---------------------------------------------------------------------------------- the operator's clusters

def _checked_name(name: str | None) -> str:
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise UserFacingError(
            ErrorCode.INVALID, "A cluster's name is 1 to 100 lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, e.g. main.", "name",
        )
    return name


def _checked_time_zone(time_zone: str | None) -> str | None:
    if time_zone is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    time_zone = time_zone.strip()
    try:
        if not time_zone or len(time_zone) > TIME_ZONE:
            raise ValueError
        ZoneInfo(time_zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise UserFacingError(ErrorCode.INVALID, "The time zone is an IANA name, e.g. Europe/Moscow.", "time_zone") from None
    return time_zone


async def add(name: str, *, description: str | None = None, time_zone: str | None = None) -> Cluster:
    """A cluster kabinet knows from now on (not connected until its agent reports)."""
    name = _checked_name(name)
    if description is not None and len(description) > DESCRIPTION:
        raise UserFacingError(ErrorCode.INVALID, f"A description is at most {DESCRIPTION} characters.", "description")
    time_zone = _checked_time_zone(time_zone)
    if await Cluster.exists(name=name):
        raise UserFacingError(ErrorCode.CONFLICT, f"A cluster named {name!r} exists already.", "name")
    return await Cluster.create(name=name, description=description or None, time_zone=time_zone)


async def by_name(name: str | None) -> Cluster | None:
    """The cluster of this name; None for a text that is no cluster's name (never sent to the database:
    PostgreSQL refuses a NUL in a text, a 500 for whoever typed it)."""
    return await Cluster.get_or_none(name=name) if isinstance(name, str) and NAME.fullmatch(name) else None


async def named(name: str | None, field_name: str = "cluster") -> Cluster:
    cluster = await by_name(name)
    if cluster is None:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No cluster is named {name!r} (`kabinet cluster list`).", field_name)
    return cluster


@dataclass(frozen=True)
class ClusterListing:
    cluster: Cluster
    databases: int


async def listing() -> list[ClusterListing]:
    """Every cluster by name, with how many databases it holds."""
    clusters = list(await Cluster.all().order_by("name"))
    counts: dict[uuid.UUID, int] = {}
    for cluster_id in await Database.filter(cluster_id__in=[c.id for c in clusters]).values_list("cluster_id", flat=True):
        counts[cluster_id] = counts.get(cluster_id, 0) + 1
    return [ClusterListing(c, counts.get(c.id, 0)) for c in clusters]


def checked_infobase(infobase: Any, field_name: str = "infobase") -> str:
    if not isinstance(infobase, str) or not infobase.strip() or len(infobase.strip()) > INFOBASE or "\x00" in infobase:
        raise UserFacingError(ErrorCode.INVALID, f"An infobase's name is 1 to {INFOBASE} characters.", field_name)
    return infobase.strip()


async def place(database: Database, cluster: Cluster | None, infobase: str | None) -> bool:
    """Put the database on `cluster` as `infobase` (None, None: on no cluster kabinet knows). The
    caller's transaction; CONFLICT when another database is that infobase already. True when it moved."""
    if (cluster is None) != (infobase is None):
        raise UserFacingError(ErrorCode.INVALID, "A database on a cluster names its infobase there, and only then.", "infobase")
    cluster_id = cluster.id if cluster else None
    if database.cluster_id == cluster_id and database.infobase == infobase:
        return False
    if cluster is not None and await Database.filter(cluster_id=cluster.id, infobase=infobase).exclude(id=database.id).exists():
        raise UserFacingError(
            ErrorCode.CONFLICT, f"Another database is the infobase {infobase!r} of the cluster {cluster.name!r}.", "infobase"
        )
    database.cluster_id, database.infobase = cluster_id, infobase
    await database.save(update_fields=["cluster_id", "infobase"])
    return True


async def attach(actor: Actor, database: Database, cluster: Cluster | None, infobase: str | None) -> bool:
    """The operator (or the provider's record) puts a database on a cluster, or on none: `place`, and
    the organization's data event (its dashboards show the cluster). True when it moved."""
    previous = database.cluster_id
    if not await place(database, cluster, infobase):
        return False
    await left_cluster(actor, database, previous, utcnow())
    await actor.record_event(database.organization_id, DATA, "CHANGED", {"areas": ["cloud"]})
    return True


async def left_cluster(actor: Actor, database: Database, previous_cluster_id: uuid.UUID | None, at: dt.datetime) -> int:
    """When a database has left the cluster `previous_cluster_id` (for none or another): its sessions
    there end at `at` (ACTIVE → ENDED, TERMINATING → TERMINATED). No agent reports them any more, so
    nothing else would: they would hold the organization's places for ever (its new sessions refused)
    and a termination asked of them would never be done. How many ended (0: it did not leave one)."""
    if previous_cluster_id is None or previous_cluster_id == database.cluster_id:
        return 0
    ended = 0
    for session in await Session.filter(database_id=database.id, status__in=list(sessions.LIVE)):
        ended += await sessions.ended(actor, session, max(at, session.started_at))
    return ended


async def database_named(identifier: str, pk: uuid.UUID | None) -> Database:
    """A database by its id (`pk`, decoded from a global id by the caller) or the provider's external id."""
    database = await Database.get_or_none(id=pk) if pk else None
    if database is None:
        database = await Database.filter(external_id=identifier).first()
    if database is None:
        raise UserFacingError(ErrorCode.NOT_FOUND, "No database has this id (its global id or the provider's external id).", "database")
    return database


# ---------------------------------------------------------------------------------- an agent token's reach

def reach(program: Program, cluster_path: str = "database__cluster_id") -> Q | None:
    """What an agent token acts for, as a filter on sessions or update runs (a database's own
    `cluster_id` for databases): its organizations', or those of databases on its clusters. None: all."""
    if program.organization_ids is None:
        return None
    parts = []
    if program.organization_ids:
        parts.append(Q(organization_id__in=list(program.organization_ids)))
    if program.cluster_ids:
        parts.append(Q(**{f"{cluster_path}__in": list(program.cluster_ids)}))
    if not parts:
        return Q(id__isnull=True)  # nothing
    return Q(*parts, join_type="OR")


async def reaches(program: Program, organization_id: uuid.UUID | None, database_id: uuid.UUID | None) -> bool:
    """Whether the token acts for an object of this organization and database (a session, a run)."""
    if program.acts_for(organization_id):
        return True
    if not program.cluster_ids or database_id is None:
        return False
    return await Database.exists(id=database_id, cluster_id__in=list(program.cluster_ids))


async def reaches_cluster(program: Program, cluster: Cluster) -> bool:
    """Whether the token may report this cluster at all: an every-organization token any, a
    cluster-scoped one its own, an organization-scoped one a cluster holding a database of its
    organizations (only those apply). Others are answered as clusters that do not exist: a token
    learns no cluster's name it has nothing on."""
    if program.organization_ids is None or cluster.id in program.cluster_ids:
        return True
    if not program.organization_ids:
        return False
    return await Database.exists(cluster_id=cluster.id, organization_id__in=list(program.organization_ids))


async def reaches_whole_cluster(program: Program, cluster: Cluster) -> bool:
    """Whether the token acts for every database on the cluster: only then does its report say the
    cluster is connected (an organization's token must not make others' lists look live)."""
    if program.organization_ids is None or cluster.id in program.cluster_ids:
        return True
    if not program.organization_ids:
        return False
    return not await Database.filter(cluster_id=cluster.id).exclude(organization_id__in=list(program.organization_ids)).exists()


async def names_of(database_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    """Each database's (cluster name, infobase), as the agent knows them."""
    ids = list(set(database_ids))
    if not ids:
        return {}
    rows = await Database.filter(id__in=ids).values_list("id", "cluster__name", "infobase")
    return {database_id: (cluster, infobase) for database_id, cluster, infobase in rows}


# ---------------------------------------------------------------------------------- connected

async def set_connected(actor: Actor, cluster: Cluster, connected: bool) -> bool:
    """The one flip of a cluster's `connected`, both ways (a report, or none for a while): changed
    only if it was the other way (of concurrent callers one flips), with the data event ("cloud") of
    every organization with a database on the cluster, whose dashboards show it. False: no change."""
    if not await Cluster.filter(id=cluster.id, connected=not connected).update(connected=connected):
        cluster.connected = connected
        return False
    cluster.connected = connected
    organization_ids = set(await Database.filter(cluster_id=cluster.id).values_list("organization_id", flat=True))
    for organization_id in sorted(organization_ids):
        await actor.record_event(organization_id, DATA, "CHANGED", {"areas": ["cloud"]})
    return True


async def mark_stale(actor: Actor, now: dt.datetime, stale_seconds: float) -> list[Cluster]:
    """Clusters connected whose agent has not reported for `stale_seconds`: disconnected (the
    housekeeping worker, in its caller's transaction). The clusters flipped."""
    before = now - dt.timedelta(seconds=stale_seconds)
    flipped = []
    for cluster in await Cluster.filter(Q(last_report_at__isnull=True) | Q(last_report_at__lt=before), connected=True):
        if await set_connected(actor, cluster, False):
            flipped.append(cluster)
    return flipped


# ---------------------------------------------------------------------------------- reads (GraphQL)

@dataclass(frozen=True)
class ClusterOfDatabase:
    """A cluster as a database shows it: seen by whoever sees that database (permissions.TYPE_RULES)."""

    cluster: Cluster
    database: Database


async def cluster_of(ctx: Any, databases: list[Database], args: dict[str, Any]) -> list[ClusterOfDatabase | None]:
    """Each database's cluster (null: on none kabinet knows), in one statement for all."""
    found = await select_by_ids(Cluster, (d.cluster_id for d in databases))
    return [ClusterOfDatabase(found[d.cluster_id], d) if d.cluster_id in found else None for d in databases]


async def sessions_as_of_of(ctx: Any, databases: list[Database], args: dict[str, Any]) -> list[dt.datetime | None]:
    """Each database's `sessions_as_of`, in one statement for all (and the cluster mode's one)."""
    found = await select_by_ids(Cluster, (d.cluster_id for d in databases))
    simulated = any(map(cluster_mode.runs_simulated, databases)) and (await cluster_mode.read(ctx.settings)).simulated
    now = utcnow()
    return [sessions_as_of(d, found.get(d.cluster_id), simulated=simulated, now=now) for d in databases]


def sessions_as_of(database: Database, cluster: Cluster | None, *, simulated: bool, now: dt.datetime) -> dt.datetime | None:
    """When the database's session list was last confirmed by its cluster: the cluster's last report;
    `now` for a database the simulated cluster runs (kabinet's own, not one the provider sent); None
    when no agent ever reported it."""
    if cluster is not None:
        return cluster.last_report_at
    if simulated and cluster_mode.runs_simulated(database):
        return now
    return None
