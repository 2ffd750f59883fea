"""Sessions kabinet asked to end (an owner's terminateSession, a member removed): ended in the cluster.

`GET /cluster/terminations?cluster=<name>` → `rac session terminate` → `POST …/done`; a session rac no
longer knows is done too (it ended on its own); anything else the cluster says is a refusal,
reported with rac's words (`POST …/refused`) so the owner sees why. When rac cannot reach the
cluster nothing is reported: the termination stays pending and the next pass tries again.
"""

from __future__ import annotations

import logging

from cluster_agent.rac import RacError
from cluster_agent.sessions import RacCluster

log = logging.getLogger("cluster_agent.terminations")

MESSAGE = "Сеанс завершён из личного кабинета."


class Terminations:
    def __init__(self, kabinet, cluster: RacCluster, name: str) -> None:
        self.kabinet, self.cluster, self.name = kabinet, cluster, name

    async def once(self) -> int:
        """One pass over the pending terminations; how many were settled (done or refused)."""
        settled = 0
        for item in await self.kabinet.terminations(self.name):
            if item.get("cluster") not in (None, self.name) or not item.get("clusterSessionId"):
                continue
            try:
                await self.cluster.terminate(item["clusterSessionId"], MESSAGE)
            except RacError as error:
                if error.unreachable:
                    raise  # nothing was decided: the pass is retried after a pause
                if not error.gone:
                    log.warning("the cluster refused to end session %s: %s", item["clusterSessionId"], error)
                    await self.kabinet.termination_refused(item["sessionId"], error.message)
                    settled += 1
                    continue
            await self.kabinet.termination_done(item["sessionId"])
            log.info("session %s ended (%s)", item["clusterSessionId"], item.get("infobase"))
            settled += 1
        return settled
