"""Accepted means readable (issue 17, findings 8 and 9): a value the provider's records carry is
either refused on its line, naming the field and why, or stored so that every GraphQL path that
shows it reads it back. One bad line never takes its batch down, through the API or `kabinet
import`; the staff desk over HTTP answers a wrong type or an oversized value with a 400 naming the
field."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import orjson
import pytest

from models.billing import BalanceTransaction
from models.cloud import CloudSubscription, Database
from models.organizations import Membership, Role
from models.provider import readable_provider_dates
from resolvers.common.pagination import encode_cursor
from resolvers.provider.imports import import_file
from resolvers.provider.records import NOT_STORED, Outcome
from tests.test_provider_api import answers, bearer, new_token
from tests.test_provider_billing import as_owner, entry, ledger, provider_org, send, uid
from tests.test_provider_billing import actor as provider_actor

LEDGER = """{ organizations { edges { node { id name balance { amount }
  balanceTransactions(first: 100) { totalCount edges { node { kind amount balanceAfter occurredAt description } } } } } } }"""


@pytest.fixture(autouse=True)
def _database(app):
    """Every test here writes through the models: the app's database is connected."""


def no_errors(body: dict) -> dict:
    assert "errors" not in body, body["errors"]
    return body["data"]


# ---------------------------------------------------------------- finding 8: 1C's empty date


@pytest.mark.parametrize("occurred_at", [
    "01.01.0001 0:00:00", "01.01.0001", "0001-01-01", "0001-01-01T00:00:00",  # 1C's empty date, as 1C and ISO write it
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "31.12.9999 23:59:59",  # beyond what Python holds once in UTC
    "1899-12-31", "3000-01-01T00:00:00Z",  # outside the dates kabinet keeps
])
async def test_an_entry_at_an_impossible_moment_is_refused_and_the_organization_reads(gql, occurred_at):
    org, team = await provider_org()
    good = uid("le")
    results = await send("ledger_entry", entry(org, uid("le"), "10.00", occurred_at), entry(org, good, "5.00", "2026-01-01"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "occurred_at"), (Outcome.CREATED, None)]
    assert "occurred_at" not in results[0].reason and results[0].reason
    node = no_errors(await as_owner(gql, team, LEDGER))["organizations"]["edges"][0]["node"]
    assert node["balance"]["amount"] == "5.00" and node["balanceTransactions"]["totalCount"] == 1


async def test_1c_empty_date_is_no_date_where_the_date_is_optional_and_refused_where_required():
    org, _ = await provider_org()
    contract, product, package = uid("ct"), uid("pr"), uid("ps")
    results = [
        *await send("contract", {"external_id": contract, "organization": org.external_id, "kind": "ITS", "number": "ИТС-1",
                                 "starts_on": "01.02.2026", "ends_on": "01.01.0001 0:00:00"}),
        *await send("contract", {"external_id": uid("ct"), "organization": org.external_id, "kind": "ITS", "number": "ИТС-2",
                                 "starts_on": "01.01.0001 0:00:00"}),
        *await send("product", {"external_id": product, "organization": org.external_id, "name": "1С:Бухгалтерия",
                                "category": "LOCAL_1C", "updates_available_until": "01.01.0001"}),
        *await send("prepaid_service", {"external_id": package, "organization": org.external_id, "name": "Консультации",
                                        "unit": "ч", "total": "10", "valid_until": "0001-01-01"}),
    ]
    assert [(r.outcome, r.field) for r in results] == [
        (Outcome.CREATED, None), (Outcome.REFUSED, "starts_on"), (Outcome.CREATED, None), (Outcome.CREATED, None),
    ]
    assert "1C's empty date" in results[1].reason


async def test_an_entry_of_year_one_stored_before_this_fix_is_made_readable_by_the_migration(gql):
    """A moment kept before the readers refused it (year 1 at +14:00: year 0 in UTC, which no driver
    reads back) took down every organization of its viewer; migration 0015 (`readable_provider_dates`)
    moves it to the earliest moment kabinet keeps, and the ledger keeps its order and balances."""
    org, team = await provider_org()
    other, _ = await provider_org()
    await Membership.create(user_id=team[Role.OWNER].id, organization_id=other.id, role=Role.OWNER)
    first, second = uid("le"), uid("le")
    await send("ledger_entry", entry(org, first, "7.00", "2026-01-01"), entry(org, second, "1.00", "2026-01-02"))
    await send("ledger_entry", entry(other, uid("le"), "3.00", "2026-01-01"))
    client = BalanceTransaction._meta.db
    # as an earlier kabinet kept it (SQLite: the text as written), or as it could be written (PostgreSQL)
    await client.execute_script(
        "UPDATE balance_transaction SET occurred_at = '0001-01-01 00:00:00+14:00' "
        f"WHERE external_id = '{first}'"
    )
    assert (await as_owner(gql, team, LEDGER))["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

    await readable_provider_dates(client)
    data = no_errors(await as_owner(gql, team, LEDGER))
    by_balance = {e["node"]["balance"]["amount"]: e["node"] for e in data["organizations"]["edges"]}
    assert set(by_balance) == {"8.00", "3.00"}
    entries = [e["node"] for e in by_balance["8.00"]["balanceTransactions"]["edges"]]
    assert [(e["amount"], e["balanceAfter"], e["occurredAt"][:10]) for e in entries] == [
        ("1.00", "8.00", "2026-01-02"), ("7.00", "7.00", "1900-01-01"),
    ]


# ---------------------------------------------------------------- finding 9: one bad value, one line


def database_record(org, **more) -> dict:
    return {"external_id": uid("db"), "organization": org.external_id, "name": "Бухгалтерия", "configuration": "Бухгалтерия",
            "version": "3.0.1", "is_typical": True, **more}


async def cloud_org():
    org, team = await provider_org()
    [opened] = await send("cloud_subscription", {
        "external_id": uid("cs"), "organization": org.external_id, "tariff": "Облако", "sessions_limit": 5,
        "databases_limit": 100, "starts_on": "2026-01-01", "ends_on": "2026-12-31",
    })
    assert opened.outcome is Outcome.CREATED, opened
    return org, team


async def test_an_overlong_external_id_is_refused_on_its_line_and_the_rest_of_the_batch_applies():
    org, _ = await provider_org()
    good = uid("le")
    results = await send("ledger_entry", entry(org, "x" * 101, "1.00", "2026-01-01"), entry(org, good, "2.00", "2026-01-02"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "external_id"), (Outcome.CREATED, None)]
    cloud, _ = await cloud_org()
    results = await send("database", database_record(cloud, external_id="y" * 101), database_record(cloud))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "external_id"), (Outcome.CREATED, None)]
    assert "100" in results[0].reason


async def test_an_overlong_configuration_is_refused_on_its_line():
    org, _ = await cloud_org()
    results = await send("database", database_record(org, configuration="К" * 201), database_record(org))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "configuration"), (Outcome.CREATED, None)]
    assert "200" in results[0].reason


async def test_a_reference_longer_than_its_column_is_refused_on_its_line_not_its_batch():
    """A batch reads the rows its records name in one query; a value longer than the column (an INN of
    13 characters, a release's configuration of 201) is no row's, and used to fail that query."""
    org, _ = await provider_org()
    named_by_inn = {k: v for k, v in entry(org, uid("le"), "1.00", "2026-01-01").items() if k != "organization"}
    results = await send("ledger_entry", dict(named_by_inn, organization_inn="7" * 13), entry(org, uid("le"), "2.00", "2026-01-02"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "organization_inn"), (Outcome.CREATED, None)]
    release = {"version": "3.0.1.1", "published_at": "2026-01-01T00:00:00Z"}
    results = await send("release", dict(release, external_id=uid("rl"), configuration="К" * 201),
                         dict(release, external_id=uid("rl"), configuration=f"Бухгалтерия {uid('c')}"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "configuration"), (Outcome.CREATED, None)]


@pytest.mark.parametrize("amount", ["1e999999", "1000000000000.00", "-1000000000000", "99999999999999999999", "1E+12"])
async def test_a_huge_amount_is_refused_on_its_line(amount):
    org, _ = await provider_org()
    results = await send("ledger_entry", entry(org, uid("le"), amount, "2026-01-01"), entry(org, uid("le"), "2.00", "2026-01-02"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "amount"), (Outcome.CREATED, None)]


async def test_a_ledger_whose_balance_would_overflow_refuses_the_entry_that_would_and_keeps_the_rest():
    org, _ = await provider_org()
    near = "999999999999.00"
    results = await send("ledger_entry", entry(org, uid("le"), near, "2026-01-01"), entry(org, uid("le"), near, "2026-01-02"),
                         entry(org, uid("le"), "-5.00", "2026-01-03"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.CREATED, None), (Outcome.REFUSED, "amount"), (Outcome.CREATED, None)]
    assert [row[2] for row in await ledger(org)] == [Decimal(near), Decimal("999999999994.00")]


@pytest.mark.parametrize("field", ["sessions_limit", "databases_limit"])
async def test_a_huge_limit_is_refused_on_its_line(field):
    org, _ = await provider_org()
    base = {"organization": org.external_id, "tariff": "Облако", "sessions_limit": 5, "databases_limit": 3,
            "starts_on": "2026-01-01", "ends_on": "2026-12-31"}
    results = await send("cloud_subscription", {**base, "external_id": uid("cs"), field: 2**31},
                         {**base, "external_id": uid("cs")})
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, field), (Outcome.CREATED, None)]


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", ["a"], {"a": 1}, True])
async def test_a_value_no_column_can_hold_is_refused_on_its_line(value):
    org, _ = await provider_org()
    results = await send("ledger_entry", entry(org, uid("le"), "1.00", "2026-01-01", description=value),
                         entry(org, uid("le"), "2.00", "2026-01-02"))
    assert [(r.outcome, r.field) for r in results] == [(Outcome.REFUSED, "description"), (Outcome.CREATED, None)]


async def test_a_bad_value_in_an_import_is_one_refused_line_and_the_import_goes_on(tmp_path):
    org, _ = await provider_org()
    good = uid("le")
    lines = [entry(org, "x" * 101, "1.00", "2026-01-01"), entry(org, uid("le"), "1e999999", "2026-01-01"),
             entry(org, uid("le"), "1.00", "01.01.0001 0:00:00"), entry(org, good, "2.00", "2026-01-02")]
    path = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.ndjson"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    summary = await import_file(path, provider_actor(), entity="ledger_entry", batch=500)
    assert (summary.created, summary.refused) == (1, 3)
    assert [row[3] for row in await ledger(org)] == [good]


async def test_through_the_api_a_bad_line_is_refused_and_the_good_one_after_it_applies(client):
    org, _ = await cloud_org()
    token = await new_token("cloud:write")
    body = b"\n".join(orjson.dumps(r) for r in [database_record(org, size_mb=2**40), database_record(org, external_id="z" * 500),
                                                database_record(org, name="a\x00b"), database_record(org, version=[1]),
                                                database_record(org)])
    got = answers(await client.post("/provider/v1/records/database", content=body, headers=bearer(token)))
    assert [(a["result"], a.get("field")) for a in got] == [
        ("refused", "size_mb"), ("refused", "external_id"), ("refused", "name"), ("refused", "version"), ("created", None),
    ]
    assert got[1]["externalId"] is None  # an over-long id is not echoed back
    assert await Database.filter(organization_id=org.id).count() == 1


async def test_a_database_error_in_a_bulk_write_refuses_only_its_line(monkeypatch):
    """Should a value still reach the database and be refused there, the batch is applied again line
    by line: the line the database refuses is answered refused (with no SQL in the reason), the others apply."""
    from resolvers.provider import records as records_module

    org, _ = await provider_org()
    bad, good = uid("le"), uid("le")
    real = records_module.text

    def text_letting_through(record, name, **options):
        if name == "description" and record.values.get("external_id") == bad:
            return "д" * 600  # over the column: refused in the bulk insert
        return real(record, name, **options)

    monkeypatch.setattr("resolvers.provider.ledger.text", text_letting_through)
    results = await send("ledger_entry", entry(org, good, "2.00", "2026-01-02"), entry(org, bad, "1.00", "2026-01-01"))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REFUSED]
    assert results[1].reason == NOT_STORED
    assert [row[3] for row in await ledger(org)] == [good]


# ---------------------------------------------------------------- finding 9: the staff desk over HTTP


@pytest.mark.parametrize(("path", "body", "field"), [
    ("approve", {"inn": "7707083893", "kpp": 5}, "kpp"),
    ("approve", {"inn": "7" * 30_000}, "inn"),
    ("approve", {"inn": ["7707083893"]}, "inn"),
    ("approve", {"inn": {"a": 1}}, "inn"),
    ("approve", {"inn": True}, "inn"),
    ("approve", {"inn": "7707083893", "kpp": "1" * 5000}, "kpp"),
    ("approve", {"inn": "77\x0007083893"}, "inn"),
    ("reject", {"inn": "7707083893", "reason": ["no"]}, "reason"),
    ("reject", {"inn": "7707083893", "reason": "я" * 20_000}, "reason"),
    ("reject", {"inn": 7707083893.5, "reason": "нет"}, "inn"),
])
async def test_the_staff_desk_answers_a_wrong_type_or_an_oversized_value_with_a_400_naming_the_field(client, path, body, field):
    token = await new_token("staff")
    response = await client.post(f"/provider/v1/staff/organizations/{path}", content=orjson.dumps(body), headers=bearer(token))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("INVALID", field), error
    assert "Traceback" not in response.text


async def test_the_staff_desk_refuses_a_body_over_its_limit_before_reading_a_field(client):
    """Finding 9's 100,000-character INN: a staff request is small, so such a body is a 413 in the
    API's error shape (kabinet/provider_staff_api.py STAFF_BODY_BYTES), not a 500."""
    token = await new_token("staff")
    response = await client.post(
        "/provider/v1/staff/organizations/approve", content=orjson.dumps({"inn": "7" * 100_000}), headers=bearer(token),
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "TOO_LARGE"
    assert "Traceback" not in response.text


@pytest.mark.parametrize("query", [
    "?entity=" + "e" * 30_000, "?entity=%00", "?first=" + "9" * 5000, "?after=" + "a" * 30_000, "?status=" + "s" * 30_000,
    "?first=-1", "?after=%00", "?after=" + encode_cursor(["\x00", "x"]), "?after=" + encode_cursor(["not a moment", "x"]),
    "?after=" + encode_cursor([1, 2, 3, 4, 5]), "?after=" + encode_cursor([{"a": 1}]),
])
async def test_the_staff_desk_lists_answer_odd_parameters_without_a_500(client, query):
    token = await new_token("staff")
    for path in ("refused-records", "delivery-failures", "organizations"):
        response = await client.get(f"/provider/v1/staff/{path}{query}", headers=bearer(token))
        assert response.status_code in (200, 400), (path, response.status_code, response.text[:300])
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "INVALID"


async def test_a_batch_applied_again_line_by_line_costs_a_bounded_number_of_statements_a_line():
    """What a sender can make kabinet do by failing every batch (an entry that would overflow the
    balance first in each): the batch once, then each line once, a few statements a line — not more
    per line as the batch grows."""
    from kabinet.db import count_sql

    async def statements(lines: int) -> int:
        org, _ = await provider_org()
        overflow = entry(org, uid("le"), "999999999999.00", "2026-01-01")
        await send("ledger_entry", overflow)
        values = [entry(org, uid("le"), "999999999999.00", "2026-01-02")]
        values += [entry(org, uid("le"), "-1.00", f"2026-01-03T00:00:{i:02d}Z") for i in range(lines - 1)]
        with count_sql() as counter:
            results = await send("ledger_entry", *values)
        assert [r.outcome for r in results] == [Outcome.REFUSED] + [Outcome.CREATED] * (lines - 1)
        return len(counter.statements)

    small, large = await statements(5), await statements(25)
    per_line = (large - small) / 20
    assert per_line <= 12, (small, large)
