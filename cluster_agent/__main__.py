"""`python -m cluster_agent --url http://kabinet:8000` (token in KABINET_AGENT_TOKEN, or --token).

Carries out kabinet's update runs on a simulated 1C cluster; a provider puts its own `OneCCluster`
(cluster_agent/onec.py: rac/ras and the designer's /UpdateCfg) in its place.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from cluster_agent.agent import Kabinet, serve
from cluster_agent.onec import SimulatedOneCCluster


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cluster_agent", description=__doc__)
    parser.add_argument("--url", required=True, help="kabinet's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("KABINET_AGENT_TOKEN"),
                        help="the agent token (`kabinet agent token create`): it is this agent's identity and names "
                        "the organizations it serves; better in KABINET_AGENT_TOKEN")
    parser.add_argument("--organization-code", action="append", dest="organization_codes",
                        help="serve only this one of the token's organizations (repeatable)")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="pause between claims when none is due")
    parser.add_argument("--once", action="store_true", help="exit after one run")
    parser.add_argument("--simulate-step-seconds", type=float, default=0.5, help="simulated cluster: pause per action")
    parser.add_argument("--simulate-failure", help="simulated cluster: every update fails with this reason")
    args = parser.parse_args()
    if not args.token:
        parser.error("an agent token is required: KABINET_AGENT_TOKEN or --token")
    return args


async def main() -> None:
    args = arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    kabinet = Kabinet(args.url, args.token)
    cluster = SimulatedOneCCluster(args.simulate_step_seconds, args.simulate_failure)
    logging.getLogger("cluster_agent").info("agent polling %s", args.url)
    try:
        await serve(kabinet, cluster, stop, poll_seconds=args.poll_seconds,
                    organization_codes=args.organization_codes, once=args.once)
    finally:
        await kabinet.close()


if __name__ == "__main__":
    asyncio.run(main())
