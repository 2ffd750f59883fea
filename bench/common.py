"""What every workload of `make bench` shares: progress on stderr, the spread of runs, the error that
fails the smoke, and the server's CPU time over a stretch of work."""

from __future__ import annotations

import math
import statistics
import sys
import time

from bench import infra


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


class BenchError(Exception):
    """A workload is broken (not merely slow): the smoke fails on it."""


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class ServerCpu:
    """A server's CPU time (user + system, from /proc; a multi-process server's children summed)
    from now on: the figure a shared machine's wall clock blurs least."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = infra.server_cpu_seconds(pid)

    def ms(self) -> float:
        return (infra.server_cpu_seconds(self.pid) - self.start) * 1000

    def ms_per(self, requests: int) -> float:
        return self.ms() / max(1, requests)
