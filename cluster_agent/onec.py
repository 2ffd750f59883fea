"""The 1C cluster as the update loop drives it: `RacOneCCluster` (rac and the designer, the real one) or
`SimulatedOneCCluster` (only with `--simulate`: pauses, progress, optionally a failure).

Credentials are the 1C user's of the infobase, handed over by kabinet for one run: passed to rac and
the designer as options, never printed or logged. The lock's permission code (/UC) is drawn at random
for each run and forgotten with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from cluster_agent.designer import Designer, DesignerError, template_for
from cluster_agent.rac import RacError

log = logging.getLogger("cluster_agent.onec")

Progress = Callable[[int, str], Awaitable[None]]


class ClusterError(Exception):
    """The cluster refused or failed: the attempt is reported failed with this reason."""


class OneCCluster(Protocol):
    async def warn_users(self, infobase: str, message: str) -> None: ...

    async def lock(self, infobase: str, credentials: dict | None, message: str) -> None: ...

    async def end_sessions(self, infobase: str) -> None: ...

    async def terminate_session(self, infobase: str, cluster_session_id: str | None) -> None: ...

    async def update(self, infobase: str, credentials: dict | None, target_version: str, report: Progress, *,
                     configuration: str | None = None) -> str: ...

    async def unlock(self, infobase: str, credentials: dict | None) -> None: ...


class SimulatedOneCCluster:
    """Nothing real happens: each action takes `step_seconds`; with `failure`, every update breaks with it."""

    def __init__(self, step_seconds: float = 0.2, failure: str | None = None) -> None:
        self.step_seconds, self.failure = step_seconds, failure

    async def warn_users(self, infobase: str, message: str) -> None:
        """Real: announce the lock ahead, e.g. `rac infobase update --infobase=<uuid> --denied-from=<in 5 min>
        --denied-message=<message> --sessions-deny=on` (БСП clients show the warning until it starts)."""
        await asyncio.sleep(self.step_seconds)

    async def lock(self, infobase: str, credentials: dict | None, message: str) -> None:
        """Real: `rac infobase update --infobase=<uuid> --infobase-user=<login> --infobase-pwd=<password>
        --sessions-deny=on --scheduled-jobs-deny=on --denied-message=<message> --permission-code=<code>`."""
        await asyncio.sleep(self.step_seconds)

    async def end_sessions(self, infobase: str) -> None:
        """Real: `rac session terminate` for every session of the infobase, then a snapshot."""

    async def terminate_session(self, infobase: str, cluster_session_id: str | None) -> None:
        """Real: `rac session terminate --cluster=<uuid> --session=<cluster_session_id>`."""
        await asyncio.sleep(self.step_seconds / 4)

    async def update(self, infobase: str, credentials: dict | None, target_version: str, report: Progress, *,
                     configuration: str | None = None) -> str:
        """Real: `1cv8 DESIGNER /S <server>\\<infobase> /N <login> /P <password> /UC <permission code>
        /UpdateCfg <templates>/<configuration>/<version>/1cv8.cfu /UpdateDBCfg -Server /Out <log>`, progress
        read from its log; then the installed version read back (e.g. `/DumpConfigFiles` or the
        infobase's metadata). The installed version."""
        for progress in (30, 45, 60, 75, 90):
            await asyncio.sleep(self.step_seconds)
            if self.failure and progress > 30:
                raise ClusterError(self.failure)
            await report(progress, f"Обновление конфигурации до версии {target_version}: {progress} %.")
        return target_version

    async def unlock(self, infobase: str, credentials: dict | None) -> None:
        """Real: `rac infobase update --infobase=<uuid> … --sessions-deny=off --scheduled-jobs-deny=off`."""
        await asyncio.sleep(self.step_seconds)


class RacOneCCluster:
    """The real cluster: locks and sessions through rac (`sessions.RacCluster`), the update through the
    designer; the session list reported to kabinet again once the infobase's sessions are ended."""

    needs_infobase = True  # a run's database names its infobase in this cluster (kabinet cluster attach)

    def __init__(self, cluster, designer: Designer | None, templates: Path | None, sync=None) -> None:
        self.cluster, self.designer, self.templates, self.sync = cluster, designer, templates, sync
        self.codes: dict[str, str] = {}  # infobase → this run's permission code

    async def _uuid(self, infobase: str) -> str:
        try:
            return await self.cluster.infobase_uuid(infobase)
        except RacError as error:
            raise ClusterError(error.message) from None

    @staticmethod
    def _login(credentials: dict | None) -> tuple[str | None, str | None]:
        return ((credentials or {}).get("login"), (credentials or {}).get("password"))

    async def warn_users(self, infobase: str, message: str) -> None:
        """kabinet shows the warning on the customers' dashboards; the cluster is told at the lock."""

    async def lock(self, infobase: str, credentials: dict | None, message: str) -> None:
        """`rac infobase update --sessions-deny=on --scheduled-jobs-deny=on --denied-message=… --permission-code=…`."""
        uuid = await self._uuid(infobase)
        code = self.codes.setdefault(infobase, secrets.token_hex(8))
        login, password = self._login(credentials)
        try:
            await self.cluster.rac.deny_sessions(await self.cluster.uuid(), uuid, login, password, deny=True,
                                                 message=message, permission_code=code)
        except RacError as error:
            raise ClusterError(f"блокировка не установлена: {error.message}") from None

    async def end_sessions(self, infobase: str) -> None:
        """`rac session terminate` for every session of the infobase (the lock keeps new ones out), then a
        snapshot so kabinet sees them ended."""
        uuid = await self._uuid(infobase)
        try:
            for session in await self.cluster.sessions(uuid):
                with contextlib.suppress(RacError):  # gone meanwhile, or refused: the step's rounds say so
                    await self.cluster.terminate(session["session"], "Обновление конфигурации: сеанс завершён.")
        except RacError as error:
            raise ClusterError(f"сеансы не завершены: {error.message}") from None
        if self.sync is not None:
            try:
                await self.sync.report()
            except Exception as error:  # kabinet's answer is read again by the end_sessions step itself
                log.warning("snapshot after ending sessions failed: %s", error)

    async def terminate_session(self, infobase: str, cluster_session_id: str | None) -> None:
        if not cluster_session_id:
            return
        try:
            await self.cluster.terminate(cluster_session_id, "Обновление конфигурации: сеанс завершён.")
        except RacError as error:
            if not error.gone:
                raise ClusterError(f"сеанс {cluster_session_id} не завершён: {error.message}") from None

    async def update(self, infobase: str, credentials: dict | None, target_version: str, report: Progress, *,
                     configuration: str | None = None) -> str:
        """The designer: /UpdateCfg with the release's template, /UpdateDBCfg, the version read back."""
        if self.designer is None or self.templates is None:
            raise ClusterError("обновление не настроено: в [updates] нужны designer, server и templates")
        if not configuration:
            raise ClusterError("конфигурация базы неизвестна: шаблон обновления не найти")
        login, password = self._login(credentials)
        code = self.codes.get(infobase, "")
        try:
            template = template_for(self.templates, configuration, target_version)
            await self.designer.update(infobase, login, password, code, template, report)
            installed = await self.designer.version(infobase, login, password, code)
        except DesignerError as error:
            raise ClusterError(str(error)) from None
        if installed != target_version:
            raise ClusterError(f"после обновления версия {installed}, ожидалась {target_version}")
        await report(90, f"Установлена версия {installed}.")
        return installed

    async def unlock(self, infobase: str, credentials: dict | None) -> None:
        """`rac infobase update --sessions-deny=off --scheduled-jobs-deny=off` (message and code cleared)."""
        login, password = self._login(credentials)
        try:
            await self.cluster.rac.deny_sessions(await self.cluster.uuid(), await self._uuid(infobase), login, password,
                                                 deny=False)
        except RacError as error:
            raise ClusterError(f"блокировка не снята: {error.message}") from None
        finally:
            self.codes.pop(infobase, None)
