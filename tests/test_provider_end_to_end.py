"""Issue 12's "done when", as a provider would deploy kabinet: an empty database, `kabinet migrate`,
`kabinet staff create`, a provider token, `kabinet supplier set`, `kabinet import` of the documented example files (one of
them sent over HTTP with the token instead), then the customer's owner signs up, claims the
organization as the contact the provider knows, and the dashboard shows the provider's data.

Every step is a real process: the CLI, and `kabinet serve` on a socket. On the PostgreSQL run the
database is a fresh PostgreSQL database of its own; on the SQLite run, a fresh file."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest

from tests.databases import run_admin_sql
from tests.processes import free_port, stop, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "provider"
IMPORT_ORDER = [  # as examples/provider/README.md tells it
    "organizations.csv", "known_contacts.csv", "contracts.ndjson", "products.ndjson", "cloud_subscriptions.ndjson",
    "databases.ndjson", "ledger_entries.csv", "charges.ndjson", "documents.ndjson", "prepaid_services.ndjson",
    "prepaid_service_uses.ndjson",
]
SENT_OVER_HTTP = "prepaid_service_uses.ndjson"  # the last file: nothing imported later names it
SEVERNY_VETER = "8f3a1c2e-5b7d-11ef-9a4c-0050569a1b01"  # its external id in the export
OWNER_PHONE = "+74951234567"  # known_contacts.csv: the provider knows it for that INN

DASHBOARD = """{ organizations { edges { node {
  name inn viewerRole moderationStatus
  products(first: 20) { totalCount edges { node { name } } }
  contracts { number }
  balance { amount prepaidServices { name total used } }
  balanceTransactions(first: 100) { totalCount edges { node { amount balanceAfter } } }
  charges(first: 50) { totalCount }
  documents(first: 50) { totalCount edges { node { number downloadUrl } } }
  cloudSubscription { tariff sessionsLimit databasesLimit }
  databases(first: 10) { totalCount edges { node { name version } } }
} } } }"""


@pytest.fixture
def empty_database(tmp_path):
    admin_url = os.environ.get("KABINET_TEST_DATABASE_URL")
    if not admin_url:
        yield f"sqlite://{tmp_path / 'provider.sqlite3'}"
        return
    name = f"kabinet_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(run_admin_sql(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(run_admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": str(ROOT), "KABINET_DATABASE_URL": database_url,
        "KABINET_DATA_DIR": str(tmp_path / "data"), "KABINET_MAIL_URL": f"file://{tmp_path / 'outbox'}",
        "KABINET_SECRET_KEY": "provider-end-to-end-secret-key-long-enough", "KABINET_BROKER_URL": "memory://",
        "KABINET_SEED_DEMO": "false", "KABINET_MIGRATE_ON_START": "false", "KABINET_CLUSTER_CHURN": "0",
        "KABINET_CODES_PER_CLIENT_HOUR": "1000",
        "KABINET_SMS_BY_MAIL_URL": "true",  # no gateway here: the SMS codes are files in the outbox folder
    }


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kabinet.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def ledger_of(external_id: str) -> list[Decimal]:
    with (EXAMPLES / "ledger_entries.csv").open(encoding="utf-8-sig") as file:
        return [
            Decimal(row["amount"].replace(" ", "").replace("\u00a0", "").replace(",", "."))
            for row in csv.DictReader(file, delimiter=";") if row["organization"] == external_id
        ]


def count_of(file_name: str, external_id: str) -> int:
    return sum(1 for line in (EXAMPLES / file_name).read_text(encoding="utf-8").splitlines() if external_id in line)


async def test_from_an_empty_database_to_the_owners_dashboard(empty_database, tmp_path):
    env = environment(empty_database, tmp_path)
    cli(env, "migrate")
    staff_id = cli(env, "staff", "create", "--email", "moderator@provider.example", "--name", "Ольга Модератор",
                   "--password", "staff-password-1")
    assert staff_id.strip()
    token = cli(env, "provider", "token", "create", "--name", "1c-accounting",
                "--scope", "catalog:write,billing:write,cloud:write").strip()
    assert token.startswith("kps_")
    cli(env, "supplier", "set", str(EXAMPLES / "supplier.toml"))  # documents sent without their PDF print them

    for file_name in IMPORT_ORDER:
        if file_name == SENT_OVER_HTTP:
            continue
        report = tmp_path / f"{file_name}.report.ndjson"
        cli(env, "import", str(EXAMPLES / file_name), "--report", str(report))
        results = [orjson.loads(line) for line in report.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert results and {r["result"] for r in results} <= {"created", "updated"}, (file_name, results)
    # Run again: safe, nothing applied twice.
    cli(env, "import", str(EXAMPLES / "ledger_entries.csv"), "--report", str(tmp_path / "again.ndjson"))

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "kabinet.cli", "serve", "--port", str(port)],
            env={**env, "KABINET_RUN_WORKERS": "true"}, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        await wait_until_serving(server, f"127.0.0.1:{port}", log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            sent = await http.post(
                "/provider/v1/records/prepaid_service_use",
                content=(EXAMPLES / SENT_OVER_HTTP).read_bytes(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
            )
            assert sent.status_code == 200, sent.text
            assert {orjson.loads(line)["result"] for line in sent.text.splitlines()} == {"created"}

            async def graphql(query: str, variables: dict | None = None, access: str | None = None) -> dict:
                headers = {"Authorization": f"Bearer {access}"} if access else {}
                body = (await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)).json()
                assert "errors" not in body, body
                return body["data"]

            registered = (await graphql(
                """mutation($i: RegisterInput!) { register(input: $i) { registrationId userErrors { code field message } } }""",
                {"i": {"fullName": "Ветров Пётр", "phone": OWNER_PHONE, "email": "owner@veter.example", "password": "owner-password-1"}},
            ))["register"]
            assert registered["userErrors"] == []
            code = await sms_code(tmp_path / "outbox")
            confirmed = (await graphql(
                """mutation($id: ID!, $c: String!) { confirmRegistration(registrationId: $id, code: $c) { accessToken userErrors { code } } }""",
                {"id": registered["registrationId"], "c": code},
            ))["confirmRegistration"]
            assert confirmed["userErrors"] == [], confirmed
            access = confirmed["accessToken"]
            claimed = (await graphql(
                """mutation($i: AddOrganizationInput!) { addOrganization(input: $i) {
                  organization { name viewerRole moderationStatus } userErrors { code field message } } }""",
                {"i": {"inn": "7774852600", "kind": "LEGAL_ENTITY", "position": "Генеральный директор"}}, access,
            ))["addOrganization"]
            assert claimed["userErrors"] == [] and claimed["organization"]["viewerRole"] == "OWNER"

            [edge] = (await graphql(DASHBOARD, access=access))["organizations"]["edges"]
            org = edge["node"]
            ledger = ledger_of(SEVERNY_VETER)
            assert (org["name"], org["moderationStatus"]) == ("ООО «Северный ветер»", "APPROVED")
            assert Decimal(org["balance"]["amount"]) == sum(ledger)
            assert org["balanceTransactions"]["totalCount"] == len(ledger)
            assert Decimal(org["balanceTransactions"]["edges"][0]["node"]["balanceAfter"]) == sum(ledger)
            assert org["products"]["totalCount"] == count_of("products.ndjson", SEVERNY_VETER)
            assert org["charges"]["totalCount"] == count_of("charges.ndjson", SEVERNY_VETER)
            assert org["documents"]["totalCount"] == count_of("documents.ndjson", SEVERNY_VETER)
            assert org["cloudSubscription"]["tariff"] == "Облако 1С: Стандарт"
            assert org["databases"]["totalCount"] == count_of("databases.ndjson", SEVERNY_VETER)
            assert org["balance"]["prepaidServices"]
            document = org["documents"]["edges"][0]["node"]
            pdf = await http.get(urlsplit(document["downloadUrl"]).path)
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), (document, pdf.text[:200])
    finally:
        stop(server)


async def sms_code(outbox: Path, timeout: float = 20) -> str:
    """The code of the newest SMS the mail worker wrote (file://)."""
    for _ in range(int(timeout * 10)):
        for path in sorted(outbox.glob("*.sms.txt"), reverse=True):
            found = re.search(r"Код подтверждения: (\d{6})", path.read_text(encoding="utf-8"))
            if found:
                return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS in {outbox}")
