"""W4 fan-out: N WebSocket subscribers of one organization's `sessions` on a fresh kabinet process,
then session changes committed the way workers/cluster.py commits them, one at a time, each timed
from its commit to every subscriber; server memory and CPU beside."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

from bench import infra
from bench import queries as Q
from bench.changes import SessionChanges
from bench.common import BenchError, ServerCpu, log, spread
from bench.http_load import percentile
from bench.subscribers import collect, reports, start_subscribers, stop_subscribers
from foundation.ids import pk_of, to_global_id

if TYPE_CHECKING:
    from bench.harness import Bench

# W4's subscribers: all on the owner's one token; distinct ADMINs (equals: they may share one
# result); distinct USERs (each sees only their own sessions: each change is one person's); spread:
# many small organizations, each with its OWNER, ADMIN, ACCOUNTANT and two USERs subscribed
W4_VARIANTS = {"one": "one token", "admins": "distinct ADMINs", "users": "distinct USERs",
               "spread": "spread over organizations, mixed roles"}
# the people of each spread organization, in the order of its subscribers (bench/data.py)
SPREAD_SLOTS = ("owner", "admin", "accountant", "user", "user")
SPREAD_BURST = 10  # changes committed at once, each in another organization (smoke: 2)


async def run(bench: Bench) -> None:
    """Fan-out: N subscribers of one organization's `sessions`, then session changes one at a time
    (each once the previous one reached every subscriber, at most one per `--change-interval`).

    The subscribers are all on the owner's one token, or (at the `--w4-distinct` counts) each
    their own person: distinct ADMINs, who see the same and may share one worked-out result per
    change, and distinct USERs, who see only their own sessions: each change is then one USER's
    session and must reach that USER alone (any other delivery is counted as a leak)."""
    ds = bench.dataset
    args = bench.args
    changes_n = 3 if bench.smoke else args.changes
    interval = 0.2 if bench.smoke else args.change_interval
    budget = 30 if bench.smoke else args.w4_budget
    org_pk = pk_of(ds.w4.organization_id, "Organization")
    people = ds.w4_people
    changes = {"one": SessionChanges(bench.broadcast, org_pk), "admins": SessionChanges(bench.broadcast, org_pk),
               "users": SessionChanges(bench.broadcast, org_pk, list(zip(people.users, people.user_databases)))}
    variables = {"org": ds.w4.organization_id}
    out: dict = {"changes_per_run": changes_n, "min_change_interval_s": interval, "budget_s": budget,
                 "deflate": not args.no_deflate, "variants": W4_VARIANTS, "levels": {}}
    first = True
    for n in sorted(set(bench.w4_levels) | set(bench.w4_distinct)):
        for variant in bench.w4_variants:
            if variant == "spread":
                continue
            if (variant == "one" and n not in bench.w4_levels) or (variant != "one" and n not in bench.w4_distinct):
                continue
            key = str(n) if variant == "one" else f"{n} {variant}"
            log(f"  -- {n} subscribers, {W4_VARIANTS[variant]} (a fresh kabinet process)")
            try:
                out["levels"][key] = await _level(bench, n, variant, changes[variant], variables, changes_n, interval,
                                                  budget)
            except BenchError as error:
                bench.problem(f"W4 {n} subscribers, {W4_VARIANTS[variant]}: {error}")
                out["levels"][key] = {"subscribers": n, "variant": variant, "error": str(error)}
            if first and variant == "one" and not bench.smoke and not args.no_deflate:
                first = False
                # the same idle subscribers without permessage-deflate: how much of the memory is zlib's
                try:
                    out["levels"][key]["rss_per_idle_subscriber_kb_without_deflate"] = await _idle_rss(bench, n, variables)
                except BenchError as error:
                    bench.problem(f"W4 {n} subscribers without deflate: {error}")
    if "spread" in bench.w4_variants and bench.dataset.spread:
        n = len(bench.dataset.spread) * len(SPREAD_SLOTS)
        key = f"{n} spread"
        log(f"  -- {n} subscribers over {len(bench.dataset.spread):,} organizations, mixed roles (a fresh kabinet process)")
        try:
            out["levels"][key] = await _spread_level(bench, variables, changes_n, interval, budget)
        except BenchError as error:
            bench.problem(f"W4 {n} subscribers, spread: {error}")
            out["levels"][key] = {"subscribers": n, "variant": "spread", "error": str(error)}
    bench.results["workloads"]["W4"] = out


def _tokens(bench: Bench, variant: str, n: int) -> list[str] | None:
    """Each distinct subscriber's own access token, issued here with the server's secret (as a
    login would: a signed JWT; thousands of logins would measure the password hash instead)."""
    if variant == "one":
        return None
    from resolvers.identity.tokens import issue_access_token

    people = bench.dataset.w4_people
    pks = (people.admins if variant == "admins" else people.users)[:n]
    if len(pks) < n:
        raise BenchError(f"only {len(pks)} {variant} in the data set for {n} subscribers")
    settings = bench.settings.model_copy(update={"access_token_minutes": 240})
    return [issue_access_token(settings, pk, uuid.uuid4()).token for pk in pks]


async def _fresh_server_with_warm_hub(bench: Bench, variables: dict, changes: SessionChanges | None = None,
                                      workers: int = 1) -> tuple:
    """A new kabinet process, warmed up by a few subscribers and, with `changes`, by changes until
    one arrives within half a second (right after a start, notices may wait for the hub's poll)."""
    server, base = infra.start_kabinet(bench.procs, bench.env, bench.log_dir, workers=workers)
    started = time.monotonic()
    token = await bench.login(base, bench.dataset.w4.email)
    warm = await start_subscribers(bench, base, token, Q.W4_SUBSCRIPTION, variables, "sessions", 10, 1,
                                   snapshot=True, record_times=True, quiet=True)
    warm_up: list[tuple[float, float]] = []  # (seconds since the start, latency ms)
    try:
        for _ in range(20 if changes else 0):
            key, committed = await changes.next()
            _, times, *_ = await collect(warm, {key: 10}, stall_s=5, cap_s=10, record_times=True)
            latency = (max(times[key]) - committed) * 1000 if times.get(key) else float("inf")
            warm_up.append((round(committed - time.time() + time.monotonic() - started, 1), round(latency, 1)))
            if latency < 500:
                break
            await asyncio.sleep(0.2)
    finally:
        await stop_subscribers(bench, warm)
    if len(warm_up) > 1:
        bench.note(f"W4: a fresh kabinet process delivered its first changes late (seconds after start, ms): {warm_up}")
    await asyncio.sleep(0.5 if bench.smoke else 2)
    return server, base, token


def _client_processes(bench: Bench, n: int) -> int:
    """Subscriber processes for n subscribers: one per 2,500, at most 4 (or --client-processes)."""
    return bench.args.client_processes or max(1, min(4, math.ceil(n / 2500)))


async def _idle_rss(bench: Bench, n: int, variables: dict) -> float:
    """KB of server memory per idle subscriber when the clients offer no permessage-deflate."""
    server, base, token = await _fresh_server_with_warm_hub(bench, variables)
    clients: list = []
    try:
        before = infra.rss_kb(server.pid)
        clients = await start_subscribers(bench, base, token, Q.W4_SUBSCRIPTION, variables, "sessions", n,
                                          _client_processes(bench, n), snapshot=True, record_times=False, deflate=False)
        await asyncio.sleep(3)
        per = (infra.rss_kb(server.pid) - before) / n
        log(f"  without permessage-deflate: {per:.1f} KB per idle subscriber")
        return per
    finally:
        await stop_subscribers(bench, clients)
        bench.procs.stop(server)


async def _level(bench: Bench, n: int, variant: str, changes: SessionChanges, variables: dict, changes_n: int,
                 interval: float, budget: float, workers: int = 1) -> dict:
    """One subscriber count of one variant on a fresh server: memory and CPU of subscribing, then
    the runs of changes, each timed from its commit to every subscriber."""
    tokens = _tokens(bench, variant, n)
    expected = 1 if variant == "users" else n  # subscribers each change must reach
    server, base, token = await _fresh_server_with_warm_hub(bench, variables, changes, workers)
    clients: list = []
    received: Counter = Counter()  # every delivery of the measured changes, stragglers too
    try:
        rss_before = infra.rss_kb(server.pid)
        processes = _client_processes(bench, n)
        connect_started = time.monotonic()
        subscribe_cpu = ServerCpu(server.pid)
        clients = await start_subscribers(bench, base, token, Q.W4_SUBSCRIPTION, variables, "sessions", n, processes,
                                          snapshot=True, record_times=True, tokens=tokens)
        connect_s = time.monotonic() - connect_started
        subscribe_cpu_ms = subscribe_cpu.ms_per(n)
        await asyncio.sleep(0.5 if bench.smoke else 3)
        rss_idle = infra.rss_kb(server.pid)
        per_process = infra.connections_per_process(server.pid, base) if workers > 1 else None
        per_connection_kb = (rss_idle - rss_before) / n
        log(f"  server RSS {rss_before / 1024:.0f} MiB → {rss_idle / 1024:.0f} MiB: {per_connection_kb:.1f} KB per idle "
            f"subscriber; {subscribe_cpu_ms:.1f} ms server CPU per subscribe")
        await reports(clients)  # forget anything before the runs

        stall = 15 if bench.smoke else 30
        per_run_lists: list[list[dict]] = []  # the changes of each run
        measuring_started = time.monotonic()
        deadline = measuring_started + budget
        slowest = 0.0  # seconds the slowest change so far took to reach everyone
        while len(per_run_lists) < bench.args.runs:
            run_samples: list[dict] = []
            for i in range(changes_n):
                made = sum(len(r) for r in per_run_lists) + len(run_samples)
                if made >= 3 and time.monotonic() + max(interval, slowest) > deadline:
                    break  # the budget is spent: fewer changes, said in the table
                change_cpu = ServerCpu(server.pid)
                key, committed = await changes.next()
                counts, times, errors, error_count = await collect(
                    clients, {key: expected}, stall_s=stall, cap_s=max(60.0, budget), record_times=True)
                cpu_ms = change_cpu.ms()
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
                    bench.problem(f"W4 {n} subscribers ({W4_VARIANTS[variant]}), change {made + 1}: {sample['lost']} lost, "
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
        if len(samples) < bench.args.runs * changes_n and not bench.smoke:
            bench.note(f"W4 {n} subscribers: {len(per_run_lists)} run(s), {len(samples)} changes in all (not "
                       f"{bench.args.runs} × {changes_n}): one change takes up to {slowest:.1f} s to reach everyone "
                       f"and the budget is {budget:.0f} s (--w4-budget)")
        measuring_s = time.monotonic() - measuring_started
        rss_end = infra.rss_kb(server.pid)
        await asyncio.sleep(0.5)  # a late extra delivery (a duplicate; for USERs: someone else's session) counts too
        for report in await reports(clients):
            received.update(report["counts"])
    finally:
        await stop_subscribers(bench, clients)
        bench.procs.stop(server)
    for s in samples:
        s["duplicates"] = max(0, received[s["key"]] - expected)
    lasts = [s["last_ms"] for s in samples if s["last_ms"] is not None]
    alls = [t for s in samples for t in s["all_ms"]]
    cpu = [s["server_cpu_ms"] for s in samples]
    for s in samples:
        s.pop("all_ms")
    duplicates = sum(s["duplicates"] for s in samples)
    if duplicates:
        bench.problem(f"W4 {n} subscribers ({W4_VARIANTS[variant]}): {duplicates} deliveries beyond the "
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
        **({"workers": workers, "connections_per_process": sorted(per_process.values(), reverse=True)} if workers > 1 else {}),
    }


async def run_on_workers(bench: Bench, workers: int) -> None:
    """W4's largest count on one token, on a fresh `kabinet serve --workers N`: the subscribers spread
    over the processes by the kernel (they accept from one listening socket), each change reaching
    each process through the broker (Redis), none lost."""
    ds = bench.dataset
    changes_n = 3 if bench.smoke else bench.args.changes
    interval = 0.2 if bench.smoke else bench.args.change_interval
    budget = 30 if bench.smoke else bench.args.w4_budget
    n = max(bench.w4_levels)
    changes = SessionChanges(bench.broadcast, pk_of(ds.w4.organization_id, "Organization"))
    log(f"  -- {n} subscribers, one token, on `kabinet serve --workers {workers}`")
    try:
        level = await _level(bench, n, "one", changes, {"org": ds.w4.organization_id}, changes_n, interval, budget,
                             workers)
        log(f"  subscribers per process: {level.get('connections_per_process')}")
    except BenchError as error:
        bench.problem(f"W4 {n} subscribers on {workers} processes: {error}")
        level = {"subscribers": n, "variant": "one", "workers": workers, "error": str(error)}
    bench.results["workloads"]["W4_workers"] = {"workers": workers, "levels": {str(n): level}}


async def _spread_level(bench: Bench, variables: dict, steps: int, interval: float, budget: float) -> dict:
    """W4 spread: in each of many organizations its OWNER, ADMIN and two USERs follow `sessions` and
    its ACCOUNTANT (who may not see sessions) `organizationData`, each on their own token. Changes
    come `SPREAD_BURST` at a time, each in another organization: a session of one of its USERs or of
    nobody in particular. Each must reach that organization's OWNER and ADMIN, and its USER when the
    session is theirs: anyone else receiving it (another organization, the other USER, the
    ACCOUNTANT) is misdelivered, and fails the run."""
    from bench.changes import SpreadChanges
    from resolvers.identity.tokens import issue_access_token

    organizations = bench.dataset.spread
    n = len(organizations) * len(SPREAD_SLOTS)
    burst = 2 if bench.smoke else SPREAD_BURST
    settings = bench.settings.model_copy(update={"access_token_minutes": 240})
    tokens, each = [], []
    for org in organizations:
        people = [org["owner"], org["admin"], org["accountant"], *(user for user, _ in org["users"])]
        org_variables = {"org": to_global_id("Organization", org["organization"])}
        for slot, person in zip(SPREAD_SLOTS, people, strict=True):
            tokens.append(issue_access_token(settings, person, uuid.uuid4()).token)
            each.append((1 if slot == "accountant" else 0, org_variables))
    queries = [(Q.W4_SUBSCRIPTION, True), (Q.W4_ACCOUNTANT_SUBSCRIPTION, False)]

    def receivers(org_index: int, owner: uuid.UUID | None) -> set[int]:
        first = org_index * len(SPREAD_SLOTS)
        users = [user for user, _ in organizations[org_index]["users"]]
        return {first, first + 1} | ({first + 3 + users.index(owner)} if owner is not None else set())

    changes = SpreadChanges(bench.broadcast, organizations)
    server, base, _ = await _fresh_server_with_warm_hub(bench, variables, SessionChanges(bench.broadcast, pk_of(
        bench.dataset.w4.organization_id, "Organization")))
    clients: list = []
    expected_by_key: dict[str, set[int]] = {}
    who: dict[str, list[int]] = {}  # every delivery, warm-up stragglers and late ones too
    try:
        rss_before = infra.rss_kb(server.pid)
        processes = _client_processes(bench, n)
        subscribe_cpu = ServerCpu(server.pid)
        connect_started = time.monotonic()
        clients = await start_subscribers(bench, base, None, Q.W4_SUBSCRIPTION, {}, "sessions", n, processes,
                                          snapshot=True, record_times=True, tokens=tokens, each=each, queries=queries,
                                          who=True)
        connect_s = time.monotonic() - connect_started
        subscribe_cpu_ms = subscribe_cpu.ms_per(n)
        await asyncio.sleep(0.5 if bench.smoke else 3)
        rss_idle = infra.rss_kb(server.pid)
        per_connection_kb = (rss_idle - rss_before) / n
        log(f"  server RSS {rss_before / 1024:.0f} MiB → {rss_idle / 1024:.0f} MiB: {per_connection_kb:.1f} KB per idle "
            f"subscriber; {subscribe_cpu_ms:.1f} ms server CPU per subscribe")
        for report in await reports(clients):
            for key, got in report.get("who", {}).items():
                who.setdefault(key, []).extend(got)

        stall = 15 if bench.smoke else 30
        per_run: list[list[dict]] = []
        deadline = time.monotonic() + budget
        measuring_started = time.monotonic()
        slowest = 0.0
        while len(per_run) < bench.args.runs:
            samples: list[dict] = []
            for _ in range(steps):
                if samples and time.monotonic() + max(interval, slowest) > deadline:
                    break
                cpu = ServerCpu(server.pid)
                made = await asyncio.gather(*(changes.next() for _ in range(burst)))
                expected = {}
                for key, _, org_index, owner in made:
                    expected_by_key[key] = receivers(org_index, owner)
                    expected[key] = len(expected_by_key[key])
                counts, times, errors, error_count = await collect(
                    clients, expected, stall_s=stall, cap_s=max(60.0, budget), record_times=True, who=who)
                cpu_ms = cpu.ms()
                for key, committed, _, _ in made:
                    got = times.get(key, [])
                    received = min(counts.get(key, 0), expected[key])
                    samples.append({"key": key, "received": received, "lost": expected[key] - received,
                                    "errors": error_count, "error_samples": errors[:3],
                                    "last_ms": (max(got) - committed) * 1000 if got else None,
                                    "all_ms": [(t - committed) * 1000 for t in got], "server_cpu_ms": cpu_ms / burst})
                    slowest = max(slowest, (samples[-1]["last_ms"] or stall * 1000) / 1000)
                lost = sum(s["lost"] for s in samples[-burst:])
                if lost or error_count:
                    bench.problem(f"W4 spread: {lost} lost, {error_count} subscriber errors {errors[:2]}")
                wait = interval - (time.time() - min(c for _, c, _, _ in made))
                if wait > 0:
                    await asyncio.sleep(wait)
            if not samples:
                break
            per_run.append(samples)
            lasts = [s["last_ms"] for s in samples if s["last_ms"] is not None]
            log(f"  run {len(per_run)}: {len(samples)} changes in {len(samples) // burst} bursts of {burst}; commit → "
                f"last subscriber p50 {percentile(lasts, 0.5):.0f} ms, p99 {percentile(lasts, 0.99):.0f} ms; lost "
                f"{sum(s['lost'] for s in samples)}")
            if time.monotonic() + slowest * steps > deadline:
                break
        measuring_s = time.monotonic() - measuring_started
        rss_end = infra.rss_kb(server.pid)
        await asyncio.sleep(0.5)  # a late delivery to the wrong subscriber counts too
        for report in await reports(clients):
            for key, got in report.get("who", {}).items():
                who.setdefault(key, []).extend(got)
    finally:
        await stop_subscribers(bench, clients)
        bench.procs.stop(server)
    # misdelivered: a subscriber that received a change it must not see (its key unknown: a warm-up
    # change of the W4 organization, or an ACCOUNTANT's data message, which no change here makes)
    misdelivered = Counter()
    duplicates = 0
    for key, got in who.items():
        allowed = expected_by_key.get(key, set())
        wrong = [i for i in got if i not in allowed]
        for i in wrong:
            misdelivered[SPREAD_SLOTS[i % len(SPREAD_SLOTS)]] += 1
        duplicates += len(got) - len(wrong) - len(set(got) - set(wrong))
    if misdelivered:
        bench.problem(f"W4 spread: {sum(misdelivered.values())} deliveries to a subscriber that must not see them "
                      f"(by who received them: {dict(misdelivered)})")
    if duplicates:
        bench.problem(f"W4 spread: {duplicates} deliveries arrived twice")
    samples = [s for r in per_run for s in r]
    lasts = [s["last_ms"] for s in samples if s["last_ms"] is not None]
    alls = [t for s in samples for t in s.pop("all_ms")]
    cpu = [s["server_cpu_ms"] for s in samples]
    return {
        "subscribers": n, "variant": "spread", "organizations": len(organizations), "burst": burst,
        "deliveries_per_change": statistics.mean(len(v) for v in expected_by_key.values()) if expected_by_key else None,
        "client_processes": processes, "connect_s": connect_s, "subscribe_server_cpu_ms": subscribe_cpu_ms,
        "rss_before_kb": rss_before, "rss_idle_kb": rss_idle, "rss_after_runs_kb": rss_end,
        "rss_per_idle_subscriber_kb": per_connection_kb, "runs": len(per_run),
        "changes_per_run": max((len(r) for r in per_run), default=0), "changes": len(samples), "measuring_s": measuring_s,
        "last_subscriber_p50_ms": spread([percentile([s["last_ms"] for s in r if s["last_ms"] is not None], 0.5) for r in per_run]),
        "last_subscriber_p99_ms": spread([percentile([s["last_ms"] for s in r if s["last_ms"] is not None], 0.99) for r in per_run]),
        "last_subscriber_all_changes": {"p50": percentile(lasts, 0.5), "p99": percentile(lasts, 0.99), "max": max(lasts, default=None)},
        "all_deliveries": {"p50": percentile(alls, 0.5), "p99": percentile(alls, 0.99)},
        "server_cpu_ms_per_change": statistics.median(cpu) if cpu else None,
        "server_cpu_ms_per_change_mean": statistics.mean(cpu) if cpu else None,
        "server_cpu_ms_per_message": None,
        "lost": sum(s["lost"] for s in samples), "duplicates": duplicates, "misdelivered": sum(misdelivered.values()),
        "misdelivered_by_role": dict(misdelivered),
        "subscriber_errors": sum(s["errors"] for s in samples), "samples": samples,
    }
