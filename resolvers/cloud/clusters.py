"""1C clusters kabinet knows: their databases (infobases), what an agent token reaches on them, the
snapshot of their sessions an agent reports, and whether an agent is reporting (`connected`).

A cluster is a name the operator adds (`kabinet cluster add`); a database names its cluster and its
infobase there (`kabinet cluster attach`, the provider's database record). The agent reports a
cluster's sessions as a snapshot (POST /cluster/sessions/snapshot, kabinet/agent_api/): each listed
infobase's list is complete, so what kabinet does not know starts and what it knows and is missing
ends, through the sessions' own transitions (resolvers/cloud/sessions.py). A snapshot also marks the
cluster connected; the housekeeping worker marks it disconnected when none came for
KABINET_CLUSTER_STALE_SECONDS. `set_connected` owns that flip, both ways, with the organizations'
data event.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.cloud import ClientKind, Cluster, Database, Session
from models.select import select_by_ids
from resolvers.cloud import cluster_mode
from resolvers.cloud import sessions
from resolvers.common.context import Actor
from resolvers.common.errors import ErrorCode, UserFacingError
from events.log import DATA
from resolvers.identity.program_tokens import Program

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
DESCRIPTION = 500
TIME_ZONE = 64
INFOBASE = 200  # characters: models.cloud.Database.infobase

# What 1C's `app-id` of a session says about the user's connection (kabinet's ClientKind). Every other
# app id (BackgroundJob, Designer, COMConnection, WSConnection, HTTPServiceConnection, SrvrConsole,
# RAS, JobScheduler, …) is no user's session: ignored, never shown, never ended by kabinet.
APP_CLIENT_KINDS: dict[str, ClientKind] = {
    "1CV8C": ClientKind.THIN_CLIENT,
    "WebClient": ClientKind.WEB_CLIENT,
    "MobileClient": ClientKind.MOBILE,
    "1CV8": ClientKind.RDP,  # the thick client runs over remote desktop in the hosted cloud
}

# A snapshot's bounds: what one report may cost.
MAX_INFOBASES = 2_000
MAX_SESSIONS = 20_000
CLUSTER_SESSION_ID = 100  # characters, as models.cloud.Session holds
USER_NAME = 200
HOST = 200
APP_ID = 100
EARLIEST_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)  # no 1C session started before
CHUNK = 1_000  # values in one IN (…) of a snapshot's reads


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


# ---------------------------------------------------------------------------------- the snapshot

def reported_time(value: Any, latest: dt.datetime) -> dt.datetime | str:
    """A moment the cluster saw, in UTC, or why it is not one: an ISO 8601 date-time with its UTC
    offset, from EARLIEST_TIME to `latest` (a session "started" in the future would never end and
    hold a place of the limit)."""
    if not isinstance(value, str) or len(value) > 40:
        return "an ISO 8601 date-time with its UTC offset is required"
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "not an ISO 8601 date-time"
    if moment.tzinfo is None:
        return "it needs its UTC offset, e.g. 2026-11-20T09:30:00+03:00"
    if moment < EARLIEST_TIME:  # compared without converting: year 1 at +14:00 has no UTC date
        return f"before {EARLIEST_TIME:%Y-%m-%d}"
    if moment > latest:
        return f"in the future (kabinet's clock reads {latest:%Y-%m-%dT%H:%M:%SZ} with the allowed skew)"
    return moment.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class ReportedSession:
    cluster_session_id: str
    user_name: str
    client_kind: ClientKind
    host: str | None
    started_at: dt.datetime
    path: str


@dataclass
class ReportedInfobase:
    name: str
    path: str
    sessions: list[ReportedSession] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # every cluster session id listed (ignored and rejected lines too)


@dataclass(frozen=True)
class Rejected:
    path: str
    field: str | None
    reason: str


def _text(line: dict, name: str, max_length: int, *, required: bool) -> str | None:
    value = line.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError("required: a non-empty string")
    value = value.strip()
    if len(value) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    return value


def read_snapshot(infobases: Any, latest: dt.datetime) -> tuple[list[ReportedInfobase], list[Rejected]]:
    """The infobases a snapshot lists and the lines refused, each alone with its path, field and
    reason. An infobase whose own entry is bad is refused whole (and left untouched: its list is not
    known to be complete); a bad session line is refused and its session, if known, left as it was.
    UserFacingError for what makes the whole snapshot unreadable (not a list, beyond the bounds)."""
    if not isinstance(infobases, list):
        raise UserFacingError(ErrorCode.INVALID, "`infobases` is required: a list of infobases with their sessions.", "infobases")
    if len(infobases) > MAX_INFOBASES:
        raise UserFacingError(ErrorCode.INVALID, f"A snapshot lists at most {MAX_INFOBASES} infobases.", "infobases")
    total = sum(len(i["sessions"]) for i in infobases if isinstance(i, dict) and isinstance(i.get("sessions"), list))
    if total > MAX_SESSIONS:
        raise UserFacingError(ErrorCode.INVALID, f"A snapshot lists at most {MAX_SESSIONS} sessions.", "infobases")
    reports: list[ReportedInfobase] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for i, entry in enumerate(infobases):
        path = f"infobases[{i}]"
        if not isinstance(entry, dict):
            rejected.append(Rejected(path, None, "an infobase is an object with `name` and `sessions`"))
            continue
        try:
            name = checked_infobase(entry.get("name"), "name")
        except UserFacingError as error:
            rejected.append(Rejected(path, "name", error.message))
            continue
        if name in seen:
            rejected.append(Rejected(path, "name", "this infobase is listed twice"))
            continue
        seen.add(name)
        lines = entry.get("sessions")
        if not isinstance(lines, list):
            rejected.append(Rejected(path, "sessions", "`sessions` is required: the infobase's complete list (empty: none)"))
            continue
        report = ReportedInfobase(name, path)
        for j, line in enumerate(lines):
            line_path = f"{path}.sessions[{j}]"
            refusal = _read_line(report, line, line_path, latest)
            if refusal is not None:
                rejected.append(refusal)
        reports.append(report)
    return reports, rejected


def _read_line(report: ReportedInfobase, line: Any, path: str, latest: dt.datetime) -> Rejected | None:
    if not isinstance(line, dict):
        return Rejected(path, None, "a session is an object")
    try:
        cluster_session_id = _text(line, "clusterSessionId", CLUSTER_SESSION_ID, required=True)
    except ValueError as error:
        return Rejected(path, "clusterSessionId", str(error))
    if cluster_session_id in report.present:
        return Rejected(path, "clusterSessionId", "this session is listed twice")
    report.present.add(cluster_session_id)  # from here on, a refused line leaves its session as it was
    values: dict[str, Any] = {}
    try:
        values["appId"] = _text(line, "appId", APP_ID, required=True)
    except ValueError as error:
        return Rejected(path, "appId", str(error))
    client_kind = APP_CLIENT_KINDS.get(values["appId"])
    if client_kind is None:
        # not a user's session: ignored before its other fields are read (rac prints background jobs
        # and the cluster's own sessions with an empty user-name and host)
        return None
    for name, max_length, required in (("userName", USER_NAME, True), ("host", HOST, False)):
        try:
            values[name] = _text(line, name, max_length, required=required)
        except ValueError as error:
            return Rejected(path, name, str(error))
    started_at = reported_time(line.get("startedAt"), latest)
    if isinstance(started_at, str):
        return Rejected(path, "startedAt", started_at)
    report.sessions.append(ReportedSession(
        cluster_session_id, values["userName"], client_kind, values["host"], started_at, path,
    ))
    return None


@dataclass
class SnapshotOutcome:
    cluster: Cluster
    started: int = 0
    ended: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"infobase", "clusterSessionId", "reason"}
    unknown_infobases: list[str] = field(default_factory=list)


async def reported_cluster(program: Program, name: Any) -> Cluster:
    """The cluster a snapshot names, if the token may report it; NOT_FOUND alike for none and out of reach."""
    cluster = await by_name(name)
    if cluster is None or not await reaches_cluster(program, cluster):
        raise UserFacingError(ErrorCode.NOT_FOUND, "No such cluster.", "cluster")
    return cluster


async def apply_snapshot(
    actor: Actor, program: Program, cluster: Cluster, taken_at: dt.datetime, reports: list[ReportedInfobase], now: dt.datetime,
) -> SnapshotOutcome:
    """A cluster's sessions as the agent saw them at `taken_at`, in the caller's transaction: per listed
    infobase (of a database the token reaches), sessions kabinet does not know start (or are REFUSED
    by the admission rules, once the missing ones freed their places), ACTIVE and TERMINATING ones
    missing end (ENDED, TERMINATED) at `taken_at`. Changes nothing twice. A snapshot older than the cluster's last report is a CONFLICT (it would end
    sessions that started since)."""
    await Cluster.filter(id=cluster.id).select_for_update().get()  # one snapshot of a cluster at a time
    await cluster.refresh_from_db()
    if cluster.last_report_at is not None and taken_at < cluster.last_report_at:
        raise UserFacingError(
            ErrorCode.CONFLICT, f"This snapshot is older than the cluster's last one ({cluster.last_report_at.isoformat()}).", "taken_at"
        )
    outcome = SnapshotOutcome(cluster)
    by_infobase = {r.name: r for r in reports}
    databases: dict[str, Database] = {}
    names = list(by_infobase)
    for start in range(0, len(names), CHUNK):
        query = Database.filter(cluster_id=cluster.id, infobase__in=names[start:start + CHUNK])
        if program.organization_ids is not None and cluster.id not in program.cluster_ids:
            query = query.filter(organization_id__in=list(program.organization_ids))
        databases.update({d.infobase: d for d in await query})
    outcome.unknown_infobases = [name for name in names if name not in databases]

    # One admission at a time per organization, held before reading what kabinet knows: a session the
    # one-session door reports meanwhile is then known here, not inserted twice.
    for organization_id in sorted({d.organization_id for d in databases.values()}):
        await sessions.hold_admissions(organization_id)
    database_ids = [d.id for d in databases.values()]
    live: list[Session] = []
    for start in range(0, len(database_ids), CHUNK):
        live += await Session.filter(database_id__in=database_ids[start:start + CHUNK], status__in=list(sessions.LIVE))
    known = {(s.database_id, s.cluster_session_id) for s in live}
    listed = sorted({csid for name in databases for csid in by_infobase[name].present})
    for start in range(0, len(listed), CHUNK):  # ended, terminated or refused before: known too
        known.update(tuple(row) for row in await Session.filter(
            database__cluster_id=cluster.id, cluster_session_id__in=listed[start:start + CHUNK]
        ).values_list("database_id", "cluster_session_id"))

    # The missing end first: their places are free for the sessions that started meanwhile.
    present = {(database.id, csid) for name, database in databases.items() for csid in by_infobase[name].present}
    for session in sorted(live, key=lambda s: (s.started_at, str(s.id))):
        if (session.database_id, session.cluster_session_id) in present or session.started_at > taken_at:
            continue  # listed, or started after the snapshot was taken
        # never after kabinet's clock (an agent's clock may run ahead within the allowed skew)
        if await sessions.ended(actor, session, max(min(taken_at, now), session.started_at)):
            outcome.ended += 1

    new: list[tuple[Database, ReportedSession]] = [
        (database, line) for name, database in databases.items() for line in by_infobase[name].sessions
        if (database.id, line.cluster_session_id) not in known
    ]
    admissions: dict[uuid.UUID, sessions.Admissions] = {}
    for organization_id in sorted({d.organization_id for d, _ in new}):  # held above
        admissions[organization_id] = await sessions.Admissions.of(organization_id, now)
    for database, line in sorted(new, key=lambda pair: pair[1].started_at):  # the earliest take the places first
        session, refusal = await sessions.admit(
            actor, database=database, now=now, admissions=admissions[database.organization_id],
            organization_id=database.organization_id, user_id=None,
            user_name=line.user_name, client_kind=line.client_kind, host=line.host, started_at=line.started_at,
            cluster_session_id=line.cluster_session_id,
        )
        if refusal is None:
            outcome.started += 1
        else:
            outcome.refused.append({"infobase": database.infobase, "clusterSessionId": line.cluster_session_id, "reason": refusal})

    if await reaches_whole_cluster(program, cluster):
        await reported(actor, cluster, min(taken_at, now))
    return outcome


async def reported(actor: Actor, cluster: Cluster, as_of: dt.datetime) -> None:
    """The cluster's agent has reported (its sessions as of `as_of`: the snapshot's `takenAt`, never
    past kabinet's clock, so that an agent whose clock ran ahead and was set right is not refused as
    older until it catches up): the last report moves on, and the cluster is connected."""
    if cluster.last_report_at is None or as_of > cluster.last_report_at:
        await Cluster.filter(id=cluster.id).update(last_report_at=as_of)
        cluster.last_report_at = as_of
    await set_connected(actor, cluster, True)


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
