"""The WebSocket subscribers of W4 and W5: processes of bench/wsclients.py, started, asked for what
they received, and stopped over their stdin/stdout (1–4 of them, so that the client side is not the
bottleneck)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import orjson

from bench import infra
from bench.common import BenchError, log

if TYPE_CHECKING:
    from bench.harness import Bench


async def start_subscribers(bench: Bench, base: str, token: str | None, query: str, variables: dict, field: str,
                            count: int, processes: int, *, snapshot: bool, record_times: bool, deflate: bool | None = None,
                            quiet: bool = False, tokens: list[str] | None = None, each: list | None = None,
                            queries: list[tuple[str, bool]] | None = None, who: bool = False) -> list:
    """`count` subscribers in `processes` client processes: all on `token`, or subscriber i on `tokens[i]`;
    all subscribed to `query`, or subscriber i to `queries[each[i][0]]` (text, whether it sends a first
    message) with variables `each[i][1]`. With `who`, reports say which subscribers received what."""
    ws_url = base.replace("http://", "ws://") + "/graphql"
    per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    clients = []
    for i, n in enumerate(per):
        first = sum(per[:i])
        spec = {"url": ws_url, "token": token, "query": query, "variables": variables, "field": field, "count": n,
                "snapshot": snapshot, "record_times": record_times,
                "compression": (not bench.args.no_deflate) if deflate is None else deflate,
                "connect_concurrency": 50, "first": first, "who": who}
        argument = json.dumps(spec)
        if tokens is not None or each is not None:  # thousands of tokens do not fit one argument (128 KiB): a file
            if tokens is not None:
                spec["tokens"] = tokens[first:first + n]
            if each is not None:
                spec["each"] = each[first:first + n]
                spec["queries"], spec["snapshots"] = [q for q, _ in queries], [s for _, s in queries]
            spec_file = bench.log_dir / f"wsclients-{i}.json"
            spec_file.write_text(json.dumps(spec))
            argument = f"@{spec_file}"
        with open(bench.log_dir / f"wsclients-{i}.log", "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.wsclients", argument, cwd=infra.ROOT, start_new_session=True,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, limit=256 * 1024 * 1024,
            )
        bench.procs.adopt(proc.pid)
        clients.append(proc)
    try:
        ready = await asyncio.gather(*(read_line(c, timeout=60 + count * 0.1) for c in clients))
    except BaseException:
        await stop_subscribers(bench, clients)
        raise
    failed = sum(r["failed"] for r in ready)
    if failed:
        await stop_subscribers(bench, clients)
        raise BenchError(f"{failed} of {count} subscribers could not subscribe: {[r['errors'] for r in ready]}")
    if not quiet:
        log(f"  {count} subscribers live in {max(r['connect_s'] for r in ready):.1f} s ({processes} client processes)")
    return clients


async def read_line(proc, timeout: float) -> dict:
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    except asyncio.TimeoutError:
        raise BenchError(f"a subscriber process did not answer in {timeout:.0f} s") from None
    if not line:
        raise BenchError(f"a subscriber process ended (exit {proc.returncode}); see bench/results/logs/")
    return orjson.loads(line)


async def reports(clients: list) -> list[dict]:
    """What each subscriber process received since its last report."""
    for c in clients:
        c.stdin.write(b"report\n")
        await c.stdin.drain()
    return await asyncio.gather(*(read_line(c, timeout=120) for c in clients))


async def stop_subscribers(bench: Bench, clients: list) -> None:
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
        bench.procs.release(c.pid)


async def collect(clients, expected: dict[str, int], *, stall_s: float, cap_s: float, record_times: bool,
                  prefix: str | None = None, total: int | None = None, who: dict[str, list[int]] | None = None):
    """Poll the subscriber processes until every key has arrived `expected[key]` times (or, with
    `prefix`, until `total` messages whose key starts with it have arrived); give up when nothing
    new has arrived for `stall_s` seconds, or after `cap_s`. (counts, times, errors, error count); with
    `who`, which subscribers received each key is added to it."""
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
        for report in await reports(clients):
            for key, n in report["counts"].items():
                counts[key] = counts.get(key, 0) + n
                progress = progress or n > 0
            if record_times:
                for key, ts in report["times"].items():
                    times.setdefault(key, []).extend(ts)
            if who is not None:
                for key, receivers in report.get("who", {}).items():
                    who.setdefault(key, []).extend(receivers)
            errors += report["errors"]
            error_count += report["error_count"]
        now = time.monotonic()
        if progress:
            last_progress = now
        if done() or now - last_progress > stall_s or now - started > cap_s:
            break
        await asyncio.sleep(0.25)
    return counts, times, errors, error_count

