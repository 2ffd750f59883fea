"""Domain events: their topics and kinds, what each carries, and how a change records one.

`record_event` adds a numbered row to the organization's event log in the caller's transaction
(numbers are handed out under a row lock, so they follow commit order); after the commit,
`announce` tells every process through the broker. Subscribers read the log through
`events/hub.py`'s `EventHub`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from models.bulk import insert_rows
from models.cloud import Session
from models.events import OrganizationEvent
from models.updates import UpdateRun

log = logging.getLogger("events.hub")

SESSIONS = "sessions"  # kinds: STARTED, TERMINATING, ENDED, TERMINATED
UPDATES = "updates"  # kind: CHANGED (status or progress)
ACCESS = "access"  # kind: REVOKED (a membership ended): its holder's subscriptions end
DATA = "data"  # kind: CHANGED, payload {"areas": [...]}: the provider's data of the organization changed

EVENTS_CHANNEL = "events.hub"  # the broker channel that says an organization's log has grown


# ---------------------------------------------------------------- write side

async def record_event(organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
    """Append an event to the organization's log inside the current transaction; its number."""
    return (await record_events({organization_id: (topic, kind, payload)}))[organization_id]


async def record_events(events: Mapping[uuid.UUID, tuple[str, str, dict[str, Any]]]) -> dict[uuid.UUID, int]:
    """Append one event (topic, kind, payload) to each organization's log inside the current
    transaction, in two statements however many organizations there are (a provider's import batch
    may touch thousands); their numbers. The counters are taken in the organizations' order, so two
    transactions taking some of the same wait for each other instead of deadlocking."""
    if not events:
        return {}
    db = OrganizationEvent._meta.db
    organization_ids = sorted(events, key=str)
    if db.capabilities.dialect == "sqlite":
        source, params = "VALUES " + ",".join("(?, 1)" for _ in organization_ids), [str(o) for o in organization_ids]
    else:
        source, params = "SELECT o, 1 FROM unnest($1::uuid[]) AS o ORDER BY o", [organization_ids]
    rows = await db.execute_query_dict(
        f"INSERT INTO event_counter (organization_id, last_seq) {source} "
        "ON CONFLICT (organization_id) DO UPDATE SET last_seq = event_counter.last_seq + 1 "
        "RETURNING organization_id, last_seq",
        params,
    )
    numbers = {uuid.UUID(str(row["organization_id"])): int(row["last_seq"]) for row in rows}
    await insert_rows(OrganizationEvent, [
        {"organization_id": o, "seq": numbers[o], "topic": topic, "kind": kind, "payload": payload}
        for o, (topic, kind, payload) in events.items()
    ])
    return numbers


async def announce(broadcast: Any, organization_id: uuid.UUID, seq: int) -> None:
    """Tell every process that the organization's log has grown (after the commit)."""
    try:
        await broadcast.publish(EVENTS_CHANNEL, orjson.dumps({"org": str(organization_id), "seq": seq}).decode())
    except Exception:  # noqa: BLE001 — the hubs' polling picks the event up anyway
        log.warning("could not announce event %s of %s; subscribers will poll it", seq, organization_id)


async def latest_seq(organization_id: uuid.UUID) -> int:
    row = await OrganizationEvent.filter(organization_id=organization_id).order_by("-seq").first().values("seq")
    return row["seq"] if row else 0


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def session_payload(session: Session) -> dict[str, Any]:
    """The session as it is after the change: what a subscriber shows, with no further query."""
    return {
        "id": str(session.id), "database_id": str(session.database_id) if session.database_id else None,
        "user_id": str(session.user_id) if session.user_id else None, "user_name": session.user_name,
        "client_kind": session.client_kind.value, "host": session.host, "started_at": _time(session.started_at),
        "ended_at": _time(session.ended_at), "status": session.status.value,
        "refusal_reason": session.refusal_reason,
    }


def session_of(event: OrganizationEvent) -> Session:
    """The session a sessions event carries, read from its payload once for all its subscribers."""
    session = event.__dict__.get("_session")
    if session is None:
        session = event.__dict__["_session"] = session_from_payload(event.organization_id, event.payload)
    return session


def session_from_payload(organization_id: uuid.UUID, payload: dict[str, Any]) -> Session:
    return Session(
        id=uuid.UUID(payload["id"]), organization_id=organization_id,
        database_id=uuid.UUID(payload["database_id"]) if payload["database_id"] else None,
        user_id=uuid.UUID(payload["user_id"]) if payload["user_id"] else None,
        user_name=payload["user_name"], client_kind=payload["client_kind"], host=payload["host"],
        started_at=dt.datetime.fromisoformat(payload["started_at"]),
        ended_at=dt.datetime.fromisoformat(payload["ended_at"]) if payload["ended_at"] else None,
        status=payload["status"], refusal_reason=payload.get("refusal_reason"),
    )


def run_payload(run: UpdateRun) -> dict[str, Any]:
    return {
        "id": str(run.id), "database_id": str(run.database_id), "release_id": str(run.release_id) if run.release_id else None,
        "target_version": run.target_version, "status": run.status.value, "scheduled_for": _time(run.scheduled_for),
        "started_at": _time(run.started_at), "finished_at": _time(run.finished_at), "progress": run.progress,
        "message": run.message,
    }


def run_from_payload(organization_id: uuid.UUID, payload: dict[str, Any]) -> UpdateRun:
    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(payload[key]) if payload[key] else None

    return UpdateRun(
        id=uuid.UUID(payload["id"]), organization_id=organization_id, database_id=uuid.UUID(payload["database_id"]),
        release_id=uuid.UUID(payload["release_id"]) if payload["release_id"] else None,
        target_version=payload["target_version"], status=payload["status"], scheduled_for=when("scheduled_for"),
        started_at=when("started_at"), finished_at=when("finished_at"), progress=payload["progress"],
        message=payload["message"],
    )


@dataclass
class PendingAnnouncements:
    """Events recorded in a transaction, to announce once it has committed."""

    latest: dict[uuid.UUID, int] = field(default_factory=dict)

    async def record(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        return (await self.record_many({organization_id: (topic, kind, payload)}))[organization_id]

    async def record_many(self, events: Mapping[uuid.UUID, tuple[str, str, dict[str, Any]]]) -> dict[uuid.UUID, int]:
        """One event for each organization of `events` (`record_events`)."""
        numbers = await record_events(events)
        for organization_id, seq in numbers.items():
            self.latest[organization_id] = max(seq, self.latest.get(organization_id, 0))
        return numbers

    async def announce(self, broadcast: Any) -> None:
        latest, self.latest = self.latest, {}
        for organization_id, seq in latest.items():
            await announce(broadcast, organization_id, seq)


# ---------------------------------------------------------------- what a subscriber is told

class SubscriberTooSlow(Exception):
    """The subscriber's queue filled up: it is told and disconnected rather than buffered forever."""


class StreamExpired(Exception):
    """The time set with `EventStream.end_at` (events/hub.py) has come: the token's expiry."""
