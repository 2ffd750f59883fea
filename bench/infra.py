"""What the bench starts and stops: a throwaway PostgreSQL database, kabinet, PostGraphile, helper
processes. Every process is started in its own process group and killed as a group at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://root@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
NODE_MODULES = BENCH_DIR / "node_modules"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group(pid: int) -> list[int]:
    """`pid` and, when it leads a process group (every server the bench starts does), the group's
    other processes: a multi-process server's children (`kabinet serve --workers N`)."""
    members = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pid:
                    members.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass  # ended meanwhile
    return members


def rss_kb(pid: int) -> int:
    """Resident memory of a server: the process's, with its process group's (no psutil needed)."""
    total = 0
    for member in group(pid):
        try:
            total += next(int(line.split()[1]) for line in Path(f"/proc/{member}/status").read_text().splitlines()
                          if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            if member == pid:
                raise RuntimeError(f"no VmRSS for {pid}") from None
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(pid: int) -> float:
    """CPU time of a server: its process's and its process group's (the children of a multi-process one)."""
    total = 0.0
    for member in group(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            if member == pid:
                raise
    return total


def connections_per_process(pid: int, base: str) -> dict[int, int]:
    """Established TCP connections to `base`'s port held by each process of `pid`'s group: how the
    kernel spread the clients over a multi-process server's children (they accept from one socket)."""
    port = int(base.rsplit(":", 1)[1])
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # local port, ESTABLISHED
                    inodes.add(fields[9])
        except OSError:
            pass
    counts: dict[int, int] = {}
    for member in group(pid):
        links = []
        try:
            for fd in Path(f"/proc/{member}/fd").iterdir():
                try:
                    links.append(os.readlink(fd))
                except OSError:
                    pass  # closed meanwhile (the listing's own descriptor, for one)
        except OSError:
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if held:
            counts[member] = held
    return counts


def raise_fd_limit() -> None:
    """Thousands of WebSockets need thousands of file descriptors: soft limit up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _child_setup() -> None:
    os.setsid()
    raise_fd_limit()


# ------------------------------------------------------------------ database

def _sql(sql: str, db: str = "postgres") -> None:
    """Run one statement as the admin user (asyncpg, so that no psql binary is needed)."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_ADMIN_URL.replace('postgres://', 'postgresql://', 1)}/{db}", timeout=10)
        try:
            await conn.execute(sql, timeout=300)
        finally:
            await conn.close()

    asyncio.run(run())


def create_database() -> tuple[str, str]:
    """A fresh database kabinet_bench_<random>: (name, URL)."""
    name = f"kabinet_bench_{secrets.token_hex(4)}"
    _sql(f'CREATE DATABASE "{name}"')
    return name, f"{PG_ADMIN_URL}/{name}"


def drop_database(name: str) -> None:
    _sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------ processes

@dataclass
class Processes:
    """Everything the bench started; `stop_all` kills each process group, newest first."""

    started: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    adopted: set[int] = field(default_factory=set)  # process groups started by asyncio (load, subscribers)

    def adopt(self, pid: int) -> None:
        self.adopted.add(pid)

    def release(self, pid: int) -> None:
        self.adopted.discard(pid)

    def start(self, argv: list[str], *, env: dict | None = None, cwd: Path | None = None, log: Path | None = None,
              stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen:
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 — closed with the process
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else out, stderr=out, preexec_fn=_child_setup,
        )
        self.started.append(proc)
        if log:
            self.logs.append(log)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 8) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for pid in list(self.adopted):
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, signum)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
            self.adopted.discard(pid)
        for proc in reversed(list(self.started)):
            self.stop(proc)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before it was ready\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def kabinet_env(database_url: str, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET_")}
    env.update(
        KABINET_DATABASE_URL=database_url, KABINET_BROKER_URL=REDIS_URL, KABINET_RUN_WORKERS="false",
        KABINET_SEED_DEMO="false", KABINET_MIGRATE_ON_START="false", KABINET_SECRET_KEY=secret_key,
        KABINET_DATA_DIR=str(BENCH_DIR / "results" / ".data"),
        # a bench lasts longer than the default 15 minutes of an access token
        KABINET_ACCESS_TOKEN_MINUTES="240",
    )
    return env


def kabinet_bin() -> str:
    return str(Path(sys.executable).with_name("kabinet"))


def migrate(env: dict[str, str]) -> None:
    subprocess.run([kabinet_bin(), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)


def start_kabinet(procs: Processes, env: dict[str, str], log_dir: Path, name: str = "kabinet",
                  workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`kabinet serve` as production runs it (one process, or `--workers N`): (process, base URL)."""
    port = free_port()
    log = log_dir / f"{name}.log"
    argv = [kabinet_bin(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = procs.start(argv, env=env, cwd=ROOT, log=log)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc, log=log)
    deadline = time.monotonic() + 60
    while workers > 1 and log.read_text(errors="replace").count("Application startup complete") < workers:
        if time.monotonic() > deadline:  # one child answering is not all of them ready
            raise RuntimeError(f"{name}: not all {workers} worker processes started in 60 s")
        time.sleep(0.2)
    return proc, base


# ------------------------------------------------------------------ node tools

def node_binary() -> str | None:
    """Node 22 from bench/node_modules (PostGraphile 5 needs it); else the machine's node."""
    local = NODE_MODULES / "node" / "bin" / "node"
    if local.exists():
        return str(local)
    return shutil.which("node")


def node_major() -> int:
    """Major version of the node that node_binary() gives (0 when there is none)."""
    node = node_binary()
    if node is None:
        return 0
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def ensure_node_tools(log) -> bool:
    """autocannon and PostGraphile in bench/node_modules (npm install on first use): available?"""
    if (NODE_MODULES / "autocannon").exists() and (NODE_MODULES / "postgraphile").exists() and (NODE_MODULES / "node" / "bin" / "node").exists():
        return True
    npm = shutil.which("npm")
    if npm is None:
        log("npm is not installed: no autocannon, no PostGraphile (the Python load driver is used instead)")
        return False
    log("installing autocannon, PostGraphile and Node 22 into bench/node_modules (npm ci, once)")
    command = [npm, "ci", "--no-audit", "--no-fund"] if (BENCH_DIR / "package-lock.json").exists() else [npm, "install", "--no-audit", "--no-fund"]
    result = subprocess.run(command, cwd=BENCH_DIR, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        log(f"npm failed ({result.returncode}): {result.stderr[-2000:]}")
        return False
    return (NODE_MODULES / "autocannon").exists()


def start_postgraphile(procs: Processes, database_url: str, log_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, PORT=str(port), NODE_ENV="production", GRAPHILE_ENV="production")
    log = log_dir / "postgraphile.log"
    proc = procs.start(
        [node_binary(), str(NODE_MODULES / "postgraphile" / "dist" / "cli-run.js"), "-C", str(BENCH_DIR / "postgraphile" / "graphile.config.mjs")],
        env=env, cwd=BENCH_DIR, log=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:  # its GET /graphql answers 405 or similar once the schema is built
        if proc.poll() is not None:
            raise RuntimeError(f"PostGraphile exited with {proc.returncode}\n{log.read_text(errors='replace')[-3000:]}")
        try:
            r = httpx.post(f"{base}/graphql", json={"query": "{__typename}"}, timeout=2)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("PostGraphile did not start in 90 s")
        time.sleep(0.3)
    return proc, base
