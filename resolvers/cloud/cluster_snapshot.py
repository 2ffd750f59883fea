"""A cluster's snapshot of its sessions, as its agent reports it (POST /cluster/sessions/snapshot):
each listed infobase's list is complete, so what kabinet does not know starts and what it knows and
is missing ends, through the sessions' own transitions (resolvers/cloud/sessions.py); the report
marks the cluster connected (resolvers/cloud/clusters.py `set_connected`). Read line by line, each
bad line refused alone with its path and reason, within bounds that cap what one report may cost.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from models.cloud import ClientKind, Cluster, Database, Session
from resolvers.cloud import sessions
from resolvers.cloud.clusters import by_name, checked_infobase, reaches_cluster, reaches_whole_cluster, set_connected
from resolvers.common.context import Actor
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.program_tokens import Program

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
