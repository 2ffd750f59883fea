"""The front page at `/` in a real browser: Debian's headless Chromium, driven by Playwright, against
`kabinet serve` on the embedded default (a fresh SQLite database with the demo data set).

One server and one browser for the file; the steps are the ones a person takes: sign in as the demo
owner, read the balance, terminate a session and see it leave the live list (graphql-transport-ws),
download a document (a PDF), reload and stay signed in (the refresh token), follow an update run to
its end (the updateRuns subscription). No page error and no
Content-Security-Policy violation on the way. The screenshot it takes is the one kept in
docs/front-page.png: `KABINET_KEEP_SCREENSHOT=1` writes it there (otherwise to the temporary folder, so
a test run leaves the working tree as it was).

Skipped when /usr/bin/chromium (or the playwright package) is missing; .ci/run installs chromium.
Playwright's own browsers are never downloaded: executable_path points at Debian's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from kabinet.demo.blocks import DEMO_PASSWORD
from tests.databases import migrated_sqlite
from tests.processes import free_port, stop

CHROMIUM = os.environ.get("KABINET_TEST_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = (ROOT / "docs" if os.environ.get("KABINET_KEEP_SCREENSHOT") else Path(tempfile.gettempdir())) / "front-page.png"
OWNER = "owner@romashka.example"
# A deadline for what the page waits on (a cold start of the browser, the simulated cluster confirming
# a termination), never a measure: the suite shares the machine.
WAIT_MS = 30_000

if os.environ.get("KABINET_TEST_DATABASE_URL"):
    pytest.skip("the browser test serves the embedded default (SQLite) whatever the run: the PostgreSQL run does not repeat it",
                allow_module_level=True)
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (make venv)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kabinet serve` on a free port: a SQLite database of its own (migrated: a copy of the run's
    template), the demo, the sessions held still."""
    folder = tmp_path_factory.mktemp("front")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("KABINET_")}
    env.update({"KABINET_DATA_DIR": str(folder / "data"), "KABINET_CLUSTER_CHURN": "0", "PYTHONPATH": str(ROOT)})
    migrated_sqlite(tmp_path_factory, folder / "data" / "kabinet.sqlite3")
    log = folder / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "kabinet.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180  # migrating and seeding a fresh database: slow on a loaded machine
        while True:
            assert process.poll() is None, f"kabinet serve died:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"kabinet serve did not become ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def as_owner(base_url: str, query: str, variables: dict | None = None) -> dict:
    """A GraphQL answer's data for the demo owner, over the API any client uses."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/graphql", json={
            "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            "variables": {"i": {"login": OWNER, "password": DEMO_PASSWORD}},
        }).json()["data"]["login"]
        answer = client.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers={"Authorization": f"Bearer {login['accessToken']}"}).json()
    assert "errors" not in answer, answer
    return answer["data"]


def romashka(base_url: str) -> dict:
    data = as_owner(base_url, """{ organizations { edges { node { name balance { amount }
        databases { edges { node { id isTypical } } } } } } }""")
    (organization,) = [e["node"] for e in data["organizations"]["edges"] if "Ромашка" in e["node"]["name"]]
    return organization


def update_in_a_few_seconds(base_url: str) -> None:
    """A one-off update of Romashka's typical database, due a few seconds from now."""
    (database,) = [e["node"] for e in romashka(base_url)["databases"]["edges"] if e["node"]["isTypical"]]
    at = (datetime.now(timezone.utc) + timedelta(seconds=3)).isoformat()
    payload = as_owner(base_url, """mutation($d: ID!, $at: DateTime!) {
        scheduleOneOffUpdate(databaseId: $d, at: $at) { userErrors { code message } } }""", {"d": database["id"], "at": at})
    assert payload["scheduleOneOffUpdate"]["userErrors"] == []


def test_the_owner_signs_in_sees_the_balance_terminates_a_session_downloads_a_document_and_follows_an_update(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="ru-RU")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        response = page.goto(server + "/")
        assert response.status == 200 and "default-src 'self'" in response.headers["content-security-policy"]

        # the demo is on: its logins are offered; the owner signs in through the form
        page.wait_for_selector(f"button[data-demo-login='{OWNER}']", timeout=WAIT_MS)
        page.fill("input[name=login]", OWNER)
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("form button[type=submit]")

        # the balance, with its runway, as the API has it
        amount = page.wait_for_selector("#balance .amount", timeout=WAIT_MS).inner_text()
        assert re.sub(r"\D", "", amount) == re.sub(r"\D", "", romashka(server)["balance"]["amount"]), amount
        assert "Средств хватит примерно на" in page.inner_text("#balance")

        # the live session list (a subscription over the WebSocket): terminate one, see it leave
        page.wait_for_selector("#sessions tr[data-session]", timeout=WAIT_MS)
        rows = page.query_selector_all("#sessions tr[data-session]")
        assert len(rows) >= 8, "the demo's active sessions"
        page.wait_for_selector("#databases td", timeout=WAIT_MS)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        victim = rows[-1].get_attribute("data-session")
        page.click(f"#sessions tr[data-session='{victim}'] button")
        page.wait_for_selector(f"#sessions tr[data-session='{victim}']", state="detached", timeout=WAIT_MS)
        assert len(page.query_selector_all("#sessions tr[data-session]")) == len(rows) - 1

        # a document downloads, and it is a PDF
        with page.expect_download(timeout=WAIT_MS) as download_info:
            page.click("#documents button[data-document]")
        path = download_info.value.path()
        assert Path(path).read_bytes()[:5] == b"%PDF-", download_info.value.suggested_filename

        # a reload keeps the sign-in: the page exchanges its refresh token for a new access token
        page.reload()
        page.wait_for_selector("#balance .amount", timeout=WAIT_MS)
        assert page.query_selector("input[name=password]") is None

        # an update's progress as it runs (the updateRuns subscription): it ends at 100 %, «выполнено»
        update_in_a_few_seconds(server)
        page.wait_for_selector("#updates progress", timeout=WAIT_MS)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#updates progress')].some((bar) => bar.value === 100)", timeout=WAIT_MS)
        assert "выполнено" in page.inner_text("#updates")

        assert problems == [], problems
    finally:
        context.close()


def test_the_page_refreshes_its_access_token_before_it_expires(server, browser):
    """The browser's clock is moved on (Playwright's fake timers), not waited for: a minute before the
    access token would expire the page exchanges its refresh token, and then works on the new one."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    page = context.new_page()
    refreshes: list[dict] = []
    page.on("request", lambda request: refreshes.append(request.post_data_json)
            if request.method == "POST" and "FrontRefresh" in (request.post_data or "") else None)
    try:
        page.clock.install()
        page.goto(server + "/")
        page.click(f"button[data-demo-login='{OWNER}']")
        page.wait_for_selector("#balance .amount", timeout=WAIT_MS)
        assert refreshes == []

        with page.expect_response(lambda response: "FrontRefresh" in (response.request.post_data or ""), timeout=WAIT_MS) as answer:
            page.clock.fast_forward("14:30")  # the access token lives 15 minutes on the embedded default
        tokens = answer.value.json()["data"]["refreshToken"]
        assert tokens["userErrors"] == [] and tokens["accessToken"]
        assert len(refreshes) == 1

        # the new access token works: a download link is asked for with it
        with page.expect_response(lambda response: "FrontDownload" in (response.request.post_data or ""), timeout=WAIT_MS) as link:
            page.click("#documents button[data-document]")
        assert link.value.json()["data"]["node"]["downloadUrl"].startswith("/files/")
    finally:
        context.close()
