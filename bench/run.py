"""`make bench` — kabinet measured against PostGraphile on one machine, in one command.

Creates a PostgreSQL database (kabinet_bench_<random>), migrates it with `kabinet migrate`, seeds a
scaled data set with the project's own code, starts `kabinet serve` as production does (one
process, PostgreSQL, Redis broker, no in-process workers) and PostGraphile 5 on the same database,
drives them with autocannon and WebSocket clients, prints a markdown table on stdout, writes JSON
to bench/results/, and stops everything it started (also on Ctrl-C). Progress goes to stderr.

Workloads (bench/README.md says more):
  W1 many organizations  W2 one dashboard  W3 deep ledger history
  W4 fan-out of `sessions` to 1,000 and 5,000 subscribers on one token, and to 1,000 distinct ADMINs
     and 1,000 distinct USERs (each their own token)  W5 writes with subscribers attached
  SQL statements per request at two data sizes, for every workload.

  --smoke: tiny data, one short run each, no PostGraphile, a Python load driver (no Node needed);
  fails (exit 1) when a workload is broken: GraphQL errors, lost messages, a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson

from bench import data, infra
from bench import queries as Q
from bench.changes import SessionChanges
from bench.http_load import LoadSpec, autocannon_available, percentile, python_load, run_autocannon
from foundation.ids import pk_of

ALL_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "SQL")
# W4's subscribers: all on the owner's one token; distinct ADMINs (equals: they may share one
# result); distinct USERs (each sees only their own sessions: each change is one person's)
W4_VARIANTS = {"one": "one token", "admins": "distinct ADMINs", "users": "distinct USERs"}


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
        self.w4_levels = [20] if args.smoke else [int(x) for x in args.subscribers.split(",")]
        self.w4_variants = [v.strip() for v in args.w4_variants.split(",") if v.strip()]
        if args.w4_distinct is None:
            self.w4_distinct = self.w4_levels[:1]
        else:
            self.w4_distinct = [int(x) for x in args.w4_distinct.split(",") if x.strip() not in ("", "0", "none")]
        if not {"admins", "users"} & set(self.w4_variants) or "W4" not in args.workloads.upper():
            self.w4_distinct = []
        # as many ADMINs and USERs as the largest distinct level needs
        self.scale = dataclasses.replace(self.scale, w4_people=max(self.w4_distinct, default=0))
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

    def note(self, text: str) -> None:
        log(f"note: {text}")
        self.results["notes"].append(text)

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
                self.pg_base = None
                if with_postgraphile and ("W1" in workloads or "W2" in workloads):
                    self.pg_proc, self.pg_base = infra.start_postgraphile(self.procs, url, self.log_dir)
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
        from events.broker import HEALTH_CHANNEL

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
        """Load each server in turn with one request, runs interleaved: kabinet as it runs (identical
        requests: its response cache answers), kabinet executing every request, and PostGraphile."""
        args = self.args
        query, variables, token = kabinet
        headers = {"authorization": f"Bearer {token}"}
        servers: dict[str, tuple[LoadSpec, int]] = {}
        result: dict = {}
        for server, base, pid in (("kabinet", self.base, self.kabinet.pid),
                                  ("kabinet_uncached", self.base_uncached, self.kabinet_uncached.pid)):
            _, size = await self.gql(base, query, variables, token)
            result[server] = {"response_bytes": size}
            servers[server] = (LoadSpec(f"{base}/graphql", [self.body(query, variables)], args.concurrency, args.duration, headers), pid)
        if postgraphile and self.pg_base:
            p_query, p_variables = postgraphile
            _, size = await self.gql(self.pg_base, p_query, p_variables)
            result["postgraphile"] = {"response_bytes": size}
            servers["postgraphile"] = (LoadSpec(f"{self.pg_base}/graphql", [self.body(p_query, p_variables)], args.concurrency,
                                                args.duration), self.pg_proc.pid)
        log("  response bytes: " + ", ".join(f"{server} {r['response_bytes']:,}" for server, r in result.items()))
        warm = 0.5 if self.smoke else min(3.0, args.duration / 3)
        for spec, _ in servers.values():
            await self.load(LoadSpec(spec.url, spec.bodies, args.concurrency, warm, spec.headers))
        runs: dict[str, list[dict]] = {server: [] for server in servers}

        async def measured(spec: LoadSpec, pid: int) -> dict:
            cpu = infra.cpu_seconds(pid)
            figures = await self.load(spec)
            figures["server_cpu_ms_per_request"] = (infra.cpu_seconds(pid) - cpu) * 1000 / max(1, figures["requests"])
            return figures

        for run in range(args.runs):  # interleaved, so that a noisy minute hits each alike
            for server, (spec, pid) in servers.items():
                runs[server].append(await measured(spec, pid))
            log(f"  run {run + 1}: " + "; ".join(
                f"{server} {r[-1]['rps']:.0f} req/s p99 {r[-1]['latency_ms']['p99']:.1f} ms" for server, r in runs.items()))
        for server, server_runs in runs.items():
            result[server].update({
                "rps": spread([r["rps"] for r in server_runs]),
                "p50_ms": spread([r["latency_ms"]["p50"] for r in server_runs]),
                "p99_ms": spread([r["latency_ms"]["p99"] for r in server_runs]),
                "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"] for r in server_runs]),
                "non2xx": sum(r["non2xx"] for r in server_runs), "errors": sum(r["errors"] for r in server_runs),
                "driver": server_runs[0]["driver"], "raw": server_runs,
            })
            if result[server]["non2xx"] or result[server]["errors"]:
                self.problem(f"{name} {server}: {result[server]['non2xx']} non-2xx answers, {result[server]['errors']} errors")
        if "postgraphile" in runs:
            pg = result["postgraphile"]
            for server, suffix in (("kabinet", ""), ("kabinet_uncached", "_uncached")):
                result[f"ratio_rps{suffix}"] = result[server]["rps"]["median"] / pg["rps"]["median"]
                result[f"ratio_p99{suffix}"] = result[server]["p99_ms"]["median"] / pg["p99_ms"]["median"]
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
        token = await self.login(self.base_uncached, ds.w3.email)
        org = ds.w3.organization_id
        headers = {"authorization": f"Bearer {token}"}
        # the server without response cache: pages are read again and again, W3 measures the SQL
        async with httpx.AsyncClient(base_url=self.base_uncached, headers=headers, timeout=60) as client:

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

    async def start_subscribers(self, base: str, token: str | None, query: str, variables: dict, field: str, count: int,
                                processes: int, *, snapshot: bool, record_times: bool, deflate: bool | None = None,
                                quiet: bool = False, tokens: list[str] | None = None) -> list:
        """`count` subscribers in `processes` client processes: all on `token`, or subscriber i on `tokens[i]`."""
        ws_url = base.replace("http://", "ws://") + "/graphql"
        per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        clients = []
        for i, n in enumerate(per):
            first = sum(per[:i])
            spec = {"url": ws_url, "token": token, "query": query, "variables": variables, "field": field, "count": n,
                    "snapshot": snapshot, "record_times": record_times,
                    "compression": (not self.args.no_deflate) if deflate is None else deflate,
                    "connect_concurrency": 50}
            argument = json.dumps(spec)
            if tokens is not None:  # thousands of tokens do not fit one argument (128 KiB): a file
                spec["tokens"] = tokens[first:first + n]
                spec_file = self.log_dir / f"wsclients-{i}.json"
                spec_file.write_text(json.dumps(spec))
                argument = f"@{spec_file}"
            with open(self.log_dir / f"wsclients-{i}.log", "wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.wsclients", argument, cwd=infra.ROOT, start_new_session=True,
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
        if not quiet:
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

    async def collect(self, clients, expected: dict[str, int], *, stall_s: float, cap_s: float, record_times: bool,
                      prefix: str | None = None, total: int | None = None):
        """Poll the subscriber processes until every key has arrived `expected[key]` times (or, with
        `prefix`, until `total` messages whose key starts with it have arrived); give up when nothing
        new has arrived for `stall_s` seconds, or after `cap_s`. (counts, times, errors, error count)."""
        counts: dict[str, int] = {k: 0 for k in expected}
        times: dict[str, list[float]] = {k: [] for k in expected}
        errors: list[str] = []
        error_count = 0
        started = last_progress = time.monotonic()

        def done() -> bool:
            if prefix is not None:
                return sum(n for k, n in counts.items() if k.startswith(prefix)) >= (total or 0)
            return all(counts.get(k, 0) >= n for k, n in expected.items())

        while True:
            progress = False
            for report in await self.report(clients):
                for key, n in report["counts"].items():
                    counts[key] = counts.get(key, 0) + n
                    progress = progress or n > 0
                if record_times:
                    for key, ts in report["times"].items():
                        times.setdefault(key, []).extend(ts)
                errors += report["errors"]
                error_count += report["error_count"]
            now = time.monotonic()
            if progress:
                last_progress = now
            if done() or now - last_progress > stall_s or now - started > cap_s:
                break
            await asyncio.sleep(0.25)
        return counts, times, errors, error_count

    # ------------------------------------------------------------ W4

    async def w4(self) -> None:
        """Fan-out: N subscribers of one organization's `sessions`, then session changes one at a time
        (each once the previous one reached every subscriber, at most one per `--change-interval`).

        The subscribers are all on the owner's one token, or (at the `--w4-distinct` counts) each
        their own person: distinct ADMINs, who see the same and may share one worked-out result per
        change, and distinct USERs, who see only their own sessions: each change is then one USER's
        session and must reach that USER alone (any other delivery is counted as a leak)."""
        ds = self.dataset
        args = self.args
        changes_n = 3 if self.smoke else args.changes
        interval = 0.2 if self.smoke else args.change_interval
        budget = 30 if self.smoke else args.w4_budget
        org_pk = pk_of(ds.w4.organization_id, "Organization")
        people = ds.w4_people
        changes = {"one": SessionChanges(self.broadcast, org_pk), "admins": SessionChanges(self.broadcast, org_pk),
                   "users": SessionChanges(self.broadcast, org_pk, list(zip(people.users, people.user_databases)))}
        variables = {"org": ds.w4.organization_id}
        out: dict = {"changes_per_run": changes_n, "min_change_interval_s": interval, "budget_s": budget,
                     "deflate": not args.no_deflate, "variants": W4_VARIANTS, "levels": {}}
        first = True
        for n in sorted(set(self.w4_levels) | set(self.w4_distinct)):
            for variant in self.w4_variants:
                if (variant == "one" and n not in self.w4_levels) or (variant != "one" and n not in self.w4_distinct):
                    continue
                key = str(n) if variant == "one" else f"{n} {variant}"
                log(f"  -- {n} subscribers, {W4_VARIANTS[variant]} (a fresh kabinet process)")
                try:
                    out["levels"][key] = await self._w4_level(n, variant, changes[variant], variables, changes_n, interval,
                                                              budget)
                except BenchError as error:
                    self.problem(f"W4 {n} subscribers, {W4_VARIANTS[variant]}: {error}")
                    out["levels"][key] = {"subscribers": n, "variant": variant, "error": str(error)}
                if first and variant == "one" and not self.smoke and not args.no_deflate:
                    first = False
                    # the same idle subscribers without permessage-deflate: how much of the memory is zlib's
                    try:
                        out["levels"][key]["rss_per_idle_subscriber_kb_without_deflate"] = await self._w4_idle_rss(n, variables)
                    except BenchError as error:
                        self.problem(f"W4 {n} subscribers without deflate: {error}")
        self.results["workloads"]["W4"] = out

    def _w4_tokens(self, variant: str, n: int) -> list[str] | None:
        """Each distinct subscriber's own access token, issued here with the server's secret (as a
        login would: a signed JWT; thousands of logins would measure the password hash instead)."""
        if variant == "one":
            return None
        from resolvers.identity.tokens import issue_access_token

        people = self.dataset.w4_people
        pks = (people.admins if variant == "admins" else people.users)[:n]
        if len(pks) < n:
            raise BenchError(f"only {len(pks)} {variant} in the data set for {n} subscribers")
        settings = self.settings.model_copy(update={"access_token_minutes": 240})
        return [issue_access_token(settings, pk, uuid.uuid4()).token for pk in pks]

    async def _fresh_server_with_warm_hub(self, variables: dict, changes: SessionChanges | None = None) -> tuple:
        """A new kabinet process, warmed up by a few subscribers and, with `changes`, by changes until
        one arrives within half a second (right after a start, notices may wait for the hub's poll)."""
        server, base = infra.start_kabinet(self.procs, self.env, self.log_dir)
        started = time.monotonic()
        token = await self.login(base, self.dataset.w4.email)
        warm = await self.start_subscribers(base, token, Q.W4_SUBSCRIPTION, variables, "sessions", 10, 1,
                                            snapshot=True, record_times=True, quiet=True)
        warm_up: list[tuple[float, float]] = []  # (seconds since the start, latency ms)
        try:
            for _ in range(20 if changes else 0):
                key, committed = await changes.next()
                _, times, *_ = await self.collect(warm, {key: 10}, stall_s=5, cap_s=10, record_times=True)
                latency = (max(times[key]) - committed) * 1000 if times.get(key) else float("inf")
                warm_up.append((round(committed - time.time() + time.monotonic() - started, 1), round(latency, 1)))
                if latency < 500:
                    break
                await asyncio.sleep(0.2)
        finally:
            await self.stop_subscribers(warm)
        if len(warm_up) > 1:
            self.note(f"W4: a fresh kabinet process delivered its first changes late (seconds after start, ms): {warm_up}")
        await asyncio.sleep(0.5 if self.smoke else 2)
        return server, base, token

    async def _w4_idle_rss(self, n: int, variables: dict) -> float:
        server, base, token = await self._fresh_server_with_warm_hub(variables)
        clients: list = []
        try:
            before = infra.rss_kb(server.pid)
            processes = self.args.client_processes or max(1, min(4, math.ceil(n / 2500)))
            clients = await self.start_subscribers(base, token, Q.W4_SUBSCRIPTION, variables, "sessions", n, processes,
                                                   snapshot=True, record_times=False, deflate=False)
            await asyncio.sleep(3)
            per = (infra.rss_kb(server.pid) - before) / n
            log(f"  without permessage-deflate: {per:.1f} KB per idle subscriber")
            return per
        finally:
            await self.stop_subscribers(clients)
            self.procs.stop(server)

    async def _w4_level(self, n: int, variant: str, changes: SessionChanges, variables: dict, changes_n: int,
                        interval: float, budget: float) -> dict:
        tokens = self._w4_tokens(variant, n)
        expected = 1 if variant == "users" else n  # subscribers each change must reach
        server, base, token = await self._fresh_server_with_warm_hub(variables, changes)
        clients: list = []
        received: Counter = Counter()  # every delivery of the measured changes, stragglers too
        try:
            rss_before = infra.rss_kb(server.pid)
            processes = self.args.client_processes or max(1, min(4, math.ceil(n / 2500)))
            connect_started = time.monotonic()
            cpu_before = infra.cpu_seconds(server.pid)
            clients = await self.start_subscribers(base, token, Q.W4_SUBSCRIPTION, variables, "sessions", n, processes,
                                                   snapshot=True, record_times=True, tokens=tokens)
            connect_s = time.monotonic() - connect_started
            subscribe_cpu_ms = (infra.cpu_seconds(server.pid) - cpu_before) * 1000 / n
            await asyncio.sleep(0.5 if self.smoke else 3)
            rss_idle = infra.rss_kb(server.pid)
            per_connection_kb = (rss_idle - rss_before) / n
            log(f"  server RSS {rss_before / 1024:.0f} MiB → {rss_idle / 1024:.0f} MiB: {per_connection_kb:.1f} KB per idle "
                f"subscriber; {subscribe_cpu_ms:.1f} ms server CPU per subscribe")
            await self.report(clients)  # forget anything before the runs

            stall = 15 if self.smoke else 30
            per_run_lists: list[list[dict]] = []  # the changes of each run
            measuring_started = time.monotonic()
            deadline = measuring_started + budget
            slowest = 0.0  # seconds the slowest change so far took to reach everyone
            while len(per_run_lists) < self.args.runs:
                run_samples: list[dict] = []
                for i in range(changes_n):
                    made = sum(len(r) for r in per_run_lists) + len(run_samples)
                    if made >= 3 and time.monotonic() + max(interval, slowest) > deadline:
                        break  # the budget is spent: fewer changes, said in the table
                    cpu_before = infra.cpu_seconds(server.pid)
                    key, committed = await changes.next()
                    counts, times, errors, error_count = await self.collect(
                        clients, {key: expected}, stall_s=stall, cap_s=max(60.0, budget), record_times=True)
                    cpu_ms = (infra.cpu_seconds(server.pid) - cpu_before) * 1000
                    received.update(counts)
                    got = times.get(key, [])
                    sample = {
                        "key": key, "received": min(counts.get(key, 0), expected),
                        "lost": expected - min(counts.get(key, 0), expected), "errors": error_count, "error_samples": errors[:3],
                        "last_ms": (max(got) - committed) * 1000 if got else None,
                        "first_ms": (min(got) - committed) * 1000 if got else None,
                        "all_ms": [(t - committed) * 1000 for t in got], "server_cpu_ms": cpu_ms,
                    }
                    slowest = max(slowest, (sample["last_ms"] or stall * 1000) / 1000)
                    run_samples.append(sample)
                    if sample["lost"] or error_count:
                        self.problem(f"W4 {n} subscribers ({W4_VARIANTS[variant]}), change {made + 1}: {sample['lost']} lost, "
                                     f"{error_count} subscriber errors {errors[:2]}")
                    wait = interval - (time.time() - committed)
                    if wait > 0:
                        await asyncio.sleep(wait)
                if not run_samples:
                    break
                per_run_lists.append(run_samples)
                lasts = [s["last_ms"] for s in run_samples if s["last_ms"] is not None]
                log(f"  run {len(per_run_lists)}: {len(run_samples)} changes; commit → last subscriber p50 "
                    f"{percentile(lasts, 0.5):.0f} ms, p99 {percentile(lasts, 0.99):.0f} ms; lost "
                    f"{sum(s['lost'] for s in run_samples)}; server CPU {statistics.median(s['server_cpu_ms'] for s in run_samples):.0f} "
                    f"ms per change")
                if len(run_samples) < changes_n or time.monotonic() + slowest * changes_n > deadline:
                    break
            samples = [s for r in per_run_lists for s in r]
            if len(samples) < self.args.runs * changes_n and not self.smoke:
                self.note(f"W4 {n} subscribers: {len(per_run_lists)} run(s), {len(samples)} changes in all (not "
                          f"{self.args.runs} × {changes_n}): one change takes up to {slowest:.1f} s to reach everyone "
                          f"and the budget is {budget:.0f} s (--w4-budget)")
            measuring_s = time.monotonic() - measuring_started
            rss_end = infra.rss_kb(server.pid)
            await asyncio.sleep(0.5)  # a late extra delivery (a duplicate; for USERs: someone else's session) counts too
            for report in await self.report(clients):
                received.update(report["counts"])
        finally:
            await self.stop_subscribers(clients)
            self.procs.stop(server)
        for s in samples:
            s["duplicates"] = max(0, received[s["key"]] - expected)
        lasts = [s["last_ms"] for s in samples if s["last_ms"] is not None]
        alls = [t for s in samples for t in s["all_ms"]]
        cpu = [s["server_cpu_ms"] for s in samples]
        for s in samples:
            s.pop("all_ms")
        duplicates = sum(s["duplicates"] for s in samples)
        if duplicates:
            self.problem(f"W4 {n} subscribers ({W4_VARIANTS[variant]}): {duplicates} deliveries beyond the "
                         + ("owner (another USER received a session not theirs)" if variant == "users" else "one per subscriber"))
        return {
            "subscribers": n, "variant": variant, "deliveries_per_change": expected, "client_processes": processes, "connect_s": connect_s, "subscribe_server_cpu_ms": subscribe_cpu_ms,
            "rss_before_kb": rss_before, "rss_idle_kb": rss_idle, "rss_after_runs_kb": rss_end,
            "rss_per_idle_subscriber_kb": per_connection_kb, "runs": len(per_run_lists),
            "changes_per_run": max(len(r) for r in per_run_lists),
            "changes": len(samples), "measuring_s": measuring_s,
            "last_subscriber_p50_ms": spread([percentile([s["last_ms"] for s in r if s["last_ms"] is not None], 0.5) for r in per_run_lists]),
            "last_subscriber_p99_ms": spread([percentile([s["last_ms"] for s in r if s["last_ms"] is not None], 0.99) for r in per_run_lists]),
            "last_subscriber_all_changes": {"p50": percentile(lasts, 0.5), "p99": percentile(lasts, 0.99), "max": max(lasts, default=None)},
            "all_deliveries": {"p50": percentile(alls, 0.5), "p99": percentile(alls, 0.99)},
            "server_cpu_ms_per_change": statistics.median(cpu) if cpu else None,
            # /proc counts CPU in 10 ms ticks: the mean over the changes resolves what a median cannot
            "server_cpu_ms_per_change_mean": statistics.mean(cpu) if cpu else None,
            "server_cpu_ms_per_message": statistics.median(cpu) / expected if cpu else None,
            "lost": sum(s["lost"] for s in samples), "duplicates": duplicates,
            "subscriber_errors": sum(s["errors"] for s in samples), "samples": samples,
        }

    # ------------------------------------------------------------ W5

    async def w5(self) -> None:
        """Writes: terminateSession (each request ends another ACTIVE session) and scheduleUpdate
        (a new day of month each time), first with no subscriber, then with `--w5-subscribers`
        `sessionEvents` subscribers of the organization attached (every termination reaches each)."""
        from models.cloud import Session, SessionStatus

        ds = self.dataset
        args = self.args
        token = await self.login(self.base, ds.w5.email)
        org_pk = pk_of(ds.w5.organization_id, "Organization")
        subscribers = 5 if self.smoke else args.w5_subscribers
        headers = {"authorization": f"Bearer {token}"}
        ids = ds.w5_session_ids[:-10]  # the last ten are the SQL count's
        chunk = len(ids) // (2 * args.runs)
        slices = iter(ids[i * chunk:(i + 1) * chunk] for i in range(2 * args.runs))
        schedule_bodies = [self.body(Q.W5_SCHEDULE, {"db": db, "day": day}) for db in ds.w5.database_ids for day in range(1, 29)]
        random.Random(5).shuffle(schedule_bodies)
        await self.gql(self.base, Q.W5_SCHEDULE, {"db": ds.w5.database_ids[0], "day": 3}, token)
        await self.gql(self.base, Q.W5_TERMINATE, {"id": ds.w5_session_ids[-10]}, token)
        pid = self.kabinet.pid

        async def terminate(clients: list | None) -> dict:
            mine = next(slices)
            before = await Session.filter(organization_id=org_pk, status=SessionStatus.TERMINATING).count()
            cpu = infra.cpu_seconds(pid)
            result = await self.load(LoadSpec(f"{self.base}/graphql", [self.body(Q.W5_TERMINATE, {"id": i}) for i in mine],
                                              args.concurrency, args.duration, headers))
            # autocannon stops at the deadline without waiting for the requests in flight: the server
            # still finishes them, so count once the number stands still
            terminated, settle = -1, time.monotonic() + 10
            while time.monotonic() < settle:
                now = await Session.filter(organization_id=org_pk, status=SessionStatus.TERMINATING).count() - before
                if now == terminated:
                    break
                terminated = now
                await asyncio.sleep(0.5)
            run = {
                "requests_per_s": result["rps"], "terminations": terminated, "per_s": terminated / result["duration_s"],
                "exhausted": terminated >= len(mine), "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"],
                "non2xx": result["non2xx"], "errors": result["errors"],
            }
            if clients:  # every termination must reach every subscriber
                expected = terminated * subscribers
                counts, _, errors, error_count = await self.collect(
                    clients, {}, stall_s=20, cap_s=300, record_times=False, prefix="TERMINATING:", total=expected)
                mine_counts = {k: n for k, n in counts.items() if k.startswith("TERMINATING:")}
                duplicates = sum(max(0, n - subscribers) for n in mine_counts.values())
                received = sum(mine_counts.values()) - duplicates
                run.update(events_expected=expected, events_received=received, lost=expected - received,
                           duplicates=duplicates, subscriber_errors=error_count)
                if received != expected or duplicates or error_count:
                    self.problem(f"W5: {expected - received} of {expected:,} events lost, {duplicates} duplicates, "
                                 f"{error_count} subscriber errors {errors[:2]}")
            run["server_cpu_ms_per_request"] = (infra.cpu_seconds(pid) - cpu) * 1000 / max(1, result["requests"])
            if run["exhausted"]:
                self.note(f"W5: all {len(mine)} sessions were terminated before the time was up: the rate is a lower bound")
            if run["non2xx"] or run["errors"]:
                self.problem(f"W5 terminateSession: {run['non2xx']} non-2xx, {run['errors']} errors")
            return run

        async def schedule() -> dict:
            cpu = infra.cpu_seconds(pid)
            result = await self.load(LoadSpec(f"{self.base}/graphql", schedule_bodies, args.concurrency, args.duration, headers))
            return {"per_s": result["rps"], "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"],
                    "non2xx": result["non2xx"], "errors": result["errors"],
                    "server_cpu_ms_per_request": (infra.cpu_seconds(pid) - cpu) * 1000 / max(1, result["requests"])}

        def summary(runs: list[dict]) -> dict:
            return {"per_s": spread([r["per_s"] for r in runs]), "p99_ms": spread([r["p99_ms"] for r in runs]),
                    "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"] for r in runs]), "runs": runs}

        out: dict = {"subscribers": subscribers, "concurrency": args.concurrency}
        bare_t, bare_s = [], []
        for run in range(args.runs):
            bare_t.append(await terminate(None))
            bare_s.append(await schedule())
            log(f"  run {run + 1}, no subscribers: terminateSession {bare_t[-1]['per_s']:.0f}/s (p99 {bare_t[-1]['p99_ms']:.0f} ms), "
                f"scheduleUpdate {bare_s[-1]['per_s']:.0f}/s (p99 {bare_s[-1]['p99_ms']:.0f} ms)")
        out["terminateSession_without_subscribers"] = summary(bare_t)
        out["scheduleUpdate_without_subscribers"] = summary(bare_s)

        clients = await self.start_subscribers(self.base, token, Q.W5_SUBSCRIPTION, {"org": ds.w5.organization_id},
                                               "sessionEvents", subscribers, 1, snapshot=False, record_times=False)
        try:
            # probe changes until every subscriber has one: then all are live (sessionEvents sends nothing first)
            probe = SessionChanges(self.broadcast, org_pk)
            for _ in range(20):
                key, _ = await probe.next()
                counts, *_ = await self.collect(clients, {key: subscribers}, stall_s=5, cap_s=10, record_times=False)
                if counts.get(key, 0) >= subscribers:
                    break
            else:
                raise BenchError(f"only {counts.get(key, 0)} of {subscribers} subscribers got a probe event")
            if probe.open:
                key, _ = await probe.next()  # end the probe session again
                await self.collect(clients, {key: subscribers}, stall_s=5, cap_s=10, record_times=False)
            await asyncio.sleep(0.5)
            await self.report(clients)
            sub_t, sub_s = [], []
            for run in range(args.runs):
                sub_t.append(await terminate(clients))
                sub_s.append(await schedule())
                await self.report(clients)
                log(f"  run {run + 1}, {subscribers} subscribers: terminateSession {sub_t[-1]['per_s']:.0f}/s "
                    f"(p99 {sub_t[-1]['p99_ms']:.0f} ms), {sub_t[-1]['events_received']:,} events delivered, "
                    f"lost {sub_t[-1]['lost']}; scheduleUpdate {sub_s[-1]['per_s']:.0f}/s (p99 {sub_s[-1]['p99_ms']:.0f} ms)")
            out["terminateSession"] = summary(sub_t) | {"lost": sum(r["lost"] for r in sub_t)}
            out["scheduleUpdate"] = summary(sub_s)
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
            for suffix, how in (("", ""), ("_uncached", ", every request executed")):
                if f"ratio_rps{suffix}" in w.get(name, {}):
                    ratio = w[name][f"ratio_rps{suffix}"]
                    add(f"{name} throughput at c={w[name]['concurrency']} ≥ 0.5× PostGraphile{how}", f"{ratio:.2f}×", ratio >= 0.5)
        for server, how in (("kabinet", ""), ("kabinet_uncached", ", every request executed")):
            if w.get("W2", {}).get(server, {}).get("p99_ms"):
                p99 = w["W2"][server]["p99_ms"]["median"]
                add(f"W2 p99 < 50 ms at c={w['W2']['concurrency']}{how}", f"{p99:.1f} ms", p99 < 50)
        if "ratio_last_first" in w.get("W3", {}):
            ratio = w["W3"]["ratio_last_first"]["median"]
            add("W3 last pages within ±20% of the first", f"{ratio:.2f}×", 0.8 <= ratio <= 1.2)
        for level in w.get("W4", {}).get("levels", {}).values():
            n = level["subscribers"]
            name = f"W4 {n} subscribers" + ("" if level.get("variant", "one") == "one" else f", {W4_VARIANTS[level['variant']]}")
            if "error" in level:
                add(name, level["error"][:80], False)
                continue
            p99 = level["last_subscriber_p99_ms"]["median"]
            big = int(n) >= 5000
            add(f"{name}: p99 commit→last subscriber" + (" < 1 s" if big else ""), f"{p99:.0f} ms", p99 < 1000 if big else None)
            add(f"{name}: messages lost = 0", str(level["lost"]), level["lost"] == 0)
            if level.get("variant") == "users":
                add(f"{name}: sessions delivered to another USER = 0", str(level["duplicates"]), level["duplicates"] == 0)
            kb = level["rss_per_idle_subscriber_kb"]
            add(f"{name}: RSS per idle connection" + (" < 20 KB" if big else ""), f"{kb:.1f} KB", kb < 20 if big else None)
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
        "| workload | figure | kabinet | kabinet, every request executed | PostGraphile | kabinet ÷ PostGraphile (executed ÷ PostGraphile) |",
        "|---|---|---|---|---|---|",
    ]
    for name, title in (("W1", "W1 50 orgs → 20 products → contract, 10 documents"), ("W2", "W2 one organization's dashboard")):
        r = w.get(name)
        if not r or "kabinet" not in r or "rps" not in r["kabinet"]:
            continue
        k, u, p = r["kabinet"], r.get("kabinet_uncached", {}), r.get("postgraphile", {})

        def ratio(key: str) -> str:
            return f"{r[key]:.2f}× ({r[key + '_uncached']:.2f}×)" if key in r else "—"

        def row(label: str, key: str, digits: int, last: str = "") -> str:
            return (f"| | {label} | {_fmt(k.get(key), '', digits)} | {_fmt(u.get(key), '', digits)} | "
                    f"{_fmt(p.get(key), '', digits)} | {last} |")

        lines.append(row("req/s", "rps", 0, ratio("ratio_rps")).replace("| |", f"| {title} |", 1))
        lines.append(row("p50 ms", "p50_ms", 1))
        lines.append(row("p99 ms", "p99_ms", 1, ratio("ratio_p99")))
        lines.append(row("server CPU ms per request", "server_cpu_ms_per_request", 1))
        sizes = [f"{x['response_bytes']:,}" if x.get("response_bytes") else "—" for x in (k, u, p)]
        lines.append(f"| | response bytes | {' | '.join(sizes)} | |")
    lines += [
        "",
        "| workload | figure | kabinet | | |",
        "|---|---|---|---|---|",
    ]
    r = w.get("W3")
    if r and "first_pages_ms" in r:
        n = r["pages_measured_each_end"]
        lines.append(f"| W3 ledger of {r['rows']:,} rows, {r['pages']} pages of 100 | ms per page, first {n} | "
                     f"{_fmt(r['first_pages_ms'], '', 1)} | | |")
        lines.append(f"| | ms per page, last {n} | {_fmt(r['last_pages_ms'], '', 1)} | | |")
        lines.append(f"| | last ÷ first | {_fmt(r['ratio_last_first'], '×', 2)} | | |")
    r = w.get("W4")
    if r:
        for level in r.get("levels", {}).values():
            n, variant = level["subscribers"], level.get("variant", "one")
            who = {"one": "on one token", "admins": "distinct ADMINs", "users": "distinct USERs"}[variant]
            if "error" in level:
                lines.append(f"| W4 {int(n):,} `sessions` subscribers, {who} | error | {level['error'][:100]} | | |")
                continue
            reach = " (each change is one USER's: reaches 1)" if variant == "users" else ""
            lines.append(f"| W4 {int(n):,} `sessions` subscribers, {who}{reach}, {level['changes']} changes in "
                         f"{level['runs']} run(s) | commit → last subscriber p50 / p99 ms | "
                         f"{_fmt(level['last_subscriber_p50_ms'])} / {_fmt(level['last_subscriber_p99_ms'])} | | |")
            lines.append(f"| | commit → each subscriber p50 / p99 ms | {level['all_deliveries']['p50']:,.0f} / "
                         f"{level['all_deliveries']['p99']:,.0f} | | |")
            extra = "delivered to another USER" if variant == "users" else "duplicates"
            lines.append(f"| | messages lost ({extra}) | {level['lost']} ({level['duplicates']}) | | |")
            mean = level.get("server_cpu_ms_per_change_mean")
            lines.append(f"| | server CPU per change; per delivered message | {level['server_cpu_ms_per_change']:,.0f} ms"
                         + (f" (mean {mean:,.1f})" if mean is not None else "")
                         + f"; {level['server_cpu_ms_per_message']:.2f} ms | | |")
            extra = level.get("rss_per_idle_subscriber_kb_without_deflate")
            lines.append(f"| | server RSS per idle subscriber | {level['rss_per_idle_subscriber_kb']:.1f} KB "
                         f"({level['rss_before_kb'] / 1024:.0f} → {level['rss_idle_kb'] / 1024:.0f} MiB)"
                         + (f"; {extra:.1f} KB without permessage-deflate" if extra is not None else "") + " | | |")
            lines.append(f"| | connect + subscribe all; server CPU per subscribe | {level['connect_s']:.1f} s; "
                         f"{level['subscribe_server_cpu_ms']:.1f} ms | | |")
    r = w.get("W5")

    def writes(label: str, figures: dict) -> str:
        return (f"| | {label} per s / p99 ms / server CPU ms per request | {_fmt(figures['per_s'])} / "
                f"{figures['p99_ms']['median']:,.0f} / {figures['server_cpu_ms_per_request']['median']:.1f} | | |")

    if r and "terminateSession_without_subscribers" in r:
        lines.append("| W5 writes, no subscribers | | | | |")
        lines.append(writes("terminateSession", r["terminateSession_without_subscribers"]))
        lines.append(writes("scheduleUpdate", r["scheduleUpdate_without_subscribers"]))
    if r and "terminateSession" in r:
        lines.append(f"| W5 writes, {r['subscribers']} `sessionEvents` subscribers attached | | | | |")
        lines.append(writes("terminateSession", r["terminateSession"]))
        lines.append(f"| | events lost (each termination × each subscriber) | {r['terminateSession']['lost']} | | |")
        lines.append(writes("scheduleUpdate", r["scheduleUpdate"]))
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
    if results.get("notes"):
        lines += ["", "Notes:"] + [f"- {p}" for p in results["notes"]]
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
    parser.add_argument("--w4-distinct", default=None,
                        help="W4 subscriber counts at which the subscribers are also distinct people: ADMINs, then USERs, "
                             "each on their own token (default: the first of --subscribers; smoke 20; 0 for none)")
    parser.add_argument("--w4-variants", default="one,admins,users",
                        help="W4 variants to run: one (token), admins, users (default all three)")
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
    parser.add_argument("--machine", default=os.environ.get("BENCH_MACHINE", "python-svc"), help="label for the results")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/<date>.json)")
    args = parser.parse_args(argv)
    unknown = {v.strip() for v in args.w4_variants.split(",")} - set(W4_VARIANTS) - {""}
    if unknown:
        parser.error(f"--w4-variants: unknown {', '.join(sorted(unknown))} (one of {', '.join(W4_VARIANTS)})")
    args.runs = args.runs or (1 if args.smoke else 3)
    args.duration = args.duration or (2.0 if args.smoke else 10.0)
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
