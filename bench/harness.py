"""The bench's one run: the database, the seed, the servers, the workloads in turn (bench/workloads/),
and what every workload reaches through `bench` (its load driver, requests, notes and problems)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import httpx

from bench import data, infra
from bench import queries as Q
from bench.common import BenchError, ServerCpu, bearer, log
from bench.http_load import LoadSpec, autocannon_available, python_load, run_autocannon
from bench.report import check_targets
from bench.workloads import sql_counts, w1_nested, w2_dashboard, w3_history, w4_fanout, w5_writes

# in this order, on the two kabinet servers (four with `--workers N`: the same two multi-process) and
# PostGraphile the run starts for them; then W4, each subscriber count on a fresh kabinet process of
# its own (and one count on a fresh `serve --workers N`); then the SQL counts, in this process
WORKLOADS_ON_SHARED_SERVERS = (("W1", w1_nested.run), ("W2", w2_dashboard.run), ("W3", w3_history.run),
                               ("W5", w5_writes.run))


class Bench:
    """One run of the bench: its arguments, processes, data set, servers and results."""

    def __init__(self, args: argparse.Namespace, procs: infra.Processes, state: dict) -> None:
        self.args = args
        self.procs = procs
        self.state = state
        self.smoke = args.smoke
        self.scale = data.SMOKE if args.smoke else data.Scale()
        self.w4_levels = [20] if args.smoke else [int(x) for x in args.subscribers.split(",")]
        self.w4_variants = [v.strip() for v in args.w4_variants.split(",") if v.strip()]
        if args.w4_distinct is None:
            self.w4_distinct = self.w4_levels[:1]
        else:
            self.w4_distinct = [int(x) for x in args.w4_distinct.split(",") if x.strip() not in ("", "0", "none")]
        if not {"admins", "users"} & set(self.w4_variants) or "W4" not in args.workloads.upper():
            self.w4_distinct = []
        # as many ADMINs and USERs as the largest distinct level needs; W4 spread's organizations, 5 people each
        spread = 50 if args.smoke else args.w4_spread
        if "spread" not in self.w4_variants or "W4" not in args.workloads.upper():
            spread = 0
        self.scale = dataclasses.replace(self.scale, w4_people=max(self.w4_distinct, default=0),
                                         spread_organizations=-(-spread // 5))
        self.results: dict = {"workloads": {}, "targets": [], "problems": [], "notes": []}
        self.log_dir = infra.BENCH_DIR / "results" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.use_autocannon = False
        self.secret = os.urandom(32).hex()

    # ------------------------------------------------------------ helpers

    async def load(self, spec: LoadSpec) -> dict:
        if self.use_autocannon:
            return await run_autocannon(spec, self.procs.adopt, self.procs.release)
        return await python_load(spec)

    async def measured_load(self, spec: LoadSpec, pid: int) -> dict:
        """A load run, with the server's CPU time per request it answered."""
        cpu = ServerCpu(pid)
        figures = await self.load(spec)
        figures["server_cpu_ms_per_request"] = cpu.ms_per(figures["requests"])
        return figures

    def note(self, text: str) -> None:
        log(f"note: {text}")
        self.results["notes"].append(text)

    def problem(self, text: str) -> None:
        log(f"PROBLEM: {text}")
        self.results["problems"].append(text)

    async def gql(self, base: str, query: str, variables: dict | None = None, token: str | None = None) -> tuple[dict, int]:
        headers = bearer(token) if token else {}
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise BenchError(f"{query.split('{')[0].strip()} failed ({response.status_code}): {response.text[:500]}")
        return body, len(response.content)

    async def login(self, base: str, email: str) -> str:
        body, _ = await self.gql(base, Q.LOGIN, {"login": email, "password": self.dataset.password})
        return body["data"]["login"]["accessToken"]

    def body(self, query: str, variables: dict | None = None) -> str:
        return json.dumps({"query": query, "variables": variables or {}})

    # ------------------------------------------------------------ the run

    async def run(self) -> dict:
        args = self.args
        started = time.monotonic()
        workloads = [w.strip().upper() for w in args.workloads.split(",")]
        meta = self.results["meta"] = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": args.machine, "cpus": os.cpu_count(), "memory_gib": _memory_gib(), "python": platform.python_version(),
            "commit": _git_commit(), "smoke": self.smoke, "runs": args.runs, "duration_s": args.duration,
            "concurrency": args.concurrency, "workers": args.workers, "workloads": workloads, "scale": self.scale.__dict__,
        }
        if not self.smoke and not args.no_node:
            self.use_autocannon = await asyncio.to_thread(infra.ensure_node_tools, log) and autocannon_available()
        elif not self.smoke:
            log("--no-node: the Python load driver, no PostGraphile")
        meta["load_driver"] = "autocannon 9.0.0" if self.use_autocannon else "python-httpx (a few hundred req/s at most)"
        with_postgraphile = self.use_autocannon and not self.smoke and not args.no_postgraphile
        if with_postgraphile and infra.node_major() < 22:
            self.note(f"no PostGraphile comparison: it needs Node 22, and the node here is v{infra.node_major()} "
                      "(did npm skip the `node` package's install script?)")
            with_postgraphile = False

        name, url = await asyncio.to_thread(infra.create_database)
        self.state["database"] = name
        self.url = url
        log(f"database {name}; migrating with `kabinet migrate`")
        self.env = infra.kabinet_env(url, self.secret)
        await asyncio.to_thread(infra.migrate, self.env)

        from kabinet import db
        from events.broker import create_broadcast
        from foundation.settings import Settings

        self.settings = Settings(database_url=url, broker_url=infra.REDIS_URL, secret_key=self.secret, run_workers=False,
                                 seed_demo=False, migrate_on_start=False, data_dir=infra.BENCH_DIR / "results" / ".data")
        await db.connect(self.settings)
        self.db_connected = True
        seeding = time.monotonic()
        log("seeding with kabinet/bulk_data.py and bench/data.py")
        self.dataset = await data.seed(self.scale, log)
        await asyncio.to_thread(infra._sql, "ANALYZE", name)
        meta["seed_s"] = round(time.monotonic() - seeding, 1)
        log(f"seeded in {meta['seed_s']} s")
        self.broadcast = create_broadcast(infra.REDIS_URL, self.settings.resolved_broker_namespace)
        await self.broadcast.connect()
        # kabinet's Redis backend reconnects in a loop (a warning 5 times a second) while its process
        # subscribes to nothing: this publishing process holds one subscription to keep it quiet
        self.quiet = asyncio.create_task(self._hold_a_subscription())

        try:
            if any(w in workloads for w in ("W1", "W2", "W3", "W5")):
                self.kabinet, self.base = infra.start_kabinet(self.procs, self.env, self.log_dir)
                log(f"kabinet serving at {self.base} (pid {self.kabinet.pid})")
                if any(w in workloads for w in ("W1", "W2", "W3")):
                    # the same, answering every request by executing it: what a request costs when
                    # its answer is not kept (W1/W2 side by side; W3 measures the SQL, not the cache)
                    self.kabinet_uncached, self.base_uncached = infra.start_kabinet(
                        self.procs, {**self.env, "KABINET_RESPONSE_CACHE_MB": "0"}, self.log_dir, name="kabinet-uncached"
                    )
                    log(f"kabinet without response cache at {self.base_uncached} (pid {self.kabinet_uncached.pid})")
                if args.workers > 1 and any(w in workloads for w in ("W1", "W2")):
                    # the same two as `serve --workers N`: what more processes (cores) buy
                    self.kabinet_multi, self.base_multi = infra.start_kabinet(
                        self.procs, self.env, self.log_dir, name="kabinet-multi", workers=args.workers)
                    self.kabinet_multi_uncached, self.base_multi_uncached = infra.start_kabinet(
                        self.procs, {**self.env, "KABINET_RESPONSE_CACHE_MB": "0"}, self.log_dir,
                        name="kabinet-multi-uncached", workers=args.workers)
                    log(f"kabinet --workers {args.workers} at {self.base_multi}, without response cache at "
                        f"{self.base_multi_uncached}")
                self.pg_base = None
                if with_postgraphile and ("W1" in workloads or "W2" in workloads):
                    self.pg_proc, self.pg_base = infra.start_postgraphile(self.procs, url, self.log_dir)
                    log(f"PostGraphile serving at {self.pg_base}")
                for w, workload in WORKLOADS_ON_SHARED_SERVERS:
                    if w in workloads:
                        await self._guarded(w, workload)
                self.procs.stop_all()
            if "W4" in workloads:
                await self._guarded("W4", w4_fanout.run)
                if args.workers > 1:
                    await self._guarded("W4_workers", lambda bench: w4_fanout.run_on_workers(bench, args.workers))
            if "SQL" in workloads:
                await self._disconnect()
                await self._guarded("SQL", sql_counts.run)
        finally:
            await self._disconnect()
        meta["total_s"] = round(time.monotonic() - started, 1)
        check_targets(self.results)
        return self.results

    def multi_process_servers(self) -> list[tuple[str, str, int]]:
        """(name, base URL, pid) of the `serve --workers N` pair, when the run started them."""
        if getattr(self, "kabinet_multi", None) is None:
            return []
        return [("kabinet_multi", self.base_multi, self.kabinet_multi.pid),
                ("kabinet_multi_uncached", self.base_multi_uncached, self.kabinet_multi_uncached.pid)]

    async def _disconnect(self) -> None:
        from kabinet import db

        if getattr(self, "broadcast", None) is not None:
            self.quiet.cancel()
            broadcast, self.broadcast = self.broadcast, None
            try:
                await broadcast.disconnect()
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 — its listener ends cancelled
                pass
        if getattr(self, "db_connected", False):
            self.db_connected = False
            await db.disconnect()

    async def _hold_a_subscription(self) -> None:
        from events.broker import HEALTH_CHANNEL

        async with self.broadcast.subscribe(HEALTH_CHANNEL) as notices:
            async for _ in notices:
                pass

    async def _guarded(self, name: str, workload) -> None:
        log(f"== {name}")
        try:
            await workload(self)
        except BenchError as error:
            self.problem(f"{name}: {error}")
            self.results["workloads"].setdefault(name, {})["error"] = str(error)


# ---------------------------------------------------------------- plumbing

def _memory_gib() -> int:
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        return round(kb / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=infra.ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"

