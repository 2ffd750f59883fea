"""The documented deployment (issue 18): docker-compose.yml's own services run as plain processes (no
container engine here) against PostgreSQL and Redis, with the compose file's commands and
environment, read from the YAML. A fresh deployment holds no demo: no demo account signs in, no
release, and while the worker runs no session or update run appears that no agent reported; `kabinet
doctor` blocks until the supplier's requisites are set, then passes.

What the compose engine does is done here by hand: `${VAR:?…}` and `${VAR:-…}` interpolated from the
secrets a provider sets; the hosts `postgres` and `redis` are this machine's servers (a fresh
database of this test's own), and `kabinet` is this checkout's."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import yaml

from tests.databases import run_admin_sql
from tests.processes import free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
EXAMPLES = ROOT / "examples" / "provider"
ADMIN_URL = os.environ.get("KABINET_TEST_DATABASE_URL", "")
ON_POSTGRES = ADMIN_URL.startswith(("postgres://", "postgresql://"))
SECRETS = {
    "POSTGRES_PASSWORD": "pg-" + uuid.uuid4().hex, "REDIS_PASSWORD": "redis-" + uuid.uuid4().hex,
    "KABINET_SECRET_KEY": "compose-" + uuid.uuid4().hex + uuid.uuid4().hex, "KABINET_PUBLIC_URL": "https://cabinet.example.ru",
}
KABINET_SERVICES = ("migrate", "api", "worker")
WATCH_SECONDS = 5.0  # how long the worker runs while nothing simulated may appear
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[?-])(?P<rest>[^}]*))?\}")


class Unset(Exception):
    """A `${VAR:?message}` whose variable is unset: compose refuses to start."""


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?message}`."""
    def value(match: re.Match) -> str:
        name, kind, rest = match["name"], match["kind"], match["rest"]
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise Unset(f"{name}: {rest}")
        return rest if kind == "-" else ""
    return VARIABLE.sub(value, text)


def service(name: str, variables: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A service's command and environment as compose would run it (env_file aside: optional, absent here)."""
    spec = COMPOSE["services"][name]
    command = [interpolate(str(part), variables) for part in spec["command"]]
    environment = {key: interpolate(str(value), variables) for key, value in (spec.get("environment") or {}).items()}
    return command, environment


def test_the_compose_file_runs_no_demo_and_takes_its_secrets_from_the_environment():
    services = COMPOSE["services"]
    assert {"postgres", "redis", *KABINET_SERVICES} <= set(services)
    for name, spec in services.items():
        words = " ".join(map(str, spec.get("command") or []))
        if "seed" in words:
            assert spec.get("profiles") == ["demo"] and spec["command"] == ["kabinet", "seed", "--demo"], name
    assert all("profiles" not in services[name] for name in ("postgres", "redis", *KABINET_SERVICES))
    for name in KABINET_SERVICES:
        command, environment = service(name, SECRETS)
        assert environment["KABINET_SEED_DEMO"] == "false" and "KABINET_CLUSTER" not in environment
        assert environment["KABINET_SECRET_KEY"] == SECRETS["KABINET_SECRET_KEY"]
        assert SECRETS["POSTGRES_PASSWORD"] in environment["KABINET_DATABASE_URL"]
        assert SECRETS["REDIS_PASSWORD"] in environment["KABINET_BROKER_URL"]
        for secret in SECRETS:  # no default a deployment would keep: unset, compose refuses to start
            with pytest.raises(Unset, match=secret):
                service(name, {**SECRETS, secret: ""})
    assert SECRETS["REDIS_PASSWORD"] in service("redis", SECRETS)[0]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


# ---------------------------------------------------------------------------------------- as processes


@pytest.fixture
def fresh_postgres():
    if not ON_POSTGRES:
        pytest.skip("the compose services run on PostgreSQL and Redis: KABINET_TEST_DATABASE_URL=postgres://…")
    name = f"kabinet_compose_{uuid.uuid4().hex[:10]}"
    asyncio.run(run_admin_sql(ADMIN_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        asyncio.run(run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Deployment:
    """The compose services' commands on this machine: `postgres` and `redis` are the tests' servers."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.database_url, self.tmp_path = database_url, tmp_path
        self.broker_url = os.environ.get("KABINET_TEST_BROKER_URL", "redis://127.0.0.1:6379")
        assert self.broker_url.startswith("redis://"), "the compose file's broker is Redis"
        self.port = free_port()

    def environment(self, name: str) -> dict[str, str]:
        _, compose = service(name, SECRETS)
        assert urlsplit(compose["KABINET_DATABASE_URL"]).hostname == "postgres"
        assert urlsplit(compose["KABINET_BROKER_URL"]).hostname == "redis"
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("KABINET_")}  # the tests' KABINET_CLUSTER too
        return {
            **inherited, **compose, "PYTHONPATH": str(ROOT), "KABINET_DATABASE_URL": self.database_url,
            "KABINET_BROKER_URL": self.broker_url, "KABINET_DATA_DIR": str(self.tmp_path / name),
        }

    def command(self, name: str) -> list[str]:
        command, _ = service(name, SECRETS)
        assert command[0] == "kabinet", command
        if name == "api":
            swap = {"8000": str(self.port), "0.0.0.0": "127.0.0.1"}  # a port of its own, this machine alone
            command = [swap.get(part, part) for part in command]
        return [sys.executable, "-m", "kabinet.cli", *command[1:]]

    def run(self, name: str, *args: str, status: int = 0) -> str:
        """A one-off command in a service's environment (`docker compose run --rm NAME kabinet …`)."""
        argv = self.command(name) if not args else [sys.executable, "-m", "kabinet.cli", *args]
        done = subprocess.run(argv, env=self.environment(name), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == status, (argv, done.returncode, done.stdout, done.stderr)
        return done.stdout

    def start(self, name: str) -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(self.command(name), env=self.environment(name), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        return process, log


async def counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return {
            table: await connection.fetchval(f'SELECT count(*) FROM "{table}"')
            for table in ("session", "update_run", "release", "user", "database", "organization")
        }
    finally:
        await connection.close()


async def until_logged(process: subprocess.Popen, log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"the process exited:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{log.read_text(errors='replace')}"
        await asyncio.sleep(0.1)


def blocking(output: str) -> list[str]:
    return [line.removeprefix("BLOCKS").strip() for line in output.splitlines() if line.startswith("BLOCKS")]


async def test_a_fresh_compose_deployment_shows_no_demo_and_nothing_simulated(fresh_postgres, tmp_path):
    deployment = Deployment(fresh_postgres, tmp_path)
    assert "database is up to date" in deployment.run("migrate")
    for file_name in ("organizations.csv", "cloud_subscriptions.ndjson", "databases.ndjson"):  # the provider's data: databases a simulator could fake
        deployment.run("migrate", "import", str(EXAMPLES / file_name), "--report", str(tmp_path / f"{file_name}.report"))
    before = await counts(fresh_postgres)
    assert before["database"] > 0 and before["organization"] > 0

    api, api_log = deployment.start("api")
    worker, worker_log = deployment.start("worker")
    try:
        await wait_until_serving(api, f"127.0.0.1:{deployment.port}", api_log, path="/healthz")
        await wait_until_serving(api, f"127.0.0.1:{deployment.port}", api_log, path="/readyz")
        await until_logged(worker, worker_log, "update worker")
        for log in (api_log, worker_log):
            assert "cluster mode: agent (PostgreSQL" in log.read_text(), log.read_text()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{deployment.port}", timeout=30) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            for email in ("owner@romashka.example", "admin@romashka.example", "owner@vasilek.example"):
                body = (await http.post("/graphql", json={
                    "query": "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) "
                             "{ accessToken userErrors { code } } }",
                    "variables": {"l": email, "p": "kabinet-demo"},
                })).json()
                assert body["data"]["login"]["accessToken"] is None and body["data"]["login"]["userErrors"], body
        await asyncio.sleep(WATCH_SECONDS)  # the worker's loops go round several times
        assert worker.poll() is None and api.poll() is None
    finally:
        stop(worker)
        stop(api)
    after = await counts(fresh_postgres)
    assert (after["session"], after["update_run"], after["release"], after["user"]) == (0, 0, 0, 0), after
    assert "Traceback" not in worker_log.read_text(errors="replace"), worker_log.read_text(errors="replace")

    # The doctor, in the api service's environment: the supplier's requisites are what still blocks.
    first = deployment.run("api", "doctor", status=1)
    assert [b.split(":")[0] for b in blocking(first)] == ["no supplier requisites"], first
    assert "WARNS  no agent token yet" in first and "WARNS  no SMS gateway" in first and "WARNS  e-mail goes to files" in first
    deployment.run("api", "supplier", "set", str(EXAMPLES / "supplier.toml"))
    fixed = deployment.run("api", "doctor")
    assert blocking(fixed) == [] and fixed.splitlines()[-1].startswith("kabinet doctor: nothing blocks"), fixed
