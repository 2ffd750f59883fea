"""Fuzzing every mutation of the served schema (issue 10): whatever the input, a clear answer.

For each mutation (read by introspection, so a new one is fuzzed without being listed), hypothesis
makes inputs from its argument types: strings (empty, huge, unicode, NUL, SQL), integers beyond
32 bits, dates and decimals that do not parse, enums that do not exist, ids that are garbage, of
another type, of another organization or of nothing, nulls where a value is required, unknown input
fields. Each is sent as a demo OWNER, a demo ACCOUNTANT, nobody, or the OWNER / ACCOUNTANT of an
organization made for this file. Every answer must be a payload (success, or `userErrors` with known
codes) or GraphQL errors with an `extensions.code` other than INTERNAL_SERVER_ERROR; never a 5xx,
never driver, SQL or Python text; and a refused call leaves the row counts as they were.

What could break the rest of the suite is kept away from the demo data: the demo personas get only
ids that are not their organization's (so nothing of Ромашка changes unless a mutation accepts a
foreign id, which is itself a failure); removing members, leaving, transferring ownership and
addOrganization run on the organization of this file; logins, codes and tokens are random strings,
never a demo login; and the calls come from a client address of their own, so per-address limits
do not reach other tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import introspection_from_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation.settings import Settings
from models.audit import AuditEntry
from models.cloud import CloudSubscription, Database, Session, SubscriptionExtension
from models.identity import RefreshToken, User, VerificationCode
from models.organizations import DatabaseGrant, Invite, InviteDatabase, JoinRequest, Membership, Organization, Role
from models.outbox import OutboxMessage
from models.products import Contract, Product
from models.billing import BalanceTransaction, Charge, Document
from models.updates import Release, UpdateRun, UpdateRunStatus
from foundation.ids import from_global_id, to_global_id
from schema.build import build_schema
from tests import factories
from tests.introspection import ServedSchema

EXAMPLES = int(os.environ.get("KABINET_FUZZ_EXAMPLES", 12))  # per mutation; the whole file stays well under a minute on SQLite
STATS: dict | None = {} if os.environ.get("KABINET_FUZZ_STATS") else None  # outcomes per mutation, printed at the end
FUZZ_CLIENT = ("198.51.100.77", 40_000)  # TEST-NET-2: per-address limits hit by fuzzing stay here
VASILEK_INN = "771234567859"


def _schema_in_code() -> ServedSchema:
    """The schema the app builds, for parametrizing at collection (the served one is checked to match)."""
    settings = Settings(_env_file=None, database_url="sqlite://:memory:", secret_key="x" * 40)
    return ServedSchema(introspection_from_schema(build_schema(settings)._schema))


CODE_SCHEMA = _schema_in_code()
MUTATIONS = sorted(CODE_SCHEMA.fields(CODE_SCHEMA.mutation_type))

# Types of the ids in the database, for handing a mutation ids of every kind.
MODELS: dict[str, type] = {
    "Organization": Organization, "Membership": Membership, "Invite": Invite, "JoinRequest": JoinRequest,
    "Database": Database, "Session": Session, "UpdateRun": UpdateRun, "CloudSubscription": CloudSubscription,
    "Product": Product, "Contract": Contract, "BalanceTransaction": BalanceTransaction, "Charge": Charge,
    "Document": Document, "AuditEntry": AuditEntry,
}
# Rows a refused mutation must not leave behind (counted before and after each refused call).
COUNTED = (
    Organization, Membership, DatabaseGrant, Invite, InviteDatabase, JoinRequest, User, UpdateRun,
    SubscriptionExtension, Release, RefreshToken, OutboxMessage, VerificationCode, AuditEntry,
)
LEAKS = re.compile(
    r"Traceback|File \"|sqlite|asyncpg|psycopg|tortoise|IntegrityError|OperationalError|"
    r"\bSELECT\b|\bINSERT\b|\bUPDATE \"|\bWHERE\b|violates|NoneType|object has no attribute|KeyError|"
    r"ValueError|TypeError|invalid input syntax|Cannot return null",
)


async def ids_of(organization: Organization) -> list[str]:
    """Global ids of everything of an organization (a few per type), its people included."""
    ids = [to_global_id("Organization", organization.id)]
    for type_name, model in MODELS.items():
        if type_name == "Organization":
            continue
        for row in await model.filter(organization_id=organization.id).order_by("-created_at").limit(3):
            ids.append(to_global_id(type_name, row.id))
    for user_id in await Membership.filter(organization_id=organization.id).values_list("user_id", flat=True):
        ids.append(to_global_id("User", user_id))
    return ids


@pytest_asyncio.fixture(scope="module")
async def arena(app, gql) -> dict[str, Any]:
    """An organization of this file's own with a member of each role, a database granted to the USER,
    sessions, a pending invite, a join request and a planned update run; the demo ids it may not use."""
    organization, users = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await factories.create_database(organization)
    await factories.create_database(organization, typical=False, name="Своя")
    memberships = {m.role: m for m in await Membership.filter(organization_id=organization.id)}
    await DatabaseGrant.create(membership=memberships[Role.USER], database=database)
    await factories.create_session(database, user=users[Role.USER])
    await factories.create_session(database, user_name="Кассир")
    now = dt.datetime.now(dt.timezone.utc)
    await CloudSubscription.create(organization=organization, tariff="Облако", sessions_limit=5, databases_limit=3,
                                   starts_on=now.date().replace(day=1), ends_on=now.date() + dt.timedelta(days=30))
    invite = await Invite.create(organization=organization, email=factories.unique_email("invitee"), role=Role.USER,
                                 token_hash=uuid.uuid4().hex, expires_at=now + dt.timedelta(days=7), invited_by=users[Role.OWNER])
    await InviteDatabase.create(invite=invite, database=database)
    await JoinRequest.create(organization=organization, user=await factories.create_user(), position="Юрист")
    await UpdateRun.create(organization=organization, database=database, status=UpdateRunStatus.SCHEDULED,
                           scheduled_for=now + dt.timedelta(days=2))
    romashka = await Organization.get(inn="7707083893")
    vasilek = await Organization.get(inn=VASILEK_INN)
    tokens = {
        "demo OWNER": await gql.token_for("owner@romashka.example"),
        "demo ACCOUNTANT": await gql.token_for("buh@romashka.example"),
        "OWNER": await gql.token_for_password(users[Role.OWNER].email, factories.PASSWORD),
        "ACCOUNTANT": await gql.token_for_password(users[Role.ACCOUNTANT].email, factories.PASSWORD),
        "nobody": None,
    }
    foreign = await ids_of(vasilek)
    own = await ids_of(organization)
    shared = [to_global_id("Release", pk) for pk in await Release.all().limit(2).values_list("id", flat=True)]
    transport = httpx.ASGITransport(app=app, client=FUZZ_CLIENT)
    async with httpx.AsyncClient(transport=transport, base_url="http://kabinet.test") as client:
        yield {
            "client": client, "tokens": tokens, "foreign": foreign, "own": own, "shared": shared,
            # the demo personas' own organization: never handed to them (see the module docstring)
            "romashka": romashka,
        }


# ---------------------------------------------------------------- inputs from the argument types

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
NASTY_STRINGS = st.sampled_from([
    "", " ", "\x00", "a\x00b", "'; DROP TABLE \"user\"; --", "%", "_", "\\", "\"", "null", "undefined", "NaN",
    "Ромашка", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀", "\u202e\u0644", "\r\n", "<script>alert(1)</script>", "0" * 12, "9" * 10,
    "я" * 20_000, "x" * 300, "+7", "+79161234501", "@", "a@b", "00:00", "24:60", "1e309", "-0",
])
STRINGS = st.one_of(TEXT, NASTY_STRINGS, st.emails(), st.from_regex(r"\+7\d{10}", fullmatch=True),
                    st.from_regex(r"\d{1,13}", fullmatch=True))
INTS = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(2**31, 2**70), st.integers(-(2**70), -(2**31) - 1),
                 st.sampled_from([0, -1, 1, 28, 29, 31, 100, 101]))
DATES = st.one_of(st.dates().map(dt.date.isoformat), STRINGS, st.sampled_from(["2026-02-30", "0000-01-01", "2026-13-01"]))
DATETIMES = st.one_of(
    st.datetimes(timezones=st.just(dt.timezone.utc)).map(dt.datetime.isoformat),
    st.datetimes().map(dt.datetime.isoformat),  # no offset: refused by the contract
    st.sampled_from(["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00+00:00", "2026-01-01T25:00:00Z"]), STRINGS,
)
DECIMALS = st.one_of(st.decimals(allow_nan=True, allow_infinity=True).map(str), STRINGS, st.integers().map(str))
TYPED_SCALARS = {  # what the scalar parses (the resolver decides whether it makes sense)
    "String": STRINGS, "Int": st.integers(-(2**31), 2**31 - 1), "Float": st.floats(allow_nan=False, allow_infinity=False),
    "Boolean": st.booleans(), "Date": st.dates().map(dt.date.isoformat),
    "DateTime": st.datetimes(timezones=st.just(dt.timezone.utc)).map(dt.datetime.isoformat),
    "Decimal": st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
}
SCALARS = {
    "String": STRINGS, "Int": INTS, "Float": st.floats(), "Boolean": st.one_of(st.booleans(), STRINGS),
    "Date": DATES, "DateTime": DATETIMES, "Decimal": DECIMALS,
}


def hinted_type(name: str) -> str | None:
    """The type an id argument names: `sessionId` a Session, `databaseIds` Databases (None: `id`, `requestId`…)."""
    match = re.fullmatch(r"([a-z][A-Za-z]*?)Ids?", name)
    return match.group(1)[0].upper() + match.group(1)[1:] if match else None


def of_type(global_ids: list[str], type_name: str | None) -> list[str]:
    return [i for i in global_ids if type_name and (from_global_id(i) or ("",))[0] == type_name]


def ids(persona: str, arena: dict[str, Any], hint: str | None = None) -> st.SearchStrategy:
    """Garbage, nonexistent, foreign ids for everyone; the file's own organization's ids for its
    personas; those of the type the argument's name says more often than the others."""
    garbage = st.one_of(
        STRINGS,
        st.builds(lambda t: to_global_id(t, uuid.uuid4()), st.sampled_from([*MODELS, "User", "Release", "Nope"])),
        st.sampled_from(["U2Vzc2lvbjpub3QtYS11dWlk", "=", "T3JnYW5pemF0aW9uOg"]),  # "Session:not-a-uuid", "Organization:"
    )
    # hypothesis favours the first choices: the ids that reach furthest into a resolver come first
    pools = [arena["own"]] if persona in ("OWNER", "ACCOUNTANT") else []
    pools.append(arena["foreign"] + arena["shared"])
    choices = [st.sampled_from(hinted) for pool in pools if (hinted := of_type(pool, hint))]
    return st.one_of(*choices, *(st.sampled_from(pool) for pool in pools), garbage)


def value_of(schema: ServedSchema, ref: dict[str, Any], persona: str, arena: dict[str, Any], typed: bool,
             name: str, *, nullable: bool = True) -> st.SearchStrategy:
    """Values of a type reference; `typed`: values the type accepts (they reach the resolver), else
    now and then one it refuses (a null where one is required, an enum or a number that is not one)."""
    if ref["kind"] == "NON_NULL":
        inner = value_of(schema, ref["ofType"], persona, arena, typed, name, nullable=False)
        return inner if typed else st.one_of(inner, inner, inner, st.none())
    if ref["kind"] == "LIST":
        inner = st.lists(value_of(schema, ref["ofType"], persona, arena, typed, name), max_size=4)
    else:
        inner = named_value(schema, ref["name"], persona, arena, typed, name)
    return st.one_of(st.none(), inner) if nullable else inner


def named_value(schema: ServedSchema, type_name: str, persona: str, arena: dict[str, Any], typed: bool,
                name: str) -> st.SearchStrategy:
    kind = schema.kind(type_name)
    if type_name == "ID":
        return ids(persona, arena, hinted_type(name))
    if kind == "ENUM":
        values = st.sampled_from([v["name"] for v in schema.types[type_name]["enumValues"]])
        return values if typed else st.one_of(values, TEXT)
    if kind == "INPUT_OBJECT":
        fields = schema.input_fields(type_name)
        required = {n: value_of(schema, f["type"], persona, arena, typed, n) for n, f in fields.items() if schema.required(f)}
        optional = {n: value_of(schema, f["type"], persona, arena, typed, n) for n, f in fields.items() if not schema.required(f)}
        objects = st.fixed_dictionaries(required, optional=optional)
        return objects if typed else st.one_of(objects, st.builds(lambda o: {**o, "unknownField": 1}, objects))
    return (TYPED_SCALARS if typed else SCALARS).get(type_name, STRINGS)


def type_text(ref: dict[str, Any]) -> str:
    if ref["kind"] == "NON_NULL":
        return type_text(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{type_text(ref['ofType'])}]"
    return ref["name"]


def selection(schema: ServedSchema, type_name: str) -> str:
    """A payload's scalars, its userErrors, and id and __typename of what it returns."""
    parts = ["__typename"]
    for name, field_ in schema.fields(type_name).items():
        target = schema.named(field_["type"])
        if schema.kind(target) in ("SCALAR", "ENUM"):
            parts.append(name)
        elif name == "userErrors":
            parts.append("userErrors { code field message }")
        else:
            inner = ["__typename", *(["id"] if "id" in schema.fields(target) else [])] if schema.kind(target) == "OBJECT" else ["__typename"]
            parts.append(f"{name} {{ {' '.join(inner)} }}")
    return " ".join(parts)


def document(schema: ServedSchema, mutation: str) -> str:
    field_ = schema.fields(schema.mutation_type)[mutation]
    variables = ", ".join(f"${a['name']}: {type_text(a['type'])}" for a in field_["args"])
    arguments = ", ".join(f"{a['name']}: ${a['name']}" for a in field_["args"])
    head = f"mutation Fuzz({variables})" if variables else "mutation Fuzz"
    call = f"{mutation}({arguments})" if arguments else mutation
    return f"{head} {{ {call} {{ {selection(schema, schema.named(field_['type']))} }} }}"


def mentions(value: Any, global_ids: set[str]) -> bool:
    if isinstance(value, str):
        return value in global_ids
    if isinstance(value, dict):
        return any(mentions(v, global_ids) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, global_ids) for v in value)
    return False


async def counts() -> dict[str, int]:
    return {model.__name__: await model.all().count() for model in COUNTED}


def test_the_fuzzed_mutations_are_the_served_ones(served_mutations):
    assert served_mutations == MUTATIONS


@pytest_asyncio.fixture(scope="module")
async def served_mutations(gql) -> list[str]:
    served = await ServedSchema.fetch(gql)
    return sorted(served.fields(served.mutation_type))


@pytest.mark.parametrize("mutation", MUTATIONS)
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_every_mutation_answers_any_input_clearly(arena, mutation, data):
    """A payload or coded GraphQL errors, never a 5xx, INTERNAL_SERVER_ERROR or implementation text;
    a refused call changes no row count; a demo persona's call with another organization's id is refused."""
    schema = CODE_SCHEMA
    field_ = schema.fields(schema.mutation_type)[mutation]
    personas = ["OWNER", "demo OWNER", "ACCOUNTANT", "demo ACCOUNTANT", "nobody"]
    if mutation == "addOrganization":  # a valid INN would give a demo user another organization
        personas = ["OWNER", "ACCOUNTANT", "nobody"]
    if mutation in PASSWORD_CHECKING:  # a wrong current password counts towards the demo login's lockout
        personas = ["OWNER", "ACCOUNTANT", "nobody"]
    persona = data.draw(st.sampled_from(personas), label="persona")
    typed = data.draw(st.sampled_from([True, True, True, False]), label="typed")
    variables = {
        a["name"]: data.draw(value_of(schema, a["type"], persona, arena, typed, a["name"]), label=a["name"]) for a in field_["args"]
    }
    await call_and_check(arena, mutation, persona, variables)


async def call_and_check(arena: dict[str, Any], mutation: str, persona: str, variables: dict[str, Any]) -> None:
    query = document(CODE_SCHEMA, mutation)
    token = arena["tokens"][persona]
    before = await counts()
    body = json.dumps({"query": query, "variables": variables})  # NaN and huge numbers included: not all of it is JSON a parser takes
    response = await arena["client"].post(
        "/graphql", content=body, headers={"content-type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    where = f"{mutation} as {persona} with {str(variables)[:600]}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text[:500]}"
    answer = response.json()
    errors = answer.get("errors") or []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert code and code != "INTERNAL_SERVER_ERROR", f"{error} for {where}"
        assert not LEAKS.search(error.get("message", "")), f"implementation text reaches the client: {error} for {where}"
    payload = (answer.get("data") or {}).get(mutation)
    if payload is not None:
        for user_error in payload.get("userErrors") or []:
            assert user_error["code"] and user_error["message"], f"{user_error} for {where}"
            assert not LEAKS.search(user_error["message"]), f"implementation text reaches the client: {user_error} for {where}"
    else:
        assert errors, f"no payload and no error for {where}: {answer}"
    refused = payload is None or bool(payload.get("userErrors")) or bool(errors)
    if STATS is not None:
        outcome = "success" if not refused else ",".join(sorted({e["code"] for e in (payload or {}).get("userErrors") or []}
                                                                 | {(e.get("extensions") or {}).get("code") for e in errors}))
        STATS.setdefault(mutation, {}).setdefault(outcome, 0)
        STATS[mutation][outcome] += 1
    if not refused and persona.startswith("demo") and mentions(variables, set(arena["foreign"])):
        pytest.fail(f"{mutation} accepted another organization's id: {where}: {answer}")
    if refused:
        after = await counts()
        assert after == before, f"a refused call changed rows: { {k: (before[k], after[k]) for k in before if before[k] != after[k]} } for {where}: {answer}"


# Mutations that check the caller's password: each wrong one counts towards the login's lockout, so
# they are never sent as a demo persona (every other file signs in as them; tests/test_auth.py
# expects the demo ACCOUNTANT's wrong password to answer INVALID, not RATE_LIMITED).
PASSWORD_CHECKING = {"changePassword"}

# Strings that break what was not written for them; random draws meet each of them only now and then.
KILLERS = ("\x00", "я" * 20_000, "", "'\"; --", "𝔘😀\u202e")


def plain_value(schema: ServedSchema, ref: dict[str, Any], arena: dict[str, Any], name: str, text: str) -> Any:
    """A value the type takes, every field filled, every string `text`, ids of the file's own organization."""
    if ref["kind"] == "NON_NULL":
        return plain_value(schema, ref["ofType"], arena, name, text)
    if ref["kind"] == "LIST":
        return [plain_value(schema, ref["ofType"], arena, name, text)]
    type_name, kind = ref["name"], schema.kind(ref["name"])
    if type_name == "ID":
        return (of_type(arena["own"], hinted_type(name)) or arena["own"])[0]
    if kind == "ENUM":
        return schema.types[type_name]["enumValues"][-1]["name"]
    if kind == "INPUT_OBJECT":
        return {n: plain_value(schema, f["type"], arena, n, text) for n, f in schema.input_fields(type_name).items()}
    tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    return {"Int": 1, "Float": 1.0, "Boolean": True, "Date": tomorrow.date().isoformat(), "DateTime": tomorrow.isoformat(),
            "Decimal": "1.00"}.get(type_name, text)


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_every_mutation_takes_strings_that_break_things(arena, mutation):
    """Every string argument NUL, 20 000 characters, empty, quotes, astral and bidi characters, the rest
    well formed: the same clear answers (PostgreSQL refuses NUL in text, a column refuses a long value)."""
    field_ = CODE_SCHEMA.fields(CODE_SCHEMA.mutation_type)[mutation]
    persona = "ACCOUNTANT" if mutation == "leaveOrganization" else "OWNER"  # the owner may not leave; the rest is the owner's
    for text in KILLERS:
        variables = {a["name"]: plain_value(CODE_SCHEMA, a["type"], arena, a["name"], text) for a in field_["args"]}
        await call_and_check(arena, mutation, persona, variables)


# Refusals that come after the first rows would be written: the input is half right.
HALF_RIGHT = {
    "inviteMember with one database of another organization": (
        """mutation($org: ID!, $email: String!, $dbs: [ID!]) { inviteMember(input: {organizationId: $org, email: $email,
           role: USER, databaseIds: $dbs}) { invite { id } userErrors { code field } } }""",
        lambda t: {"org": t["org"], "email": factories.unique_email("half"), "dbs": [t["typical"], t["foreign_db"]]},
    ),
    "inviteMember of an address already a member": (
        """mutation($org: ID!, $email: String!, $dbs: [ID!]) { inviteMember(input: {organizationId: $org, email: $email,
           role: USER, databaseIds: $dbs}) { invite { id } userErrors { code field } } }""",
        lambda t: {"org": t["org"], "email": t["user_email"], "dbs": [t["typical"]]},
    ),
    "updateMemberDatabases with one database of another organization": (
        """mutation($m: ID!, $dbs: [ID!]!) { updateMemberDatabases(membershipId: $m, databaseIds: $dbs) { userErrors { code field } } }""",
        lambda t: {"m": t["user_membership"], "dbs": [t["custom"], t["foreign_db"]]},
    ),
    "approveJoinRequest as OWNER": (
        """mutation($r: ID!) { approveJoinRequest(requestId: $r, role: OWNER) { membership { id } userErrors { code field } } }""",
        lambda t: {"r": t["join_request"]},
    ),
    "scheduleUpdate of a non-typical database": (
        """mutation($db: ID!) { scheduleUpdate(input: {databaseId: $db, mode: MONTHLY, dayOfMonth: 15, timeOfDay: "03:00",
           baseLogin: "admin", basePassword: "secret"}) { userErrors { code field } } }""",
        lambda t: {"db": t["custom"]},
    ),
    "transferOwnership to a member of another organization": (
        """mutation($org: ID!, $m: ID!) { transferOwnership(organizationId: $org, membershipId: $m) { userErrors { code field } } }""",
        lambda t: {"org": t["org"], "m": t["foreign_membership"]},
    ),
}


@pytest.mark.parametrize("case", sorted(HALF_RIGHT))
async def test_a_refused_call_writes_no_row(gql, case):
    """Never a half-written row: a call refused after part of its input checked out leaves every count as it was."""
    organization, users = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    typical = await factories.create_database(organization)
    custom = await factories.create_database(organization, typical=False, name="Своя")
    user_membership = await Membership.get(organization_id=organization.id, user_id=users[Role.USER].id)
    await DatabaseGrant.create(membership=user_membership, database=typical)
    request = await JoinRequest.create(organization=organization, user=await factories.create_user(), position="Юрист")
    vasilek = await Organization.get(inn=VASILEK_INN)
    team = {
        "org": to_global_id("Organization", organization.id), "typical": to_global_id("Database", typical.id),
        "custom": to_global_id("Database", custom.id), "user_membership": to_global_id("Membership", user_membership.id),
        "user_email": users[Role.USER].email, "join_request": to_global_id("JoinRequest", request.id),
        "foreign_db": to_global_id("Database", (await Database.filter(organization_id=vasilek.id).first()).id),
        "foreign_membership": to_global_id("Membership", (await Membership.filter(organization_id=vasilek.id).first()).id),
    }
    query, variables = HALF_RIGHT[case]
    await gql.token_for_password(users[Role.OWNER].email, factories.PASSWORD)
    before = await counts()
    body = await gql.execute(query, variables(team), as_user=users[Role.OWNER].email)
    payload = next(iter(body["data"].values())) if body.get("data") else None
    assert body.get("errors") or payload["userErrors"], f"{case} was not refused: {body}"
    assert await counts() == before, body


def teardown_module() -> None:
    if STATS:
        for mutation, outcomes in sorted(STATS.items()):
            print(f"{mutation:28} {outcomes}")
