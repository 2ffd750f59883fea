"""Real processes for the tests that need them (kabinet serve, kabinet worker): ports, start-up, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until_serving(process: subprocess.Popen, url: str, log: Path, *, path: str = "/readyz", timeout: float = 60) -> None:
    """Until `http://<url><path>` answers 200; fails with the process's log if it dies or never does."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the process died:\n{log.read_text()}"
            try:
                if (await client.get(f"http://{url}{path}", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the process did not start serving:\n{log.read_text()}")


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def kabinet_cli(settings, *args: str, status: int = 0, stdin: bytes | None = None) -> str:
    """Run `kabinet …` in a process of its own against the tests' database: its stdout."""
    environment = {
        **os.environ, "KABINET_DATABASE_URL": settings.resolved_database_url, "KABINET_DATA_DIR": str(settings.data_dir),
        "KABINET_BROKER_URL": settings.broker_url, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kabinet.cli", *args, env=environment,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode == status, (out.decode(), err.decode())
    return out.decode()
