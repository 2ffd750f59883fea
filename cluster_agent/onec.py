"""The 1C cluster as the agent drives it: what a provider replaces with `rac`/`ras` and the designer.

`SimulatedOneCCluster` pretends (pauses, progress, optionally a failure); each method's docstring
names the real command a provider's agent would run instead. Credentials are the 1C user's of the
infobase, handed over by kabinet for one run: pass them to the command, never print or log them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

Progress = Callable[[int, str], Awaitable[None]]


class ClusterError(Exception):
    """The cluster refused or failed: the attempt is reported failed with this reason."""


class OneCCluster(Protocol):
    async def warn_users(self, infobase: str, message: str) -> None: ...

    async def lock(self, infobase: str, credentials: dict | None, message: str) -> None: ...

    async def terminate_session(self, infobase: str, cluster_session_id: str | None) -> None: ...

    async def update(self, infobase: str, credentials: dict | None, target_version: str, report: Progress) -> str: ...

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

    async def terminate_session(self, infobase: str, cluster_session_id: str | None) -> None:
        """Real: `rac session terminate --cluster=<uuid> --session=<cluster_session_id>`."""
        await asyncio.sleep(self.step_seconds / 4)

    async def update(self, infobase: str, credentials: dict | None, target_version: str, report: Progress) -> str:
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
