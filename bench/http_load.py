"""HTTP load: autocannon (npm) when it is there, else a small asyncio + httpx driver.

Both take the same spec (POST bodies to a URL at a concurrency for a duration) and give the same
figures: requests per second, latency p50/p90/p99 in ms, non-2xx answers and errors. The Python
driver tops out at a few hundred requests per second on this machine: the smoke and machines
without Node use it, the real figures come from autocannon.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx

from bench.infra import BENCH_DIR, NODE_MODULES, node_binary


@dataclass
class LoadSpec:
    url: str
    bodies: list[str]
    connections: int = 10
    duration: float = 10
    headers: dict[str, str] = field(default_factory=dict)
    amount: int | None = None  # stop after this many requests, if reached before the duration


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def autocannon_available() -> bool:
    return (NODE_MODULES / "autocannon").exists() and node_binary() is not None


async def run_autocannon(spec: LoadSpec, adopt=None, release=None) -> dict:
    """One autocannon run in its own process group (`adopt(pid)` lets the caller kill it on Ctrl-C)."""
    payload = {
        "url": spec.url, "bodies": spec.bodies, "connections": spec.connections, "duration": spec.duration,
        "headers": spec.headers, "amount": spec.amount,
    }
    proc = await asyncio.create_subprocess_exec(
        node_binary(), str(BENCH_DIR / "load.mjs"), cwd=BENCH_DIR, start_new_session=True,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    if adopt:
        adopt(proc.pid)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(json.dumps(payload).encode()), spec.duration + 120)
    finally:
        if release:
            release(proc.pid)
    if proc.returncode != 0:
        raise RuntimeError(f"autocannon failed: {stderr.decode(errors='replace')[-2000:]}")
    figures = json.loads(stdout.decode().strip().splitlines()[-1])
    figures["driver"] = "autocannon"
    return figures


async def python_load(spec: LoadSpec) -> dict:
    latencies: list[float] = []
    counters = {"non2xx": 0, "errors": 0, "bytes": 0, "sent": 0}
    deadline = time.monotonic() + spec.duration
    headers = {"content-type": "application/json", **spec.headers}

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline and (spec.amount is None or counters["sent"] < spec.amount):
            body = spec.bodies[counters["sent"] % len(spec.bodies)]
            counters["sent"] += 1
            started = time.perf_counter()
            try:
                response = await client.post(spec.url, content=body, headers=headers)
            except httpx.HTTPError:
                counters["errors"] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            counters["bytes"] += len(response.content)
            if not 200 <= response.status_code < 300:
                counters["non2xx"] += 1

    limits = httpx.Limits(max_connections=spec.connections, max_keepalive_connections=spec.connections)
    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(spec.connections)))
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies), "duration_s": elapsed, "rps": len(latencies) / elapsed,
        "latency_ms": {
            "p50": percentile(latencies, 0.5), "p90": percentile(latencies, 0.9), "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=float("nan")), "mean": sum(latencies) / len(latencies) if latencies else float("nan"),
        },
        "non2xx": counters["non2xx"], "errors": counters["errors"], "timeouts": 0,
        "bytes_per_response": counters["bytes"] / len(latencies) if latencies else 0, "driver": "python-httpx",
    }

