"""W5 writes: terminateSession and scheduleUpdate under load, first with no subscriber, then with
`sessionEvents` subscribers attached, every termination counted in the database and at each of them."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from bench import queries as Q
from bench.changes import SessionChanges
from bench.common import BenchError, ServerCpu, bearer, log, spread
from bench.http_load import LoadSpec
from bench.subscribers import collect, reports, start_subscribers, stop_subscribers
from foundation.ids import pk_of

if TYPE_CHECKING:
    from bench.harness import Bench


async def run(bench: Bench) -> None:
    """Writes: terminateSession (each request ends another ACTIVE session) and scheduleUpdate
    (a new day of month each time), first with no subscriber, then with `--w5-subscribers`
    `sessionEvents` subscribers of the organization attached (every termination reaches each)."""
    from models.cloud import Session, SessionStatus

    ds = bench.dataset
    args = bench.args
    token = await bench.login(bench.base, ds.w5.email)
    org_pk = pk_of(ds.w5.organization_id, "Organization")
    subscribers = 5 if bench.smoke else args.w5_subscribers
    headers = bearer(token)
    ids = ds.w5_session_ids[:-10]  # the last ten are the SQL count's
    chunk = len(ids) // (2 * args.runs)
    slices = iter(ids[i * chunk:(i + 1) * chunk] for i in range(2 * args.runs))
    schedule_bodies = [bench.body(Q.W5_SCHEDULE, {"db": db, "day": day}) for db in ds.w5.database_ids for day in range(1, 29)]
    random.Random(5).shuffle(schedule_bodies)
    await bench.gql(bench.base, Q.W5_SCHEDULE, {"db": ds.w5.database_ids[0], "day": 3}, token)
    await bench.gql(bench.base, Q.W5_TERMINATE, {"id": ds.w5_session_ids[-10]}, token)
    pid = bench.kabinet.pid

    async def terminate(clients: list | None) -> dict:
        mine = next(slices)
        before = await Session.filter(organization_id=org_pk, status=SessionStatus.TERMINATING).count()
        cpu = ServerCpu(pid)  # the events' delivery included
        result = await bench.load(LoadSpec(f"{bench.base}/graphql", [bench.body(Q.W5_TERMINATE, {"id": i}) for i in mine],
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
            counts, _, errors, error_count = await collect(
                clients, {}, stall_s=20, cap_s=300, record_times=False, prefix="TERMINATING:", total=expected)
            mine_counts = {k: n for k, n in counts.items() if k.startswith("TERMINATING:")}
            duplicates = sum(max(0, n - subscribers) for n in mine_counts.values())
            received = sum(mine_counts.values()) - duplicates
            run.update(events_expected=expected, events_received=received, lost=expected - received,
                       duplicates=duplicates, subscriber_errors=error_count)
            if received != expected or duplicates or error_count:
                bench.problem(f"W5: {expected - received} of {expected:,} events lost, {duplicates} duplicates, "
                              f"{error_count} subscriber errors {errors[:2]}")
        run["server_cpu_ms_per_request"] = cpu.ms_per(result["requests"])
        if run["exhausted"]:
            bench.note(f"W5: all {len(mine)} sessions were terminated before the time was up: the rate is a lower bound")
        if run["non2xx"] or run["errors"]:
            bench.problem(f"W5 terminateSession: {run['non2xx']} non-2xx, {run['errors']} errors")
        return run

    async def schedule() -> dict:
        result = await bench.measured_load(
            LoadSpec(f"{bench.base}/graphql", schedule_bodies, args.concurrency, args.duration, headers), pid)
        return {"per_s": result["rps"], "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"],
                "non2xx": result["non2xx"], "errors": result["errors"],
                "server_cpu_ms_per_request": result["server_cpu_ms_per_request"]}

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

    clients = await start_subscribers(bench, bench.base, token, Q.W5_SUBSCRIPTION, {"org": ds.w5.organization_id},
                                      "sessionEvents", subscribers, 1, snapshot=False, record_times=False)
    try:
        # probe changes until every subscriber has one: then all are live (sessionEvents sends nothing first)
        probe = SessionChanges(bench.broadcast, org_pk)
        for _ in range(20):
            key, _ = await probe.next()
            counts, *_ = await collect(clients, {key: subscribers}, stall_s=5, cap_s=10, record_times=False)
            if counts.get(key, 0) >= subscribers:
                break
        else:
            raise BenchError(f"only {counts.get(key, 0)} of {subscribers} subscribers got a probe event")
        if probe.open:
            key, _ = await probe.next()  # end the probe session again
            await collect(clients, {key: subscribers}, stall_s=5, cap_s=10, record_times=False)
        await asyncio.sleep(0.5)
        await reports(clients)
        sub_t, sub_s = [], []
        for run in range(args.runs):
            sub_t.append(await terminate(clients))
            sub_s.append(await schedule())
            await reports(clients)
            log(f"  run {run + 1}, {subscribers} subscribers: terminateSession {sub_t[-1]['per_s']:.0f}/s "
                f"(p99 {sub_t[-1]['p99_ms']:.0f} ms), {sub_t[-1]['events_received']:,} events delivered, "
                f"lost {sub_t[-1]['lost']}; scheduleUpdate {sub_s[-1]['per_s']:.0f}/s (p99 {sub_s[-1]['p99_ms']:.0f} ms)")
        out["terminateSession"] = summary(sub_t) | {"lost": sum(r["lost"] for r in sub_t)}
        out["scheduleUpdate"] = summary(sub_s)
    finally:
        await stop_subscribers(bench, clients)
    bench.results["workloads"]["W5"] = out
