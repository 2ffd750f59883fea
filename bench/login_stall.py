"""`python -m bench.login_stall` — does signing in stall everyone else?

Starts `kabinet serve` on the embedded default (SQLite in a temporary folder, demo data), then
measures the latency of a light request (`{ __typename }`, one at a time, back to back) first
with the server idle, then while clients keep sending requests of 50 aliased `login` calls each
(argon2, ~50 ms of CPU per call). Prints the median and p95 of both and the logins per second.
With hashing on the event loop, the light request waits for the password checks in progress;
in the pool (`password_hash_threads`, resolvers/identity/passwords.py) it does not.

  --seconds N     length of each phase (default 5)
  --senders N     concurrent senders of login requests (default 2)
  --threads N     KABINET_PASSWORD_HASH_THREADS for the server (default: its own default)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import infra
from bench.http_load import percentile

LIGHT = {"query": "{ __typename }"}
LOGINS = "mutation($l: String!, $p: String!) { " + " ".join(
    f"l{i}: login(input: {{login: $l, password: $p}}) {{ accessToken }}" for i in range(50)
) + " }"


async def light_latencies(client: httpx.AsyncClient, base: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await client.post(f"{base}/graphql", json=LIGHT)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.json() == {"data": {"__typename": "Query"}}, response.text
    return latencies


async def send_logins(client: httpx.AsyncClient, base: str, stop: asyncio.Event, done: list[int]) -> None:
    variables = {"l": "owner@romashka.example", "p": "kabinet-demo"}
    while not stop.is_set():
        body = (await client.post(f"{base}/graphql", json={"query": LOGINS, "variables": variables}, timeout=120)).json()
        assert "errors" not in body and all(p["accessToken"] for p in body["data"].values()), str(body)[:500]
        done.append(50)


def figures(name: str, values: list[float]) -> str:
    return (f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | "
            f"{max(values):.1f} |")


async def measure(base: str, seconds: float, senders: int) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        await light_latencies(client, base, 1.0)  # warm up
        idle = await light_latencies(client, base, seconds)
        stop, done = asyncio.Event(), []
        logins = [asyncio.create_task(send_logins(client, base, stop, done)) for _ in range(senders)]
        await asyncio.sleep(0.5)  # the first login requests are under way
        started = time.monotonic()
        busy = await light_latencies(client, base, seconds)
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.gather(*logins)
    print(f"\nLight request latency (ms), {senders} sender(s) of 50 aliased logins each:\n")
    print("| server | requests | median | p95 | max |\n|---|---|---|---|---|")
    print(figures("idle", idle))
    print(figures("during logins", busy))
    print(f"\nlogins answered meanwhile: {sum(done)} (~{sum(done) / elapsed:.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    procs = infra.Processes()
    with tempfile.TemporaryDirectory(prefix="kabinet-login-stall-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET_")}
        env.update(KABINET_DATA_DIR=folder, KABINET_RUN_WORKERS="false", KABINET_CLUSTER_CHURN="0",
                   KABINET_SECRET_KEY="bench-login-stall-secret-key-long-enough-for-hs256",
                   # one address sends every login: keep the per-address limit out of the way
                   KABINET_LOGIN_ADDRESS_MAX_FAILURES="1000000")
        if args.threads:
            env["KABINET_PASSWORD_HASH_THREADS"] = str(args.threads)
        try:
            port = infra.free_port()
            log = Path(folder) / "kabinet.log"
            proc = procs.start([infra.kabinet_bin(), "serve", "--port", str(port)], env=env, cwd=infra.ROOT, log=log)
            base = f"http://127.0.0.1:{port}"
            infra.wait_http(f"{base}/readyz", proc, timeout=120, log=log)
            asyncio.run(measure(base, args.seconds, args.senders))
        finally:
            procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
