"""`make bench` — kabinet measured against PostGraphile on one machine, in one command.

Creates a PostgreSQL database (kabinet_bench_<random>), migrates it with `kabinet migrate`, seeds a
scaled data set with the project's own code, starts `kabinet serve` as production does (one
process, PostgreSQL, Redis broker, no in-process workers) and PostGraphile 5 on the same database,
drives them with autocannon and WebSocket clients, prints a markdown table on stdout, writes JSON
to bench/results/, and stops everything it started (also on Ctrl-C). Progress goes to stderr.

Workloads (bench/README.md says more):
  W1 many organizations  W2 one dashboard  W3 deep ledger history
  W4 fan-out of `sessions` to 1,000 and 5,000 subscribers  W5 writes with subscribers attached
  SQL statements per request at two data sizes, for every workload.

  --smoke: tiny data, one short run each, no PostGraphile, a Python load driver (no Node needed);
  fails (exit 1) when a workload is broken: GraphQL errors, lost messages, a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from bench import data, infra
from bench import queries as Q
from bench.changes import SessionChanges
from bench.http_load import LoadSpec, autocannon_available, percentile, python_load, run_autocannon
from resolvers.ids import pk_of

ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "SQL")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


class BenchError(Exception):
    """A workload is broken (not merely slow): the smoke fails on it."""


class Bench:
    def __init__(self, args: argparse.Namespace, procs: infra.Processes, state: dict) -> None:
        self.args = args
        self.procs = procs
        self.state = state
        self.smoke = args.smoke
        self.scale = data.SMOKE if args.smoke else data.Scale()
        self.results: dict = {"workloads": {}, "targets": [], "problems": []}
        self.log_dir = infra.BENCH_DIR / "results" / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.use_autocannon = False
        self.secret = os.urandom(32).hex()

    # ------------------------------------------------------------ helpers

    async def load(self, spec: LoadSpec) -> dict:
        if self.use_autocannon:
            return await run_autocannon(spec, self.procs.adopt, self.procs.release)
        return await python_load(spec)

    def problem(self, text: str) -> None:
        log(f"PROBLEM: {text}")
        self.results["problems"].append(text)

    async def gql(self, base: str, query: str, variables: dict | None = None, token: str | None = None) -> tuple[dict, int]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
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
            "concurrency": args.concurrency, "workloads": workloads, "scale": self.scale.__dict__,
        }
        if not self.smoke and not args.no_node:
            self.use_autocannon = await asyncio.to_thread(infra.ensure_node_tools, log) and autocannon_available()
        elif not self.smoke:
            log("--no-node: the Python load driver, no PostGraphile")
        meta["load_driver"] = "autocannon 9.0.0" if self.use_autocannon else "python-httpx (a few hundred req/s at most)"
        with_postgraphile = self.use_autocannon and not self.smoke and not args.no_postgraphile

        name, url = infra.create_database()
        self.state["database"] = name
        self.url = url
        log(f"database {name}; migrating with `kabinet migrate`")
        self.env = infra.kabinet_env(url, self.secret)
        await asyncio.to_thread(infra.migrate, self.env)

        from kabinet import db
        from kabinet.pubsub import create_broadcast
        from kabinet.settings import Settings

        self.settings = Settings(database_url=url, broker_url=infra.REDIS_URL, secret_key=self.secret, run_workers=False,
                                 seed_demo=False, migrate_on_start=False, data_dir=infra.BENCH_DIR / "results" / ".data")
        await db.connect(self.settings)
        self.db_connected = True
        seeding = time.monotonic()
        log("seeding with kabinet/bulk_data.py and bench/data.py")
        self.dataset = await data.seed(self.scale, log)
        await asyncio.to_thread(infra._psql, "ANALYZE", name)
        meta["seed_s"] = round(time.monotonic() - seeding, 1)
        log(f"seeded in {meta['seed_s']} s")
        self.broadcast = create_broadcast(infra.REDIS_URL)
        await self.broadcast.connect()
        # kabinet's Redis backend reconnects in a loop (a warning 5 times a second) while its process
        # subscribes to nothing: this publishing process holds one subscription to keep it quiet
        self.quiet = asyncio.create_task(self._hold_a_subscription())

        try:
            if any(w in workloads for w in ("W1", "W2", "W3", "W5")):
                self.kabinet, self.base = infra.start_kabinet(self.procs, self.env, self.log_dir)
                log(f"kabinet serving at {self.base} (pid {self.kabinet.pid})")
                self.pg_base = None
                if with_postgraphile and ("W1" in workloads or "W2" in workloads):
                    _, self.pg_base = infra.start_postgraphile(self.procs, url, self.log_dir)
                    log(f"PostGraphile serving at {self.pg_base}")
                for w, method in (("W1", self.w1), ("W2", self.w2), ("W3", self.w3), ("W5", self.w5)):
                    if w in workloads:
                        await self._guarded(w, method)
                self.procs.stop_all()
            if "W4" in workloads:
                await self._guarded("W4", self.w4)
            if "SQL" in workloads:
                await self._disconnect()
                await self._guarded("SQL", self.sql)
        finally:
            await self._disconnect()
        meta["total_s"] = round(time.monotonic() - started, 1)
        self.check_targets()
        return self.results

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
        from kabinet.pubsub import HEALTH_CHANNEL

        async with self.broadcast.subscribe(HEALTH_CHANNEL) as notices:
            async for _ in notices:
                pass

    async def _guarded(self, name: str, method) -> None:
        log(f"== {name}")
        try:
            await method()
        except BenchError as error:
            self.problem(f"{name}: {error}")
            self.results["workloads"].setdefault(name, {})["error"] = str(error)

    # ------------------------------------------------------------ W1, W2

    async def compare(self, name: str, kabinet: tuple[str, dict, str], postgraphile: tuple[str, dict] | None) -> dict:
        args = self.args
        query, variables, token = kabinet
        _, k_size = await self.gql(self.base, query, variables, token)
        k_spec = LoadSpec(f"{self.base}/graphql", [self.body(query, variables)], args.concurrency, args.duration,
                          {"authorization": f"Bearer {token}"})
        result: dict = {"kabinet": {"response_bytes": k_size}}
        p_spec = None
        if postgraphile and self.pg_base:
            p_query, p_variables = postgraphile
            p_body, p_size = await self.gql(self.pg_base, p_query, p_variables)
            result["postgraphile"] = {"response_bytes": p_size}
            p_spec = LoadSpec(f"{self.pg_base}/graphql", [self.body(p_query, p_variables)], args.concurrency, args.duration)
        log(f"  response bytes: kabinet {k_size:,}" + (f", PostGraphile {p_size:,}" if p_spec else ""))
        warm = 0.5 if self.smoke else min(3.0, args.duration / 3)
        await self.load(LoadSpec(k_spec.url, k_spec.bodies, args.concurrency, warm, k_spec.headers))
        if p_spec:
            await self.load(LoadSpec(p_spec.url, p_spec.bodies, args.concurrency, warm))
        runs: dict[str, list[dict]] = {"kabinet": [], "postgraphile": []}
        for run in range(args.runs):  # interleaved, so that a noisy minute hits both
            runs["kabinet"].append(await self.load(k_spec))
            if p_spec:
                runs["postgraphile"].append(await self.load(p_spec))
            log(f"  run {run + 1}: kabinet {runs['kabinet'][-1]['rps']:.0f} req/s p99 {runs['kabinet'][-1]['latency_ms']['p99']:.1f} ms"
                + (f"; PostGraphile {runs['postgraphile'][-1]['rps']:.0f} req/s p99 {runs['postgraphile'][-1]['latency_ms']['p99']:.1f} ms" if p_spec else ""))
        for server, server_runs in runs.items():
            if not server_runs:
                continue
            result[server].update({
                "rps": spread([r["rps"] for r in server_runs]),
                "p50_ms": spread([r["latency_ms"]["p50"] for r in server_runs]),
                "p99_ms": spread([r["latency_ms"]["p99"] for r in server_runs]),
                "non2xx": sum(r["non2xx"] for r in server_runs), "errors": sum(r["errors"] for r in server_runs),
                "driver": server_runs[0]["driver"], "raw": server_runs,
            })
            if result[server]["non2xx"] or result[server]["errors"]:
                self.problem(f"{name} {server}: {result[server]['non2xx']} non-2xx answers, {result[server]['errors']} errors")
        if p_spec:
            result["ratio_rps"] = result["kabinet"]["rps"]["median"] / result["postgraphile"]["rps"]["median"]
            result["ratio_p99"] = result["kabinet"]["p99_ms"]["median"] / result["postgraphile"]["p99_ms"]["median"]
        result["concurrency"] = args.concurrency
        return result

    async def w1(self) -> None:
        ds = self.dataset
        token = await self.login(self.base, ds.w1.email)
        self.results["workloads"]["W1"] = await self.compare(
            "W1", (Q.W1_KABINET, {}, token), (Q.W1_POSTGRAPHILE, {"user": ds.w1.user_pk})
        )

    async def w2(self) -> None:
        ds = self.dataset
        token = await self.login(self.base, ds.w2.email)
        self.results["workloads"]["W2"] = await self.compare(
            "W2", (Q.W2_KABINET, {"org": ds.w2.organization_id}, token),
            (Q.W2_POSTGRAPHILE, {"org": ds.w2.organization_pks[0]}),
        )

    # ------------------------------------------------------------ W3

    async def w3(self) -> None:
        ds = self.dataset
        token = await self.login(self.base, ds.w3.email)
        org = ds.w3.organization_id
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=60) as client:

            async def page(after: str | None) -> tuple[float, dict]:
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": Q.W3_KABINET, "variables": {"org": org, "after": after}})
                elapsed = (time.perf_counter() - started) * 1000
                body = response.json()
                if body.get("errors"):
                    raise BenchError(f"ledger page failed: {str(body['errors'])[:300]}")
                return elapsed, body["data"]["organization"]["balanceTransactions"]

            cursors: list[str | None] = [None]
            walk: list[float] = []
            rows = 0
            walk_started = time.monotonic()
            while True:
                elapsed, connection = await page(cursors[-1])
                walk.append(elapsed)
                rows += len(connection["edges"])
                if not connection["pageInfo"]["hasNextPage"]:
                    break
                cursors.append(connection["pageInfo"]["endCursor"])
            walk_s = time.monotonic() - walk_started
            if rows != self.scale.ledger_rows:
                raise BenchError(f"paged {rows} ledger rows, expected {self.scale.ledger_rows}")
            n = min(50, len(cursors) // 2) or 1
            first, last = cursors[:n], cursors[-n:]
            firsts, lasts, ratios = [], [], []
            for _ in range(self.args.runs):
                f, l = [], []
                for a, b in zip(first, last):  # interleaved: drift hits both ends alike
                    f.append((await page(a))[0])
                    l.append((await page(b))[0])
                firsts.append(statistics.median(f))
                lasts.append(statistics.median(l))
                ratios.append(lasts[-1] / firsts[-1])
        result = {
            "rows": rows, "pages": len(cursors), "page_size": 100, "pages_measured_each_end": n,
            "walk_s": walk_s, "walk_first_pages_ms": statistics.median(walk[:n]), "walk_last_pages_ms": statistics.median(walk[-n:]),
            "first_pages_ms": spread(firsts), "last_pages_ms": spread(lasts), "ratio_last_first": spread(ratios),
        }
        log(f"  {len(cursors)} pages in {walk_s:.1f} s; first {n} pages {result['first_pages_ms']['median']:.1f} ms, "
            f"last {n} {result['last_pages_ms']['median']:.1f} ms (ratio {result['ratio_last_first']['median']:.2f})")
        self.results["workloads"]["W3"] = result

    # ------------------------------------------------------------ subscriber processes

    async def start_subscribers(self, base: str, token: str, query: str, variables: dict, field: str, count: int,
                                processes: int, *, snapshot: bool, record_times: bool) -> list:
        ws_url = base.replace("http://", "ws://") + "/graphql"
        per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        clients = []
        for i, n in enumerate(per):
            spec = {"url": ws_url, "token": token, "query": query, "variables": variables, "field": field, "count": n,
                    "snapshot": snapshot, "record_times": record_times, "compression": not self.args.no_deflate,
                    "connect_concurrency": 50}
            with open(self.log_dir / f"wsclients-{i}.log", "wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.wsclients", json.dumps(spec), cwd=infra.ROOT, start_new_session=True,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, limit=256 * 1024 * 1024,
                )
            self.procs.adopt(proc.pid)
            clients.append(proc)
        try:
            ready = await asyncio.gather(*(self._line(c, timeout=60 + count * 0.1) for c in clients))
        except BaseException:
            await self.stop_subscribers(clients)
            raise
        failed = sum(r["failed"] for r in ready)
        if failed:
            await self.stop_subscribers(clients)
            raise BenchError(f"{failed} of {count} subscribers could not subscribe: {[r['errors'] for r in ready]}")
        log(f"  {count} subscribers live in {max(r['connect_s'] for r in ready):.1f} s ({processes} client processes)")
        return clients

    async def _line(self, proc, timeout: float) -> dict:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"a subscriber process did not answer in {timeout:.0f} s") from None
        if not line:
            raise BenchError(f"a subscriber process ended (exit {proc.returncode}); see bench/results/logs/")
        return orjson.loads(line)

    async def report(self, clients: list) -> list[dict]:
        for c in clients:
            c.stdin.write(b"report\n")
            await c.stdin.drain()
        return await asyncio.gather(*(self._line(c, timeout=120) for c in clients))

    async def stop_subscribers(self, clients: list) -> None:
        for c in clients:
            try:
                c.stdin.write(b"quit\n")
                await c.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass
        for c in clients:
            try:
                await asyncio.wait_for(c.wait(), 30)
            except asyncio.TimeoutError:
                try:
                    os.killpg(c.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await c.wait()
            self.procs.release(c.pid)

    async def collect(self, clients, expected: dict[str, int], deadline_s: float, record_times: bool):
        """Poll the subscriber processes until every key has arrived `expected[key]` times (or the deadline)."""
        counts: dict[str, int] = {k: 0 for k in expected}
        times: dict[str, list[float]] = {k: [] for k in expected}
        errors: list[str] = []
        error_count = 0
        deadline = time.monotonic() + deadline_s
        while True:
            for report in await self.report(clients):
                for key, n in report["counts"].items():
                    counts[key] = counts.get(key, 0) + n
                if record_times:
                    for key, ts in report["times"].items():
                        times.setdefault(key, []).extend(ts)
                errors += report["errors"]
                error_count += report["error_count"]
            if all(counts.get(k, 0) >= n for k, n in expected.items()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        return counts, times, errors, error_count

    # ------------------------------------------------------------ W4

    async def w4(self) -> None:
        ds = self.dataset
        levels = [20] if self.smoke else [int(x) for x in self.args.subscribers.split(",")]
        changes_n = 3 if self.smoke else self.args.changes
        interval = 0.2 if self.smoke else self.args.change_interval
        org_pk = pk_of(ds.w4.organization_id, "Organization")
        changes = SessionChanges(self.broadcast, org_pk)
        variables = {"org": ds.w4.organization_id}
        out: dict = {"changes_per_run": changes_n, "change_interval_s": interval, "levels": {},
                     "deflate": not self.args.no_deflate}
        for n in levels:
            log(f"  -- {n} subscribers (a fresh kabinet process)")
            server, base = infra.start_kabinet(self.procs, self.env, self.log_dir)
            clients: list = []
            try:
                token = await self.login(base, ds.w4.email)
                # warm the process up: a few subscribers, one change, gone
                warm = await self.start_subscribers(base, token, Q.W4_SUBSCRIPTION, variables, "sessions", 10, 1,
                                                    snapshot=True, record_times=False)
                key, _ = await changes.next()
                await self.collect(warm, {key: 10}, 20, False)
                await self.stop_subscribers(warm)
                await asyncio.sleep(0.5 if self.smoke else 2)
                rss_before = infra.rss_kb(server.pid)
                processes = self.args.client_processes or max(1, min(4, math.ceil(n / 2500)))
                connect_started = time.monotonic()
                clients = await self.start_subscribers(base, token, Q.W4_SUBSCRIPTION, variables, "sessions", n, processes,
                                                       snapshot=True, record_times=True)
                connect_s = time.monotonic() - connect_started
                await asyncio.sleep(0.5 if self.smoke else 3)
                rss_idle = infra.rss_kb(server.pid)
                per_connection_kb = (rss_idle - rss_before) / n
                log(f"  server RSS {rss_before / 1024:.0f} MiB → {rss_idle / 1024:.0f} MiB: {per_connection_kb:.1f} KB per idle subscriber")
                await self.report(clients)  # forget anything before the runs
                runs = []
                for run in range(self.args.runs):
                    commits: dict[str, float] = {}
                    for _ in range(changes_n):
                        key, committed = await changes.next()
                        commits[key] = committed
                        await asyncio.sleep(interval)
                    counts, times, errors, error_count = await self.collect(
                        clients, {k: n for k in commits}, deadline_s=60 if not self.smoke else 15, record_times=True
                    )
                    last_latency = [(max(times[k]) - commits[k]) * 1000 for k in commits if times.get(k)]
                    all_latency = [(t - commits[k]) * 1000 for k in commits for t in times.get(k, [])]
                    expected = n * changes_n
                    received = sum(min(counts.get(k, 0), n) for k in commits)
                    duplicates = sum(max(0, counts.get(k, 0) - n) for k in commits)
                    runs.append({
                        "last_subscriber_p50_ms": percentile(last_latency, 0.5), "last_subscriber_p99_ms": percentile(last_latency, 0.99),
                        "last_subscriber_max_ms": max(last_latency, default=None),
                        "all_deliveries_p50_ms": percentile(all_latency, 0.5), "all_deliveries_p99_ms": percentile(all_latency, 0.99),
                        "expected": expected, "received": received, "lost": expected - received, "duplicates": duplicates,
                        "subscriber_errors": error_count, "error_samples": errors[:3],
                        "messages_per_s": received / max(1e-9, max(max(ts) for ts in times.values() if ts) - min(commits.values()))
                        if received else 0,
                    })
                    r = runs[-1]
                    log(f"  run {run + 1}: last subscriber p50 {r['last_subscriber_p50_ms']:.0f} ms p99 {r['last_subscriber_p99_ms']:.0f} ms; "
                        f"all deliveries p50 {r['all_deliveries_p50_ms']:.0f} ms; lost {r['lost']}; errors {error_count}")
                    if r["lost"] or error_count:
                        self.problem(f"W4 {n} subscribers run {run + 1}: {r['lost']} messages lost, {error_count} subscriber errors {errors[:2]}")
                rss_end = infra.rss_kb(server.pid)
                out["levels"][str(n)] = {
                    "subscribers": n, "client_processes": processes, "connect_s": connect_s,
                    "rss_before_kb": rss_before, "rss_idle_kb": rss_idle, "rss_after_runs_kb": rss_end,
                    "rss_per_idle_subscriber_kb": per_connection_kb,
                    "last_subscriber_p50_ms": spread([r["last_subscriber_p50_ms"] for r in runs]),
                    "last_subscriber_p99_ms": spread([r["last_subscriber_p99_ms"] for r in runs]),
                    "all_deliveries_p50_ms": spread([r["all_deliveries_p50_ms"] for r in runs]),
                    "all_deliveries_p99_ms": spread([r["all_deliveries_p99_ms"] for r in runs]),
                    "lost": sum(r["lost"] for r in runs), "duplicates": sum(r["duplicates"] for r in runs),
                    "subscriber_errors": sum(r["subscriber_errors"] for r in runs), "runs": runs,
                }
            except BenchError as error:
                self.problem(f"W4 {n} subscribers: {error}")
                out["levels"][str(n)] = {"subscribers": n, "error": str(error)}
            finally:
                await self.stop_subscribers(clients)
                self.procs.stop(server)
        self.results["workloads"]["W4"] = out

    # ------------------------------------------------------------ W5

    async def w5(self) -> None:
        from models.cloud import Session, SessionStatus

        ds = self.dataset
        args = self.args
        token = await self.login(self.base, ds.w5.email)
        org_pk = pk_of(ds.w5.organization_id, "Organization")
        subscribers = 5 if self.smoke else args.w5_subscribers
        duration = args.duration
        clients = await self.start_subscribers(self.base, token, Q.W5_SUBSCRIPTION, {"org": ds.w5.organization_id},
                                               "sessionEvents", subscribers, 1, snapshot=False, record_times=False)
        out: dict = {"subscribers": subscribers, "concurrency": args.concurrency}
        try:
            # probe changes until every subscriber has one: then all are live (sessionEvents sends nothing first)
            probe = SessionChanges(self.broadcast, org_pk)
            for attempt in range(20):
                key, _ = await probe.next()
                counts, *_ = await self.collect(clients, {key: subscribers}, 5, False)
                if counts.get(key, 0) >= subscribers:
                    break
            else:
                raise BenchError(f"only {counts.get(key, 0)} of {subscribers} subscribers got a probe event")
            if probe.open:
                key, _ = await probe.next()  # end the probe session again
                await self.collect(clients, {key: subscribers}, 10, False)
            await self.report(clients)

            ids = ds.w5_session_ids[:-10]  # the last ten are the SQL count's
            chunk = len(ids) // args.runs
            headers = {"authorization": f"Bearer {token}"}
            schedule_bodies = [self.body(Q.W5_SCHEDULE, {"db": db, "day": day}) for db in ds.w5.database_ids for day in range(1, 29)]
            random.Random(5).shuffle(schedule_bodies)
            _, _ = await self.gql(self.base, Q.W5_SCHEDULE, {"db": ds.w5.database_ids[0], "day": 3}, token)
            terminate_runs, schedule_runs = [], []
            for run in range(args.runs):
                mine = ids[run * chunk:(run + 1) * chunk]
                before = await Session.filter(organization_id=org_pk, status=SessionStatus.TERMINATING).count()
                result = await self.load(LoadSpec(f"{self.base}/graphql", [self.body(Q.W5_TERMINATE, {"id": i}) for i in mine],
                                                  args.concurrency, duration, headers))
                after = await Session.filter(organization_id=org_pk, status=SessionStatus.TERMINATING).count()
                terminated = after - before
                counts, _, errors, error_count = await self.collect(clients, {}, 0, False)
                received = sum(counts.values())
                deadline = time.monotonic() + 60
                while received < terminated * subscribers and time.monotonic() < deadline:
                    counts, _, more_errors, more_count = await self.collect(clients, {}, 0, False)
                    received += sum(counts.values())
                    errors += more_errors
                    error_count += more_count
                    await asyncio.sleep(0.5)
                lost = terminated * subscribers - received
                terminate_runs.append({
                    "requests_per_s": result["rps"], "terminations": terminated, "terminations_per_s": terminated / result["duration_s"],
                    "exhausted": terminated >= len(mine), "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"],
                    "events_expected": terminated * subscribers, "events_received": received, "lost": lost,
                    "subscriber_errors": error_count, "non2xx": result["non2xx"], "errors": result["errors"],
                })
                r = terminate_runs[-1]
                log(f"  run {run + 1}: terminateSession {r['terminations_per_s']:.0f}/s (p99 {r['p99_ms']:.0f} ms), "
                    f"{received:,} events delivered, lost {lost}")
                if lost or error_count or r["non2xx"] or r["errors"]:
                    self.problem(f"W5 run {run + 1}: {lost} events lost, {error_count} subscriber errors {errors[:2]}, "
                                 f"{r['non2xx']} non-2xx, {r['errors']} errors")
                if r["exhausted"]:
                    self.problem(f"W5 run {run + 1}: all {len(mine)} sessions were terminated before the time was up: a lower bound")
                result = await self.load(LoadSpec(f"{self.base}/graphql", schedule_bodies, args.concurrency, duration, headers))
                schedule_runs.append({"requests_per_s": result["rps"], "p50_ms": result["latency_ms"]["p50"],
                                      "p99_ms": result["latency_ms"]["p99"], "non2xx": result["non2xx"], "errors": result["errors"]})
                log(f"  run {run + 1}: scheduleUpdate {result['rps']:.0f}/s (p99 {result['latency_ms']['p99']:.0f} ms)")
                await self.report(clients)
            out["terminateSession"] = {
                "per_s": spread([r["terminations_per_s"] for r in terminate_runs]),
                "p99_ms": spread([r["p99_ms"] for r in terminate_runs]),
                "lost": sum(r["lost"] for r in terminate_runs), "runs": terminate_runs,
            }
            out["scheduleUpdate"] = {
                "per_s": spread([r["requests_per_s"] for r in schedule_runs]),
                "p99_ms": spread([r["p99_ms"] for r in schedule_runs]), "runs": schedule_runs,
            }
        finally:
            await self.stop_subscribers(clients)
        self.results["workloads"]["W5"] = out

    # ------------------------------------------------------------ SQL statements

    async def sql(self) -> None:
        from bench.sqlcount import count_statements

        counts = await count_statements(self.settings, self.dataset, infra.REDIS_URL, log)
        self.results["workloads"]["SQL"] = counts

    # ------------------------------------------------------------ targets

    def check_targets(self) -> None:
        w = self.results["workloads"]
        targets = self.results["targets"]

        def add(name: str, value: str, met: bool | None) -> None:
            targets.append({"target": name, "value": value, "met": met})

        for name in ("W1", "W2"):
            if "ratio_rps" in w.get(name, {}):
                add(f"{name} throughput at c={w[name]['concurrency']} ≥ 0.5× PostGraphile", f"{w[name]['ratio_rps']:.2f}×",
                    w[name]["ratio_rps"] >= 0.5)
        if w.get("W2", {}).get("kabinet", {}).get("p99_ms"):
            p99 = w["W2"]["kabinet"]["p99_ms"]["median"]
            add(f"W2 p99 < 50 ms at c={w['W2']['concurrency']}", f"{p99:.1f} ms", p99 < 50)
        if "ratio_last_first" in w.get("W3", {}):
            ratio = w["W3"]["ratio_last_first"]["median"]
            add("W3 last pages within ±20% of the first", f"{ratio:.2f}×", 0.8 <= ratio <= 1.2)
        for n, level in w.get("W4", {}).get("levels", {}).items():
            if "error" in level:
                add(f"W4 {n} subscribers", level["error"][:80], False)
                continue
            p99 = level["last_subscriber_p99_ms"]["median"]
            big = int(n) >= 5000
            add(f"W4 {n} subscribers: p99 commit→last subscriber" + (" < 1 s" if big else ""), f"{p99:.0f} ms", p99 < 1000 if big else None)
            add(f"W4 {n} subscribers: messages lost = 0", str(level["lost"]), level["lost"] == 0)
            kb = level["rss_per_idle_subscriber_kb"]
            add(f"W4 {n} subscribers: RSS per idle connection" + (" < 20 KB" if big else ""), f"{kb:.1f} KB", kb < 20 if big else None)
        if w.get("W5", {}).get("terminateSession"):
            add("W5 events lost with subscribers attached = 0", str(w["W5"]["terminateSession"]["lost"]),
                w["W5"]["terminateSession"]["lost"] == 0)
        for name, count in w.get("SQL", {}).items():
            if isinstance(count, dict) and "constant" in count:
                add(f"SQL statements constant: {name}", f"{count['small']} vs {count['large']}", count["constant"])


# ---------------------------------------------------------------- the table

def _fmt(s: dict | None, unit: str = "", digits: int = 0) -> str:
    if not s or s.get("median") is None:
        return "—"
    m, lo, hi = s["median"], s["min"], s["max"]
    if len(s.get("runs", [])) <= 1:
        return f"{m:,.{digits}f}{unit}"
    return f"{m:,.{digits}f}{unit} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def table(results: dict) -> str:
    w = results["workloads"]
    meta = results["meta"]
    lines = [
        f"## kabinet bench — {meta['date']}, {meta['machine']} ({meta['cpus']} cores, {meta['memory_gib']} GiB), "
        f"commit {meta['commit']}",
        "",
        f"Medians of {meta['runs']} runs of {meta['duration_s']} s (min–max in brackets); load: {meta['load_driver']}; "
        f"concurrency {meta['concurrency']}.",
        "",
        "| workload | figure | kabinet | PostGraphile | kabinet ÷ PostGraphile |",
        "|---|---|---|---|---|",
    ]
    for name, title in (("W1", "W1 50 orgs → 20 products → contract, 10 documents"), ("W2", "W2 one organization's dashboard")):
        r = w.get(name)
        if not r or "kabinet" not in r or "rps" not in r["kabinet"]:
            continue
        k, p = r["kabinet"], r.get("postgraphile", {})
        lines.append(f"| {title} | req/s | {_fmt(k['rps'])} | {_fmt(p.get('rps'))} | "
                     f"{r['ratio_rps']:.2f}× |" if "ratio_rps" in r else f"| {title} | req/s | {_fmt(k['rps'])} | — | — |")
        lines.append(f"| | p50 ms | {_fmt(k['p50_ms'], '', 1)} | {_fmt(p.get('p50_ms'), '', 1)} | |")
        lines.append(f"| | p99 ms | {_fmt(k['p99_ms'], '', 1)} | {_fmt(p.get('p99_ms'), '', 1)} | "
                     + (f"{r['ratio_p99']:.2f}× |" if "ratio_p99" in r else "|"))
        lines.append(f"| | response bytes | {k['response_bytes']:,} | "
                     + (f"{p['response_bytes']:,}" if p.get("response_bytes") else "—") + " | |")
    r = w.get("W3")
    if r and "first_pages_ms" in r:
        n = r["pages_measured_each_end"]
        lines.append(f"| W3 ledger of {r['rows']:,} rows, {r['pages']} pages of 100 | ms per page, first {n} | "
                     f"{_fmt(r['first_pages_ms'], '', 1)} | | |")
        lines.append(f"| | ms per page, last {n} | {_fmt(r['last_pages_ms'], '', 1)} | | |")
        lines.append(f"| | last ÷ first | {_fmt(r['ratio_last_first'], '×', 2)} | | |")
    r = w.get("W4")
    if r:
        for n, level in r.get("levels", {}).items():
            if "error" in level:
                lines.append(f"| W4 {int(n):,} `sessions` subscribers | error | {level['error'][:100]} | | |")
                continue
            lines.append(f"| W4 {int(n):,} `sessions` subscribers, {r['changes_per_run']} changes | "
                         f"commit → last subscriber p50 / p99 ms | {_fmt(level['last_subscriber_p50_ms'])} / "
                         f"{_fmt(level['last_subscriber_p99_ms'])} | | |")
            lines.append(f"| | commit → any subscriber p50 / p99 ms | {_fmt(level['all_deliveries_p50_ms'])} / "
                         f"{_fmt(level['all_deliveries_p99_ms'])} | | |")
            lines.append(f"| | messages lost (duplicates) | {level['lost']} ({level['duplicates']}) | | |")
            lines.append(f"| | server RSS per idle subscriber | {level['rss_per_idle_subscriber_kb']:.1f} KB "
                         f"({level['rss_before_kb'] / 1024:.0f} → {level['rss_idle_kb'] / 1024:.0f} MiB) | | |")
            lines.append(f"| | time to connect and subscribe all | {level['connect_s']:.1f} s | | |")
    r = w.get("W5")
    if r and "terminateSession" in r:
        lines.append(f"| W5 writes, {r['subscribers']} `sessionEvents` subscribers | terminateSession per s (p99 ms) | "
                     f"{_fmt(r['terminateSession']['per_s'])} ({_fmt(r['terminateSession']['p99_ms'])}) | | |")
        lines.append(f"| | events lost | {r['terminateSession']['lost']} | | |")
        lines.append(f"| | scheduleUpdate per s (p99 ms) | {_fmt(r['scheduleUpdate']['per_s'])} "
                     f"({_fmt(r['scheduleUpdate']['p99_ms'])}) | | |")
    sql = w.get("SQL")
    if sql and not sql.get("error"):
        lines += ["", "| SQL statements per request | small data | large data | constant |", "|---|---|---|---|"]
        for name, c in sql.items():
            if isinstance(c, dict) and "small" in c:
                lines.append(f"| {name} | {c['small']} ({c['small_is']}) | {c['large']} ({c['large_is']}) | "
                             f"{'yes' if c['constant'] else '**no**'} |")
    if results["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for t in results["targets"]:
            met = "—" if t["met"] is None else ("yes" if t["met"] else "**no**")
            lines.append(f"| {t['target']} | {t['value']} | {met} |")
    if results["problems"]:
        lines += ["", "Problems:"] + [f"- {p}" for p in results["problems"]]
    return "\n".join(lines)


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


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny data, one short run each, no PostGraphile, no Node")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS), help="comma-separated, e.g. W1,W2,SQL")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; smoke 1)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load run (default 10; smoke 2)")
    parser.add_argument("--concurrency", type=int, default=10, help="connections of the HTTP load (default 10)")
    parser.add_argument("--subscribers", default="1000,5000", help="W4 subscriber counts (default 1000,5000)")
    parser.add_argument("--changes", type=int, default=20, help="W4 session changes per run (default 20)")
    parser.add_argument("--change-interval", type=float, default=1.0, help="W4 seconds between changes (default 1)")
    parser.add_argument("--client-processes", type=int, default=0, help="W4 subscriber processes (default 1 per 2,500, ≤ 4)")
    parser.add_argument("--w5-subscribers", type=int, default=100, help="W5 sessionEvents subscribers (default 100)")
    parser.add_argument("--no-deflate", action="store_true", help="W4/W5 clients do not offer permessage-deflate")
    parser.add_argument("--no-node", action="store_true", help="no npm/Node: Python load driver, no PostGraphile")
    parser.add_argument("--no-postgraphile", action="store_true", help="autocannon, but no PostGraphile comparison")
    parser.add_argument("--machine", default=os.environ.get("BENCH_MACHINE", "python-svc"), help="label for the results")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<date>.json)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.smoke else 3)
    args.duration = args.duration or (2.0 if args.smoke else 10.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    infra.raise_fd_limit()
    procs = infra.Processes()
    state: dict = {}

    def terminate(signum, frame):  # noqa: ARG001 — SIGTERM ends the bench like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
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
