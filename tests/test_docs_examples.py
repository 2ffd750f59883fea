"""Every GraphQL example of README.md and docs/*.md runs, against the demo data, as its page says.

A ```graphql fenced block is an example. The line right before it says how it runs:

    <!-- run: as owner@romashka.example -->          signed in as that login (password kabinet-demo)
    <!-- run: anonymous -->                          without a token
    <!-- run: skip — why -->                         not run (the reason is required)

A block without such a line fails `test_every_example_says_how_it_runs`, so a new example cannot go
untested. After `as LOGIN` / `anonymous`, comma-separated:

- `expect CODE`: the answer must carry CODE (an error's `extensions.code` or a `userErrors` code) —
  a refusal shown on purpose. Otherwise the answer must have no `errors` and no non-empty `userErrors`.
- `as {{NAME}}` instead of a login: the request carries a kept value as its bearer token (an API
  token an earlier example created, say).
- `keep NAME = dotted.path`: remember a value of the answer's `data` (`inviteMember.invite.id`; a
  number indexes a list: `organizations.edges.0.node.id`) as `{{NAME}}` for the examples after it.

A ```json block right after the example (blank lines between allowed) is its variables; `{{NAME}}`
in its strings is replaced by a kept value or one of the names every page may use (the demo's
ids, read before the first example): `{{romashka}}` (ООО «Ромашка»), `{{vasilek}}` (ИП Васильев),
`{{accounting}}` (Ромашка's typical database «Бухгалтерия»), `{{trade}}` (its non-typical one),
`{{userMembership}}` (user@romashka.example's membership in Ромашка), `{{activeSession}}` (an
ACTIVE session of Ромашка's, not user@romashka.example's), `{{usersSession}}` (an ACTIVE one of
user@romashka.example's), `{{document}}` (a published document of Ромашка's), `{{ticket}}` (a support
ticket of Ромашка's accountant), `{{inAWeek}}` (a week from now, 22:00 UTC).

A subscription example is subscribed to over a WebSocket (graphql-transport-ws) and stays open
while the next example runs; then its first message must arrive without errors (so a page shows a
subscription, then the mutation whose event it receives).

The examples run in page order — README.md, then docs/*.md by name — on a `kabinet serve` of
their own: a fresh database (a SQLite file, or a PostgreSQL database of its own when
KABINET_TEST_DATABASE_URL is set) seeded with the demo data set, the simulated cluster still
(KABINET_CLUSTER_CHURN=0, no workers), so the examples' mutations disturb no other test and a page
may read like a story (invite, then list the invitations). The provider's staff examples run as
`moderator@provider.example` (password kabinet-demo), made with `kabinet staff create` as
docs/provider.md tells.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import DEMO_PASSWORD
from tests.databases import migrated_database
from tests.live import TRANSPORT_WS, GraphQLSocket
from tests.processes import free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STAFF_LOGIN = "moderator@provider.example"
RUN_LINE = re.compile(r"^<!--\s*run:\s*(?P<how>.*?)\s*-->\s*$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class Example:
    page: str
    line: int  # of the ```graphql fence, 1-based
    query: str
    run: str | None  # the run-line's text after "run:", None when there is none
    variables: str | None = None
    # parsed from `run`
    login: str | None = None
    skip: str | None = None
    expect: str | None = None
    keep: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_run(example: Example) -> None:
    how = example.run or ""
    if how.startswith("skip"):
        example.skip = how[4:].strip(" —-:") or ""
        return
    parts = [part.strip() for part in how.split(",")]
    head = parts[0]
    if head.startswith("as "):
        example.login = head[3:].strip()
    elif head != "anonymous":
        raise AssertionError(f"{example.where}: a run-line says `as LOGIN`, `anonymous` or `skip — why`, not {how!r}")
    for part in parts[1:]:
        if part.startswith("expect "):
            example.expect = part[7:].strip()
        elif part.startswith("keep ") and "=" in part:
            name, path = part[5:].split("=", 1)
            example.keep[name.strip()] = path.strip()
        else:
            raise AssertionError(f"{example.where}: unknown run option {part!r}")


def examples_of(page: Path) -> list[Example]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    fence_open: str | None = None
    while i < len(lines):
        stripped = lines[i].strip()
        if fence_open is not None:  # inside another fenced block: a ```graphql there is text
            if stripped == fence_open:
                fence_open = None
            i += 1
            continue
        if stripped.startswith("```") and stripped != "```graphql":
            fence_open = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            i += 1
            continue
        if stripped != "```graphql":
            i += 1
            continue
        start = i
        previous = RUN_LINE.match(lines[i - 1].strip()) if i > 0 else None
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        example = Example(str(page.relative_to(ROOT)), start + 1, "\n".join(body), previous.group("how") if previous else None)
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and lines[j].strip() == "```json":
            j += 1
            variables = []
            while j < len(lines) and lines[j].strip() != "```":
                variables.append(lines[j])
                j += 1
            example.variables = "\n".join(variables)
            i = j + 1
        if example.run is not None:
            parse_run(example)
        found.append(example)
    return found


def all_examples() -> list[Example]:
    return [example for page in PAGES for example in examples_of(page)]


def test_every_example_says_how_it_runs():
    examples = all_examples()
    assert examples, "no ```graphql example in README.md or docs/"
    untold = [example.where for example in examples if example.run is None]
    assert untold == [], f"examples without a `<!-- run: … -->` line right before them: {untold}"
    reasonless = [example.where for example in examples if example.skip == ""]
    assert reasonless == [], f"skipped without a reason: {reasonless}"


def test_the_readme_stays_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    opening = "\n".join(text.splitlines()[:8])
    assert "make serve" in opening and "make test" in opening


def test_links_between_pages_lead_somewhere():
    """A relative link of README.md, ARCHITECTURE.md or docs/*.md names a file that exists and, with a
    `#fragment`, a heading of it (GitHub's anchors: lower case, spaces to dashes, punctuation out)."""
    def anchors(path: Path) -> set[str]:
        out = set()
        in_fence = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("```"):
                in_fence = not in_fence
            if not in_fence and line.startswith("#"):
                title = line.lstrip("#").strip().lower()
                out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
        return out

    broken = []
    for page in [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            path_part, _, fragment = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                broken.append(f"{page.name}: {target}")
    assert broken == [], f"links to nothing: {broken}"


# ------------------------------------------------------------------------------------ running them


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory):
    """`kabinet serve` on a database of its own (migrated: a copy of the run's template) with the demo
    data, and the staff member of docs/provider.md."""
    folder = tmp_path_factory.mktemp("docs-examples")
    database_url = migrated_database(tmp_path_factory, folder / "kabinet.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET_")}
    env.update({
        "KABINET_DATABASE_URL": database_url, "KABINET_DATA_DIR": str(folder / "data"),
        "KABINET_BROKER_URL": "memory://", "KABINET_SECRET_KEY": "docs-examples-secret-key-long-enough-for-hs256",
        "KABINET_MAIL_URL": f"file://{folder / 'outbox'}", "KABINET_SEED_DEMO": "true",
        "KABINET_MIGRATE_ON_START": "true", "KABINET_RUN_WORKERS": "false", "KABINET_CLUSTER_CHURN": "0",
        "KABINET_CLUSTER": "simulated", "KABINET_LOG_FORMAT": "text", "KABINET_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    port = free_port()
    log = folder / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "kabinet.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        yield process, f"127.0.0.1:{port}", log, env
    finally:
        stop(process)


@dataclass
class Runner:
    http: httpx.AsyncClient
    url: str
    values: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, login: str) -> str:
        kept = PLACEHOLDER.fullmatch(login)
        if kept:  # `as {{NAME}}`: a token an earlier example kept (an API token, say), sent as it is
            return self.values[kept.group(1)]
        if login not in self.tokens:
            body = (await self.http.post("/graphql", json={
                "query": "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { accessToken userErrors { code } } }",
                "variables": {"l": login, "p": DEMO_PASSWORD},
            })).json()
            assert body["data"]["login"]["userErrors"] == [], (login, body)
            self.tokens[login] = body["data"]["login"]["accessToken"]
        return self.tokens[login]

    async def post(self, query: str, variables: dict | None, login: str | None) -> dict:
        headers = {"Authorization": f"Bearer {await self.token(login)}"} if login else {}
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        return response.json()


def fill(value: Any, values: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole:
            assert whole.group(1) in values, f"{where}: {{{{{whole.group(1)}}}}} is no kept value ({sorted(values)})"
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, list):
        return [fill(item, values, where) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values, where) for key, item in value.items()}
    return value


def dig(data: Any, path: str, where: str) -> Any:
    for step in path.split("."):
        assert data is not None, f"{where}: nothing at {path}"
        data = data[int(step)] if isinstance(data, list) else data[step]
    return data


def codes_in(body: dict) -> tuple[list[str], list[dict]]:
    """The error codes of an answer, and its non-empty userErrors."""
    codes = [(error.get("extensions") or {}).get("code") for error in body.get("errors") or []]
    user_errors: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "userErrors" and isinstance(item, list):
                    user_errors.extend(item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body.get("data"))
    return codes + [error.get("code") for error in user_errors], user_errors


def check(example: Example, body: dict) -> None:
    codes, user_errors = codes_in(body)
    if example.expect:
        assert example.expect in codes, f"{example.where}: expected {example.expect}, got {body}"
        return
    assert not body.get("errors"), f"{example.where}: {body['errors']}"
    assert user_errors == [], f"{example.where}: userErrors {user_errors}"
    assert body.get("data") is not None, f"{example.where}: {body}"


SYNC = "subscription($organizationId: ID!) { sessions(organizationId: $organizationId) { sessions { id } } }"

DEMO_IDS = """query {
  organizations(first: 10) { edges { node { id name
    databases { edges { node { id isTypical } } }
    members(first: 20) { edges { node { id user { email } } } }
    sessions(status: ACTIVE, first: 50) { edges { node { id user { email } } } }
    documents(first: 1) { edges { node { id } } }
  } } }
}"""


async def demo_values(runner: Runner) -> dict[str, Any]:
    body = await runner.post(DEMO_IDS, None, "owner@romashka.example")
    assert not body.get("errors"), body
    organizations = {edge["node"]["name"]: edge["node"] for edge in body["data"]["organizations"]["edges"]}
    romashka = next(o for name, o in organizations.items() if "Ромашка" in name)
    databases = [edge["node"] for edge in romashka["databases"]["edges"]]
    sessions = [edge["node"] for edge in romashka["sessions"]["edges"]]
    user_mail = "user@romashka.example"
    values = {
        "romashka": romashka["id"],
        "accounting": next(d["id"] for d in databases if d["isTypical"]),
        "trade": next(d["id"] for d in databases if not d["isTypical"]),
        "userMembership": next(m["node"]["id"] for m in romashka["members"]["edges"] if m["node"]["user"]["email"] == user_mail),
        "activeSession": next(s["id"] for s in sessions if (s["user"] or {}).get("email") != user_mail),
        "usersSession": next(s["id"] for s in sessions if (s["user"] or {}).get("email") == user_mail),
        "document": romashka["documents"]["edges"][0]["node"]["id"],
    }
    vasilek = (await runner.post("{ organizations(first: 1) { edges { node { id } } } }", None, "owner@vasilek.example"))
    values["vasilek"] = vasilek["data"]["organizations"]["edges"][0]["node"]["id"]
    tickets = await runner.post("query($o: ID!) { organization(id: $o) { tickets(first: 1) { edges { node { id } } } } }",
                                {"o": romashka["id"]}, "buh@romashka.example")
    values["ticket"] = tickets["data"]["organization"]["tickets"]["edges"][0]["node"]["id"]
    in_a_week = dt.datetime.now(dt.timezone.utc).replace(hour=22, minute=0, second=0, microsecond=0) + dt.timedelta(days=7)
    values["inAWeek"] = in_a_week.isoformat()
    return values


@pytest_asyncio.fixture(scope="module")
async def runner(docs_server) -> Runner:
    process, url, log, env = docs_server
    await wait_until_serving(process, url, log, timeout=180)  # migrating and seeding a fresh database: slow on a loaded machine
    staff = subprocess.run(
        [sys.executable, "-m", "kabinet.cli", "staff", "create", "--email", STAFF_LOGIN, "--name", "Ольга Модератор",
         "--password", DEMO_PASSWORD], env=env, capture_output=True, text=True, timeout=120,
    )
    assert staff.returncode == 0, staff.stderr
    http = httpx.AsyncClient(base_url=f"http://{url}", timeout=30)
    runner = Runner(http, url, {})
    runner.values.update(await demo_values(runner))
    yield runner
    await http.aclose()


async def test_every_example_answers_on_the_demo_data(runner: Runner):
    ran = 0
    pending: tuple[Example, GraphQLSocket, str] | None = None  # a subscription waiting for the next example
    for example in all_examples():
        if example.run is None or example.skip is not None:
            continue
        variables = fill(json.loads(example.variables), runner.values, example.where) if example.variables else None
        if example.query.lstrip().startswith("subscription"):
            assert pending is None, f"{example.where}: two subscriptions in a row"
            socket = GraphQLSocket(runner.url, TRANSPORT_WS)
            token = await runner.token(example.login) if example.login else None
            acknowledged = await socket.connect(token)
            assert acknowledged["type"] == "connection_ack", (example.where, acknowledged)
            operation = await socket.subscribe(example.query, variables)
            # Subscriptions of one socket start in order: once a `sessions` list (whose first message
            # is its snapshot; an error for an ACCOUNTANT) answers, the example's is live too.
            sync = await socket.subscribe(SYNC, {"organizationId": (variables or {}).get("organizationId", runner.values["romashka"])})
            while (message := await socket.receive(timeout=30)).get("id") != sync:
                assert message.get("id") == operation and message["type"] == "next", f"{example.where}: {message}"
                check(example, message["payload"])  # a first message of its own (a snapshot): it is live already
            pending = (example, socket, operation)
            ran += 1
            continue
        body = await runner.post(example.query, variables, example.login)
        check(example, body)
        for name, path in example.keep.items():
            runner.values[name] = dig(body["data"], path, example.where)
        ran += 1
        if pending is not None:
            subscribed, socket, operation_id = pending
            try:
                message = await socket.receive(timeout=30)
                while message.get("id") != operation_id:
                    message = await socket.receive(timeout=30)
            except TimeoutError:
                raise AssertionError(f"{subscribed.where}: no message after {example.where} ran") from None
            finally:
                await socket.close()
            assert message["type"] == "next", f"{subscribed.where}: {message}"
            check(subscribed, message["payload"])
            pending = None
    assert pending is None, f"{pending[0].where}: a subscription is the last example; nothing makes its event"
    print(f"{ran} documentation examples ran")
    assert ran > 0
