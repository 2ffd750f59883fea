"""`make bench` — kabinet measured against PostGraphile on one machine, in one command.

Creates a PostgreSQL database (kabinet_bench_<random>), migrates it with `kabinet migrate`, seeds a
scaled data set with the project's own code, starts `kabinet serve` as production does (one
process, PostgreSQL, Redis broker, no in-process workers) and PostGraphile 5 on the same database,
drives them with autocannon and WebSocket clients, prints a markdown table on stdout, writes JSON
to bench/results/, and stops everything it started (also on Ctrl-C). Progress goes to stderr.

Workloads (bench/README.md says more):
  W1 many organizations  W2 one dashboard  W3 deep ledger history
  W4 fan-out of `sessions` to 1,000 and 5,000 subscribers on one token, and to 1,000 distinct ADMINs
     and 1,000 distinct USERs (each their own token), and to 10,000 people of 2,000 organizations (spread)  W5 writes with subscribers attached
  SQL statements per request at two data sizes, for every workload.
  With --workers N (default 2): W1 and W2 also on `kabinet serve --workers N`, and W4's largest count.
  --flamegraphs: py-spy flame graphs of the executing kabinet under W1's and W2's load.

  --smoke: tiny data, one short run each, no PostGraphile, a Python load driver (no Node needed);
  fails (exit 1) when a workload is broken: GraphQL errors, lost messages, a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path

from bench import infra
from bench.common import log
from bench.harness import Bench
from bench.report import table
from bench.workloads.w4_fanout import W4_VARIANTS

ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "SQL")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data, one short run each, no PostGraphile, no Node")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS), help="comma-separated, e.g. W1,W2,SQL")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; smoke 1)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load run (default 10; smoke 2)")
    parser.add_argument("--concurrency", type=int, default=10, help="connections of the HTTP load (default 10)")
    parser.add_argument("--subscribers", default="1000,5000", help="W4 subscriber counts (default 1000,5000)")
    parser.add_argument("--w4-distinct", default=None,
                        help="W4 subscriber counts at which the subscribers are also distinct people: ADMINs, then USERs, "
                             "each on their own token (default: the first of --subscribers; smoke 20; 0 for none)")
    parser.add_argument("--w4-variants", default="one,admins,users,spread",
                        help="W4 variants to run: one (token), admins, users, spread (default all four)")
    parser.add_argument("--w4-spread", type=int, default=10_000,
                        help="W4 spread: subscribers, 5 per organization (default 10000 over 2,000 organizations; smoke 50; 0 for none)")
    parser.add_argument("--changes", type=int, default=20, help="W4 session changes per run (default 20)")
    parser.add_argument("--change-interval", type=float, default=0.5,
                        help="W4: at most one change per this many seconds (default 0.5); each waits for the previous one's delivery")
    parser.add_argument("--w4-budget", type=float, default=180,
                        help="W4 seconds of changes per subscriber count; fewer runs/changes when one change is slow (default 180)")
    parser.add_argument("--client-processes", type=int, default=0, help="W4 subscriber processes (default 1 per 2,500, ≤ 4)")
    parser.add_argument("--w5-subscribers", type=int, default=100, help="W5 sessionEvents subscribers (default 100)")
    parser.add_argument("--no-deflate", action="store_true", help="W4/W5 clients do not offer permessage-deflate")
    parser.add_argument("--no-node", action="store_true", help="no npm/Node: Python load driver, no PostGraphile")
    parser.add_argument("--no-postgraphile", action="store_true", help="autocannon, but no PostGraphile comparison")
    parser.add_argument("--workers", type=int, default=2,
                        help="also W1, W2 and W4 on `kabinet serve --workers N` (PostgreSQL + Redis, N uvicorn processes), "
                             "beside one process (default 2; 1 for none; never in --smoke)")
    parser.add_argument("--flamegraphs", nargs="?", const="", default=None, metavar="LABEL",
                        help="py-spy flame graphs of the executing kabinet under W1's and W2's load, an extra run each: "
                             "bench/results/flame-<date>[-LABEL]-W1.svg (and -W2), with a .top.txt summary")
    parser.add_argument("--flame-seconds", type=float, default=10, help="seconds py-spy records (default 10)")
    parser.add_argument("--flame-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--flame-python-only", action="store_true",
                        help="py-spy without --native: Python frames alone (C work is then charged to the Python frame below it)")
    parser.add_argument("--machine", default=os.environ.get("BENCH_MACHINE", "python-svc"), help="label for the results")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<date>.json)")
    args = parser.parse_args(argv)
    unknown = {v.strip() for v in args.w4_variants.split(",")} - set(W4_VARIANTS) - {""}
    if unknown:
        parser.error(f"--w4-variants: unknown {', '.join(sorted(unknown))} (one of {', '.join(W4_VARIANTS)})")
    args.runs = args.runs or (1 if args.smoke else 3)
    args.duration = args.duration or (2.0 if args.smoke else 10.0)
    if args.smoke:
        args.workers = 1  # the smoke stays short: CI runs it
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    infra.raise_fd_limit()
    procs = infra.Processes()
    state: dict = {}

    def terminate(signum, frame):  # noqa: ARG001 — SIGTERM ends the bench like Ctrl-C
        signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops it even when started in the background
    bench = Bench(args, procs, state)
    code = 0
    try:
        results = asyncio.run(bench.run())
    except KeyboardInterrupt:
        log("interrupted: stopping everything the bench started")
        return 130
    except Exception:
        log("the bench failed:")
        import traceback

        traceback.print_exc()
        return 1
    finally:
        procs.stop_all()
        if state.get("database") and args.keep_database:
            log(f"kept database {state['database']} (--keep-database): drop it with "
                f"psql {infra.PG_ADMIN_URL}/postgres -c 'DROP DATABASE \"{state['database']}\"'")
        elif state.get("database"):
            try:
                infra.drop_database(state["database"])
                log(f"dropped database {state['database']}")
            except Exception as error:  # noqa: BLE001
                log(f"could not drop database {state['database']}: {error}")
    out = Path(args.out) if args.out else infra.BENCH_DIR / "results" / (
        dt.datetime.now().strftime("%Y-%m-%d-%H%M%S") + ("-smoke" if args.smoke else "") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    print(table(results))
    log(f"results written to {out} ({results['meta']['total_s']} s in all)")
    if results["problems"]:
        code = 1 if args.smoke else 0
        log(f"{len(results['problems'])} problem(s): see the end of the table")
    return code


if __name__ == "__main__":
    sys.exit(main())
