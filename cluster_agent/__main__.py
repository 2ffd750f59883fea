"""`kabinet-agent --config agent.toml` (or `python -m cluster_agent`): a 1C cluster's agent for kabinet.

Three loops, side by side, until SIGTERM/SIGINT: the cluster's sessions reported every few seconds
(sessions.py), the terminations kabinet asks for carried out (terminations.py), and update runs
claimed and walked through rac and the designer (agent.py). Settings: config.py (a TOML file and/or
KABINET_AGENT_* variables). `--simulate` runs update runs on a simulated cluster instead (no rac, no
sessions): for a demonstration only, never beside a real cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from cluster_agent.agent import Kabinet, serve
from cluster_agent.config import ConfigError, load
from cluster_agent.designer import Designer
from cluster_agent.onec import RacOneCCluster, SimulatedOneCCluster
from cluster_agent.rac import ClusterAdmin, Rac
from cluster_agent.sessions import RacCluster, SessionSync, every
from cluster_agent.terminations import Terminations

log = logging.getLogger("cluster_agent")


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kabinet-agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the agent's TOML file (see cluster_agent/README.md)")
    parser.add_argument("--url", help="kabinet's base URL (overrides [kabinet] url / KABINET_AGENT_URL)")
    parser.add_argument("--token", help="the agent token; better in KABINET_AGENT_TOKEN or [kabinet] token_file")
    parser.add_argument("--organization-code", action="append", dest="organization_codes",
                        help="claim update runs of this one of the token's organizations only (repeatable)")
    parser.add_argument("--poll-seconds", type=float, help="pause between polls (overrides [cluster] poll_seconds)")
    parser.add_argument("--once", action="store_true", help="exit after one update run")
    parser.add_argument("--verbose", action="store_true", help="debug logging (never credentials)")
    simulated = parser.add_argument_group("simulation (only with --simulate: no real cluster)")
    simulated.add_argument("--simulate", action="store_true", help="carry out update runs on a simulated cluster")
    simulated.add_argument("--simulate-step-seconds", type=float, default=0.5, help="pause per simulated action")
    simulated.add_argument("--simulate-failure", help="every simulated update fails with this reason")
    args = parser.parse_args(argv)
    if not args.simulate and (args.simulate_failure or "--simulate-step-seconds" in (argv or sys.argv)):
        parser.error("--simulate-step-seconds and --simulate-failure need --simulate")
    return args


async def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # Windows: no loop signal handlers; a service manager's Ctrl+C is SIGINT
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))

    if args.simulate:
        url, token = args.url or os.environ.get("KABINET_AGENT_URL"), args.token or os.environ.get("KABINET_AGENT_TOKEN")
        if not url or not token:
            print("kabinet-agent: --url and a token (KABINET_AGENT_TOKEN or --token) are needed", file=sys.stderr)
            return 2
        kabinet = Kabinet(url, token)
        log.warning("SIMULATED cluster: update runs are pretended, no session is reported (--simulate)")
        try:
            await serve(kabinet, SimulatedOneCCluster(args.simulate_step_seconds, args.simulate_failure), stop,
                        poll_seconds=args.poll_seconds or 5.0, organization_codes=args.organization_codes, once=args.once)
        finally:
            await kabinet.close()
        return 0

    environ = dict(os.environ)
    if args.url:
        environ["KABINET_AGENT_URL"] = args.url
    if args.token:
        environ["KABINET_AGENT_TOKEN"] = args.token
    if args.poll_seconds:
        environ["KABINET_AGENT_POLL_SECONDS"] = str(args.poll_seconds)
    try:
        config = load(args.config, environ)
    except ConfigError as error:
        print(f"kabinet-agent: {error}", file=sys.stderr)
        return 2
    kabinet = Kabinet(config.url, config.token)
    rac = Rac(config.rac, config.ras, ClusterAdmin(config.admin_user, config.admin_password), encoding=config.encoding)
    cluster = RacCluster(rac, config.time_zone, config.cluster_id)
    sync = SessionSync(kabinet, cluster, config.cluster)
    terminations = Terminations(kabinet, cluster, config.cluster)
    designer = Designer(config.designer, config.server or "localhost", work_dir=config.work_dir) if config.designer else None
    onec = RacOneCCluster(cluster, designer, config.templates, sync)
    log.info("agent for cluster %s (rac %s, ras %s, time zone %s) reporting to %s", config.cluster, config.rac,
             config.ras or "local", config.time_zone.key, config.url)
    if designer is None:
        log.warning("no [updates] designer: update runs are not claimed")
    loops = [
        every(config.poll_seconds, sync.report, stop, what="session snapshot", max_backoff=config.max_backoff_seconds,
              on_failure=cluster.forget),
        every(config.poll_seconds, terminations.once, stop, what="terminations", max_backoff=config.max_backoff_seconds),
    ]
    if designer is not None:
        async def updates() -> None:
            await serve(kabinet, onec, stop, poll_seconds=config.poll_seconds, organization_codes=args.organization_codes,
                        once=args.once, cluster_name=config.cluster)
            stop.set()  # --once: the run is done, and so is the agent
        loops.append(updates())
    try:
        await asyncio.gather(*loops)
    finally:
        await kabinet.close()
    return 0


def run() -> None:
    """The `kabinet-agent` command."""
    sys.exit(asyncio.run(main()))


if __name__ == "__main__":
    run()
