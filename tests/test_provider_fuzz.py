"""Fuzzing every field of every provider entity (issue 17): accepted means readable.

The entities and their fields are read from the code (`resolvers/provider/records.py` ENTITIES, each
`@entity`'s columns): a field nobody fuzzes here fails `test_every_field_of_every_entity_is_fuzzed`.
For each (entity, field), hypothesis sends a record valid but for that field (and now and then a
second one): extreme dates in several zones, 1C's empty date, huge and odd numbers, long and odd
strings (NUL, lone surrogates, RTL, 10,000 characters), wrong types (lists, objects, booleans, null).
The line is applied through `apply`, the one way in of the HTTP API and `kabinet import`: it answers
one line, refused with a field and a reason that quotes no SQL or Python, or accepted — and then the
organization is read back through GraphQL, everything its owner sees (the `organizations` root, its
ledger, documents, products, databases…), without an error.

Derandomized with a fixed number of examples (KABINET_PROVIDER_FUZZ_EXAMPLES, 4 per field), so CI
runs the same inputs every time.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import re
import uuid
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.organizations import Role
from resolvers.provider.records import ENTITIES, SCOPES, Outcome, ProviderActor, Record, apply
from resolvers.common.validation import inn_is_valid
from resolvers.cloud import clusters
from tests import factories
from tests.introspection import ServedSchema

EXAMPLES = int(os.environ.get("KABINET_PROVIDER_FUZZ_EXAMPLES", 4))  # per (entity, field)
STATS: Counter | None = Counter() if os.environ.get("KABINET_FUZZ_STATS") else None  # outcomes per entity, printed at the end
PDF = base64.b64encode(b"%PDF-1.4\n%fuzz\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n").decode()
LEAKS = re.compile(
    r"Traceback|File \"|sqlite|asyncpg|tortoise|IntegrityError|OperationalError|ValidationError|\bSELECT\b|\bINSERT\b|"
    r"\bWHERE\b|violates|NoneType|object has no attribute|KeyError|TypeError|invalid input syntax|out of range for type"
)


def provider_entities() -> dict[str, tuple[str, ...]]:
    """Every entity kabinet itself registers (a test's own entity aside), with its fields."""
    return {name: kind.columns for name, kind in sorted(ENTITIES.items()) if kind.upsert.__module__.startswith("resolvers.provider.")}


FIELDS = provider_entities()


def valid_inn(rng: random.Random) -> str:
    while True:
        body = str(rng.randrange(10**8, 10**9))
        for last in "0123456789":
            if inn_is_valid(body + last):
                return body + last


# ---------------------------------------------------------------- a valid record of each entity


def valid_records(arena: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A record of each entity that applies, every field given (None: an optional field left out).
    External ids are new each time but for the organization and its cloud subscription (one each)."""
    org = arena["external_id"]

    def new(prefix: str) -> str:
        return f"fz-{prefix}-{uuid.uuid4().hex[:12]}"

    return {
        "organization": {"external_id": org, "inn": arena["inn"], "kpp": "773601001", "ogrn": None,
                         "name": "ООО «Фаззинг»", "kind": "LEGAL_ENTITY", "legal_address": "Москва", "deleted": False,
                         "legal_name": "Общество с ограниченной ответственностью «Фаззинг»", "postal_address": "Москва, а/я 1",
                         "bank_name": "ПАО Сбербанк", "bic": "044525225", "correspondent_account": "30101810400000000225",
                         "settlement_account": "40702810938000000001"},
        "manager": {"external_id": new("mg"), "organization": org, "organization_inn": None, "full_name": "Орлова Анна",
                    "title": "Персональный менеджер", "phone": "+74951234567", "email": "orlova@provider.example", "deleted": None},
        "known_contact": {"external_id": new("kc"), "inn": arena["inn"], "phone": factories.unique_phone(), "deleted": None},
        "contract": {"external_id": new("ct"), "organization": org, "organization_inn": None, "kind": "ITS",
                     "number": "ИТС-" + uuid.uuid4().hex[:6], "starts_on": "01.02.2026", "ends_on": "2027-01-31", "deleted": None},
        "product": {"external_id": new("pr"), "organization": org, "organization_inn": None, "name": "1С:Бухгалтерия",
                    "category": "LOCAL_1C", "registration_number": "800100200", "workplaces": 5,
                    "updates_available_until": "2026-12-31", "contract": arena["contract"], "deleted": None},
        "release": {"external_id": new("rl"), "configuration": arena["configuration"],
                    "version": f"3.0.{random.randrange(10**6)}.{random.randrange(10**6)}", "published_at": "2026-01-10T10:00:00Z",
                    "deleted": None},
        "cloud_subscription": {"external_id": arena["subscription"], "organization": org, "organization_inn": None,
                               "tariff": "Облако", "sessions_limit": 50, "databases_limit": 1000, "starts_on": "2026-01-01",
                               "ends_on": "2026-12-31", "deleted": None},
        "database": {"external_id": new("db"), "organization": org, "organization_inn": None, "name": "Бухгалтерия",
                     "configuration": arena["configuration"], "version": "3.0.1.1", "is_typical": True, "size_mb": 1024,
                     "cluster": arena["cluster"], "infobase": new("ib"), "deleted": None},
        "ledger_entry": {"external_id": new("le"), "organization": org, "organization_inn": None, "kind": "TOP_UP",
                         "amount": "10.50", "description": "Оплата", "occurred_at": "15.01.2026 10:00:00",
                         "document": arena["document"], "deleted": None},
        "charge": {"external_id": new("ch"), "organization": org, "organization_inn": None, "kind": "CLOUD_RENTAL",
                   "period": "2026-01", "description": "Аренда", "quantity": "1,5", "unit_price": "100", "amount": "150.00",
                   "database": arena["database"], "deleted": None},
        "document": {"external_id": new("doc"), "organization": org, "organization_inn": None, "kind": "INVOICE",
                     "number": "СЧ-" + uuid.uuid4().hex[:8], "issued_on": "2026-01-31", "period": "2026-01", "amount": "150.00",
                     "currency": "RUB", "visible_from": "2026-01-31", "file_base64": PDF, "file_path": None, "deleted": None},
        "prepaid_service": {"external_id": new("ps"), "organization": org, "organization_inn": None, "name": "Консультации",
                            "unit": "ч", "total": "10", "valid_until": "2026-12-31", "deleted": None},
        "prepaid_service_use": {"external_id": new("pu"), "prepaid_service": arena["prepaid_service"], "quantity": "0.5",
                                "used_on": "2026-01-20", "description": "Консультация", "deleted": None},
    }


# ---------------------------------------------------------------- what is sent instead

ZONES = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12)),
         ZoneInfo("Europe/Moscow"), ZoneInfo("Asia/Kamchatka"), ZoneInfo("America/Adak")]
MOMENTS = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=st.sampled_from(ZONES))
DATES = st.one_of(
    st.sampled_from([
        "01.01.0001 0:00:00", "01.01.0001", "0001-01-01", "0001-01-01T00:00:00", "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00", "31.12.9999 23:59:59", "31.12.9999", "9999-12-31", "1899-12-31", "1900-01-01",
        "1900-01-01T00:00:00+14:00", "2999-12-31T23:59:59-12:00", "2999-12-31", "29.02.2024 0:00:00", "30.02.2026",
        "2026-01-01T00:00:00+23:59", "2026-01-01T25:00:00", "0000-01-01", "2026-13", "0001-01", "9999-12",
    ]),
    MOMENTS.map(dt.datetime.isoformat),
    MOMENTS.map(lambda m: f"{m.day:02d}.{m.month:02d}.{m.year:04d} {m.hour}:{m.minute:02d}:{m.second:02d}"),
    st.dates().map(dt.date.isoformat),
)
NUMBERS = st.one_of(
    st.sampled_from([
        "1e999999", "-1e999999", "1e-999999", "NaN", "-Infinity", "1E+12", "999999999999.99", "-999999999999.99",
        "1000000000000", "99999999999.999", "0.001", "0,005", "1 000 000,50", "2147483647", "2147483648", "-2147483649",
        "1000000", "1000001", "99999999999999999999", "-0", "0x10", "1_000", "٣", "²",
        2**31, 2**63, -(2**63), 10**30, 1e308, -0.0, 0.1, 1.5,
    ]),
    st.integers(), st.decimals(allow_nan=True, allow_infinity=True).map(str), st.floats(allow_nan=False, allow_infinity=False),
)
STRINGS = st.one_of(
    st.sampled_from([
        "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e\u0644\u0627\u202c", "𝔘𝔫𝔦😀", "я" * 10_000, "x" * 101,
        "x" * 201, "x" * 301, "x" * 501, "'; DROP TABLE organization; --", "\r\n", "\t\x01\x7f", "%", "\\", "null",
        "7707083893", "773601001", "1027700132195", "+79161234567", "true", "да",
    ]),
    st.text(alphabet=st.characters(codec=None), max_size=60),
)
WRONG_TYPES = st.sampled_from([[], ["a"], {}, {"a": 1}, True, False, None, [None], {"external_id": "x"}])
NASTY = st.one_of(DATES, NUMBERS, STRINGS, WRONG_TYPES)

ACTOR_SCOPES = frozenset(SCOPES)


# ---------------------------------------------------------------- reading everything back

def selection(schema: ServedSchema, type_name: str, depth: int, seen: tuple[str, ...] = (), lists: bool = True) -> str:
    """Every field of `type_name` an owner may select without arguments, objects followed to `depth`
    (not back into a type already on the path); lists paged by 5 and only at the first level (the
    query stays within the cost limit)."""
    parts = []
    for name, field_ in schema.fields(type_name).items():
        if any(schema.required(a) for a in field_["args"]):
            continue
        target = schema.named(field_["type"])
        if schema.kind(target) in ("SCALAR", "ENUM"):
            parts.append(name)
            continue
        if depth == 0 or target in seen or schema.kind(target) not in ("OBJECT", "INTERFACE"):
            continue
        paging = "(first: 5)" if any(a["name"] == "first" for a in field_["args"]) else ""
        if schema.is_connection(target) or schema.is_list(field_["type"]):
            if not lists:
                continue
            if schema.is_connection(target):
                node = schema.connection_node(target)
                if node not in seen and (inner := selection(schema, node, depth - 1, (*seen, type_name), lists=False)):
                    parts.append(f"{name}{paging} {{ totalCount edges {{ cursor node {{ {inner} }} }} }}")
                continue
        inner = selection(schema, target, depth - 1, (*seen, type_name), lists=lists and not schema.is_list(field_["type"]))
        if inner:
            parts.append(f"{name}{paging} {{ {inner} }}")
    return " ".join(parts)


@pytest_asyncio.fixture(scope="module")
async def arena(app, gql) -> dict[str, Any]:
    """An organization of the provider's, owned by a user of this file, with a contract, a cloud
    subscription, a database, a document and a prepaid package for records to refer to."""
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    organization.inn = valid_inn(random.Random(organization.id.int))
    organization.external_id = f"fz-org-{uuid.uuid4().hex[:10]}"
    await organization.save(update_fields=["inn", "external_id"])
    arena: dict[str, Any] = {
        "external_id": organization.external_id, "inn": organization.inn, "subscription": f"fz-cs-{uuid.uuid4().hex[:10]}",
        "configuration": f"Бухгалтерия предприятия {uuid.uuid4().hex[:6]}", "contract": None, "document": None,
        "database": None, "prepaid_service": None,
        "cluster": (await clusters.add(f"fz-{uuid.uuid4().hex[:10]}")).name,
    }
    records = valid_records(arena)
    for name, key in (("contract", "contract"), ("cloud_subscription", None), ("database", "database"),
                      ("document", "document"), ("prepaid_service", "prepaid_service")):
        values = {k: v for k, v in records[name].items() if v is not None}
        [result] = await apply(ProviderActor("CLI", "fuzz", ACTOR_SCOPES), name, [Record(1, values)])
        assert result.outcome is Outcome.CREATED, result
        if key:
            arena[key] = values["external_id"]
    schema = await ServedSchema.fetch(gql)
    arena["query"] = f"{{ organizations(first: 5) {{ edges {{ node {{ {selection(schema, 'Organization', 3)} }} }} }} }}"
    arena["owner"] = team[Role.OWNER].email
    await gql.token_for_password(arena["owner"], factories.PASSWORD)
    return arena


async def read_back(gql, arena: dict[str, Any], where: str) -> None:
    body = await gql.execute(arena["query"], as_user=arena["owner"])
    assert "errors" not in body, f"{where}: {body['errors'][:3]}"
    names = [edge["node"]["inn"] for edge in body["data"]["organizations"]["edges"]]
    assert arena["inn"] in names, f"{where}: the organization is not read back ({names})"


def test_every_field_of_every_entity_is_fuzzed(app):
    """The valid records list exactly the fields each entity takes: a new entity or field fails here
    until it is fuzzed too."""
    placeholders = {"external_id": "x", "inn": "7707083893", "subscription": "x", "configuration": "x", "contract": "x",
                    "document": "x", "database": "x", "prepaid_service": "x", "cluster": "x"}
    valid = valid_records(placeholders)
    assert sorted(valid) == sorted(FIELDS), "an entity without a valid record here"
    for name, columns in FIELDS.items():
        assert sorted(valid[name]) == sorted(columns), f"{name}: fuzzed {sorted(valid[name])}, takes {sorted(columns)}"


CASES = [(name, field) for name, columns in FIELDS.items() for field in columns]


@pytest.mark.parametrize(("entity", "field"), CASES, ids=[f"{e}.{f}" for e, f in CASES])
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_any_value_of_any_field_is_refused_on_its_line_or_read_back(arena, gql, entity, field, data):
    values = valid_records(arena)[entity]
    values[field] = data.draw(NASTY, label=field)
    if data.draw(st.booleans(), label="and another field"):
        other = data.draw(st.sampled_from(FIELDS[entity]), label="other field")
        values[other] = data.draw(NASTY, label=other)
    values = {k: v for k, v in values.items() if v is not None or k == field}
    where = f"{entity}.{field} = {str(values)[:400]}"
    results = await apply(ProviderActor("CLI", "fuzz", ACTOR_SCOPES), entity, [Record(1, values)])
    assert len(results) == 1 and results[0].line == 1, where
    result = results[0]
    if STATS is not None:
        STATS[(entity, result.outcome.value)] += 1
    if result.outcome is Outcome.REFUSED:
        assert result.reason, where
        assert not LEAKS.search(result.reason), f"implementation text in a refusal: {result.reason[:300]} for {where}"
    else:
        await read_back(gql, arena, where)


def teardown_module() -> None:
    if STATS is not None:
        print("", *(f"{entity} {outcome}: {n}" for (entity, outcome), n in sorted(STATS.items())), sep="\n")
