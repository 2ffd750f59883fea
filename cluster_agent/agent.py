"""The update loop of a cluster agent: claim a due run, keep its lease, walk the steps, report the result.

The protocol is kabinet's /cluster/updates/… (docs/cluster-agent.md). This talks HTTP only
and imports nothing of kabinet. The cluster behind it is the real one (`onec.RacOneCCluster`: rac and
the designer) or, with `--simulate` only, `onec.SimulatedOneCCluster`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from cluster_agent.onec import ClusterError, OneCCluster

log = logging.getLogger("cluster_agent")

# What the customer reads in the run's message at each step (kabinet shows it live).
MESSAGES = {
    "warn_users": "Пользователи предупреждены: скоро обновление, сохраните работу.",
    "lock": "Начало новых сеансов запрещено на время обновления.",
    "end_sessions": "Сеансы пользователей завершаются.",
    "update": "Обновление конфигурации до версии {target} начато.",
    "unlock": "Обновление установлено, начало сеансов снова разрешено.",
}
MAX_SESSION_ROUNDS = 20


class LeaseLost(Exception):
    """kabinet answered 409 LEASE_LOST: the run is someone else's now; stop touching it."""


class KabinetError(Exception):
    pass


class Kabinet:
    """kabinet's agent API: bearer token (the agent's identity and its organizations), JSON in and out."""

    def __init__(self, url: str, token: str, timeout: float = 30, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout, transport=transport
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, path: str, body: dict[str, Any] | None = None, *, ok: tuple[int, ...] = (200,),
                   method: str = "POST", params: dict[str, str] | None = None) -> tuple[int, dict]:
        response = await self.http.request(method, path, json=(body or {}) if method == "POST" else None, params=params)
        try:
            data = response.json() if response.content else {}
        except ValueError:  # a proxy's HTML page, not kabinet's answer
            data = {}
        error = (data.get("error") or {}) if isinstance(data, dict) else {}
        if response.status_code == 409 and error.get("code") == "LEASE_LOST":
            raise LeaseLost(error.get("message"))
        if response.status_code not in ok:
            raise KabinetError(f"{path}: {response.status_code} {error.get('code')} {error.get('message')}")
        return response.status_code, data

    async def claim(self, organization_codes: list[str] | None, cluster: str | None = None) -> dict | None:
        body: dict[str, Any] = {}
        if organization_codes:
            body["organizationCodes"] = organization_codes
        if cluster:
            body["cluster"] = cluster
        return (await self.call("/cluster/updates/claim", body))[1]["run"]

    async def snapshot(self, snapshot: dict) -> dict:
        """The cluster's complete session lists (POST /cluster/sessions/snapshot): kabinet's answer."""
        return (await self.call("/cluster/sessions/snapshot", snapshot))[1]

    async def terminations(self, cluster: str | None = None) -> list[dict]:
        params = {"cluster": cluster} if cluster else None
        return (await self.call("/cluster/terminations", method="GET", params=params))[1].get("terminations", [])

    async def termination_done(self, session_id: str) -> None:
        await self.call(f"/cluster/terminations/{session_id}/done")

    async def termination_refused(self, session_id: str, reason: str) -> None:
        await self.call(f"/cluster/terminations/{session_id}/refused", {"reason": reason[:300]})


class RunInHand:
    """One claimed run: its heartbeat, and the calls that name the claim (its fencing token, given in the
    claim's answer only)."""

    def __init__(self, kabinet: Kabinet, run: dict) -> None:
        self.kabinet, self.run = kabinet, run
        self.path = f"/cluster/updates/{run['id']}"
        self.lost = asyncio.Event()

    def _claim(self, **fields: Any) -> dict:
        return {"fencingToken": self.run["fencingToken"], **fields}

    async def heartbeat(self) -> None:
        interval = max(float(self.run["leaseSeconds"]) / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.kabinet.call(f"{self.path}/heartbeat", self._claim())
            except LeaseLost:
                log.warning("run %s: lease lost", self.run["id"])
                self.lost.set()
                return
            except (httpx.HTTPError, KabinetError) as error:  # kabinet away for a moment: the next beat may pass
                log.warning("run %s: heartbeat failed: %s", self.run["id"], error)

    async def step(self, step: str, progress: int, message: str, *, ok: tuple[int, ...] = (200,)) -> tuple[int, dict]:
        if self.lost.is_set():
            raise LeaseLost("the heartbeat lost the lease")
        return await self.kabinet.call(f"{self.path}/step", self._claim(step=step, progress=progress, message=message), ok=ok)

    async def result(self, **fields: Any) -> dict:
        return (await self.kabinet.call(f"{self.path}/result", self._claim(**fields)))[1]["run"]


async def carry_out(kabinet: Kabinet, cluster: OneCCluster, run: dict) -> str:
    """One claimed run from warn_users to its result; the run's status as kabinet answered it."""
    hand = RunInHand(kabinet, run)
    beat = asyncio.create_task(hand.heartbeat())
    database, target = run["database"], run["targetVersion"]
    # the infobase in the cluster (kabinet's `cluster attach`); the simulated cluster takes any name
    infobase = database.get("infobase") or database.get("externalId") or database["name"]
    configuration = (run.get("release") or {}).get("configuration") or database.get("configuration")
    credentials = run.get("credentials")  # for this run only: passed to the cluster, never logged or stored
    try:
        try:
            if getattr(cluster, "needs_infobase", False) and not database.get("infobase"):
                raise ClusterError(f"база «{database['name']}» не привязана к информационной базе кластера "
                                   "(kabinet cluster attach)")
            await cluster.warn_users(infobase, MESSAGES["warn_users"])
            await hand.step("warn_users", 5, MESSAGES["warn_users"])
            await cluster.lock(infobase, credentials, MESSAGES["lock"])
            await hand.step("lock", 10, MESSAGES["lock"])
            await cluster.end_sessions(infobase)
            for _ in range(MAX_SESSION_ROUNDS):
                _, answer = await hand.step("end_sessions", 15, MESSAGES["end_sessions"])
                if not answer["sessions"]:
                    break
                for session in answer["sessions"]:
                    await cluster.terminate_session(infobase, session["clusterSessionId"])
                    await kabinet.call(f"/cluster/terminations/{session['sessionId']}/done")
            else:
                raise ClusterError("сеансы базы не завершились")
            await hand.step("update", 20, MESSAGES["update"].format(target=target))
            installed = await cluster.update(
                infobase, credentials, target, lambda progress, message: hand.step("update", progress, message),
                configuration=configuration,
            )
            await cluster.unlock(infobase, credentials)
            await hand.step("unlock", 95, MESSAGES["unlock"])
        except (ClusterError, KabinetError) as error:  # the cluster failed, or kabinet refused a step
            log.warning("run %s: the attempt failed: %s", run["id"], error)
            with contextlib.suppress(ClusterError):
                await cluster.unlock(infobase, credentials)
            return (await hand.result(outcome="failed", reason=str(error)))["status"]
        return (await hand.result(outcome="succeeded", version=installed))["status"]
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)


async def serve(
    kabinet: Kabinet, cluster: OneCCluster, stop: asyncio.Event, *, poll_seconds: float = 5,
    organization_codes: list[str] | None = None, once: bool = False, cluster_name: str | None = None,
) -> None:
    """Claim and carry out runs one after another until `stop` (a run in hand is finished first)."""
    while not stop.is_set():
        try:
            run = await kabinet.claim(organization_codes, cluster_name)
            if run is not None:
                log.info(
                    "run %s claimed (attempt %s): %s → %s", run["id"], run["attempt"], run["database"]["name"],
                    run["targetVersion"],
                )
                status = await carry_out(kabinet, cluster, run)
                log.info("run %s: %s", run["id"], status)
                if once:
                    return
                continue
        except LeaseLost:
            log.warning("a run was taken back while in hand; going on with the next")
            continue
        except (httpx.HTTPError, KabinetError) as error:
            log.warning("kabinet: %s", error)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
