"""The cluster's sessions reported to kabinet: every `poll_seconds` a complete snapshot per infobase.

rac cluster list → infobase summary list → session list → `POST /cluster/sessions/snapshot`. Each
infobase's list is complete, so kabinet starts what it does not know and ends what is missing: a
session that ended while rac or kabinet was down is reported ended by the first snapshot that
passes (the catch-up needs no memory here). A session's identity is rac's `session` UUID (stable
across polls; `session-id` is a small number the cluster reuses). kabinet decides which app-ids are
users' sessions; the agent sends them all. Sessions kabinet refuses (over the subscription's limit,
the database locked) come back in `refused`: the agent ends them in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import httpx

from cluster_agent.rac import Block, Rac, RacError, local_time

log = logging.getLogger("cluster_agent.sessions")

REFUSED_MESSAGE = "Сеанс не допущен: {reason}"
# kabinet's bounds of one snapshot are 2,000 infobases and 20,000 sessions (and 8 MiB): half the
# sessions keeps a request's bytes well inside
MAX_INFOBASES, MAX_SESSIONS = 2000, 10_000


class ClusterNotFound(RacError):
    pass


class RacCluster:
    """The one cluster this agent serves, as rac sees it: its UUID, infobases and sessions."""

    def __init__(self, rac: Rac, zone: ZoneInfo, cluster_id: str | None = None) -> None:
        self.rac, self.zone, self.cluster_id = rac, zone, cluster_id
        self._uuid: str | None = None

    async def uuid(self) -> str:
        """rac's UUID of the cluster: the configured one, else the only one ras serves."""
        if self._uuid is None:
            clusters = await self.rac.clusters()
            wanted = [c for c in clusters if self.cluster_id in (None, c.get("cluster"), c.get("name"))]
            if len(wanted) != 1:
                names = ", ".join(f"{c.get('cluster')} ({c.get('name')})" for c in clusters) or "ни одного"
                raise ClusterNotFound(
                    f"кластер {'«' + self.cluster_id + '» ' if self.cluster_id else ''}не выбран: ras обслуживает {names}; "
                    "назовите его в [cluster] id", "refused",
                )
            self._uuid = wanted[0]["cluster"]
        return self._uuid

    async def infobases(self) -> dict[str, str]:
        """infobase UUID → name."""
        return {b["infobase"]: b.get("name", "") for b in await self.rac.infobases(await self.uuid()) if b.get("infobase")}

    async def infobase_uuid(self, name: str) -> str:
        for uuid, infobase in (await self.infobases()).items():
            if infobase.lower() == name.lower():
                return uuid
        raise RacError(f"в кластере нет информационной базы «{name}»", "refused")

    async def sessions(self, infobase: str | None = None) -> list[Block]:
        return await self.rac.sessions(await self.uuid(), infobase)

    async def terminate(self, session: str, message: str | None = None) -> None:
        await self.rac.terminate(await self.uuid(), session, message)

    def forget(self) -> None:
        """After a failure: ask for the cluster's UUID again (the cluster may have been re-registered)."""
        self._uuid = None


def session_line(block: Block, zone: ZoneInfo) -> dict:
    started = local_time(block.get("started-at", ""), zone)
    return {
        "clusterSessionId": block.get("session", ""), "userName": block.get("user-name", ""),
        "host": block.get("host") or None, "appId": block.get("app-id", ""),
        "startedAt": started.isoformat() if started else None,
    }


def snapshot_of(cluster: str, infobases: dict[str, str], sessions: list[Block], zone: ZoneInfo,
                taken_at: dt.datetime) -> dict:
    """The snapshot kabinet reads: every infobase of the cluster (an empty list ends its sessions)."""
    by_infobase: dict[str, list[dict]] = {uuid: [] for uuid in infobases}
    for block in sessions:
        if block.get("infobase") in by_infobase and block.get("session"):
            by_infobase[block["infobase"]].append(session_line(block, zone))
    return {
        "cluster": cluster, "takenAt": taken_at.isoformat(),
        "infobases": [{"name": infobases[uuid], "sessions": lines} for uuid, lines in by_infobase.items()],
    }


def parts(snapshot: dict, max_infobases: int = MAX_INFOBASES, max_sessions: int = MAX_SESSIONS) -> list[dict]:
    """The snapshot cut into requests kabinet takes (at most `max_infobases` infobases and, unless one
    infobase alone has more, `max_sessions` sessions each); infobases a request does not list are left
    as they are, so the parts together say what the whole says."""
    found: list[dict] = []
    current: list[dict] = []
    count = 0
    for infobase in snapshot["infobases"]:
        size = len(infobase["sessions"])
        if current and (len(current) >= max_infobases or count + size > max_sessions):
            found.append({**snapshot, "infobases": current})
            current, count = [], 0
        current.append(infobase)
        count += size
    if current or not found:
        found.append({**snapshot, "infobases": current})
    return found


class SessionSync:
    """Snapshots of one cluster to kabinet; `report()` is one pass (also called after an update ends sessions)."""

    def __init__(self, kabinet, cluster: RacCluster, name: str) -> None:
        self.kabinet, self.cluster, self.name = kabinet, cluster, name
        self.lock = asyncio.Lock()
        self.unknown: set[str] = set()

    async def report(self) -> dict:
        async with self.lock:
            taken_at = dt.datetime.now(dt.timezone.utc)
            infobases = await self.cluster.infobases()
            sessions = await self.cluster.sessions()
            answer = await self._send(snapshot_of(self.name, infobases, sessions, self.cluster.zone, taken_at))
            unknown = set(answer.get("unknownInfobases") or [])
            if unknown - self.unknown:
                log.info("infobases kabinet does not map to a database (attach them with `kabinet cluster attach`): %s",
                         ", ".join(sorted(unknown - self.unknown)))
            self.unknown = unknown
            for rejected in answer.get("rejected") or []:
                log.warning("kabinet rejected %s (%s): %s", rejected.get("path"), rejected.get("field"), rejected.get("reason"))
            for refused in answer.get("refused") or []:
                await self._end_refused(refused)
            if answer.get("started") or answer.get("ended"):
                log.info("snapshot: %s started, %s ended", answer.get("started"), answer.get("ended"))
            return answer

    async def _send(self, snapshot: dict) -> dict:
        """The snapshot in parts within kabinet's bounds (each infobase's list whole in one part, all parts
        at the same takenAt): one answer, the parts' counts and lists added up."""
        answer: dict = {}
        for part in parts(snapshot):
            got = await self.kabinet.snapshot(part)
            answer["cluster"] = got.get("cluster")
            for key in ("started", "ended"):
                answer[key] = answer.get(key, 0) + (got.get(key) or 0)
            for key in ("refused", "unknownInfobases", "rejected"):
                answer[key] = answer.get(key, []) + (got.get(key) or [])
        return answer

    async def _end_refused(self, refused: dict) -> None:
        try:
            await self.cluster.terminate(refused["clusterSessionId"], REFUSED_MESSAGE.format(reason=refused.get("reason", "")))
            log.info("ended session %s refused by kabinet: %s", refused["clusterSessionId"], refused.get("reason"))
        except RacError as error:
            if not error.gone:
                log.warning("could not end refused session %s: %s", refused["clusterSessionId"], error)


async def every(seconds: float, work: Callable[[], Awaitable[object]], stop: asyncio.Event, *,
                what: str, max_backoff: float = 60.0, on_failure: Callable[[], None] | None = None) -> None:
    """`work()` every `seconds` until `stop`; after a failure (rac or kabinet down) the pause doubles up to
    `max_backoff`, and the first pass that succeeds brings everything up to date."""
    from cluster_agent.agent import KabinetError  # the HTTP client lives beside the update loop

    failures = 0
    while not stop.is_set():
        try:
            await work()
            if failures:
                log.info("%s: going again after %d failure(s)", what, failures)
            failures = 0
        except (RacError, KabinetError, httpx.HTTPError) as error:
            failures += 1
            if on_failure:
                on_failure()
            log.warning("%s failed (%d in a row): %s", what, failures, error)
        except Exception as error:  # an answer not as expected: the loop goes on (no traceback: no argv in logs)
            failures += 1
            log.error("%s failed (%d in a row), unexpectedly: %s: %s", what, failures, type(error).__name__, error)
        pause = seconds if not failures else min(seconds * 2 ** failures, max(max_backoff, seconds))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
