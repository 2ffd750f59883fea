"""What anyone may send without an account costs a bounded amount (issue 17, findings 5, 6 and 9's
GraphQL part): introspection within its budget and off the event loop, every answer under
`max_response_bytes`, every cache within its byte budget whatever is sent, and scalars that refuse
what they cannot hold instead of answering a 500. Asserted by structure: bytes, counts, who answered
while what was still running; never by durations."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import threading
import tracemalloc
import uuid

import httpx
import pytest
from graphql import (
    DirectiveLocation,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    get_introspection_query,
    get_named_type,
    parse,
)
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from bench import queries
from resolvers.identity import tokens
from schema import execution, introspection
from schema.build import build_schema
from schema.limits import DOCUMENTS, source_bytes
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

GRAPHQL_RESPONSE = {"accept": "application/graphql-response+json"}
# Fifty full-schema selections under aliases, nested through fields' types: the finding's request.
NESTED_TYPE = "name fields { name type { name ofType { name fields { name type { name ofType { name } } } } } }"
ABUSIVE = "{ " + " ".join(f"a{i}: __schema {{ types {{ {NESTED_TYPE} }} }}" for i in range(50)) + " }"


def errors_of(response: httpx.Response) -> list[dict]:
    return response.json().get("errors") or []


# ---------------------------------------------------------------- introspection


async def test_the_full_introspection_answers_anonymously_as_graphiql_and_code_generators_ask_it(client):
    for query in (get_introspection_query(), get_introspection_query(descriptions=True, specified_by_url=True,
                                                                     directive_is_repeatable=True, schema_description=True,
                                                                     input_value_deprecation=True)):
        response = await client.post("/graphql", json={"query": query})
        assert response.status_code == 200 and "errors" not in response.json(), response.text[:300]
        assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    small = await client.post("/graphql", json={"query": '{ __type(name: "Organization") { name fields { name } } __typename }'})
    assert small.json()["data"]["__type"]["name"] == "Organization"


async def test_fifty_nested_introspections_are_refused_in_a_few_bytes(client, app):
    """Finding 5: 20 KB of nested aliased __schema selections gave 10.8 MB; now the budget refuses it."""
    response = await client.post("/graphql", json={"query": ABUSIVE}, headers=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    (error,) = errors_of(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    full = await client.post("/graphql", json={"query": get_introspection_query(descriptions=True)})
    assert error["extensions"]["maximum"] >= introspection.BUDGET_FACTOR * introspection.objects_in(full.json()["data"])
    assert len(response.content) < 1_000


async def test_deep_introspection_through_types_is_refused_too(client):
    """graphql-core refuses `fields` nested three deep (breadth within that is the budget's, above)."""
    deep = "{ __schema { types { " + "fields { name type { ofType { " * 30 + "name" + " } } }" * 30 + " } } }"
    response = await client.post("/graphql", json={"query": deep})
    assert response.status_code < 500
    assert [e["extensions"]["code"] for e in errors_of(response)] == ["GRAPHQL_VALIDATION_FAILED"], response.text[:500]


async def test_introspection_beside_other_root_fields_is_refused_before_it_runs(client, gql):
    token = await gql.token_for("owner@romashka.example")
    for query in ("{ __schema { queryType { name } } me { email } }",
                  "{ ...F } fragment F on Query { __type(name: \"User\") { name } organizations { totalCount } }"):
        response = await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
        assert response.json()["data"] is None
        assert [e["extensions"]["code"] for e in errors_of(response)] == ["GRAPHQL_VALIDATION_FAILED"], response.text


async def test_introspection_runs_in_a_worker_thread(client, monkeypatch):
    threads = []
    bounded = introspection._bounded

    def recording(*args):
        threads.append(threading.current_thread())
        return bounded(*args)

    monkeypatch.setattr(introspection, "_bounded", recording)
    response = await client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    assert threads and threads[0] is not threading.main_thread()


async def test_healthz_answers_while_an_abusive_introspection_is_still_running(live_server, monkeypatch):
    """On a real server: the abusive request is held inside its worker thread until /healthz has
    answered. Were introspection on the event loop, /healthz could not answer before it ended."""
    inside, healthz_answered = threading.Event(), threading.Event()
    bounded = introspection._bounded

    def held(*args):
        inside.set()
        healthz_answered.wait(timeout=30)
        return bounded(*args)

    monkeypatch.setattr(introspection, "_bounded", held)
    async with httpx.AsyncClient(base_url=f"http://{live_server}", timeout=60) as http:
        abusive = asyncio.create_task(http.post("/graphql", json={"query": ABUSIVE}))
        while not inside.is_set():
            await asyncio.sleep(0.01)
        health = await http.get("/healthz")
        still_running = not abusive.done()
        healthz_answered.set()
        response = await abusive
    assert health.status_code == 200 and still_running
    assert [e["extensions"]["code"] for e in errors_of(response)] == ["QUERY_TOO_COMPLEX"], response.text[:500]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_over_a_websocket_introspection_is_bounded_and_answers_too(gql, live_server, protocol):
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(await gql.token_for("owner@romashka.example")))["type"] == "connection_ack"
        await socket.subscribe("{ __schema { queryType { name } } }")
        assert (await socket.next_data())["data"]["__schema"]["queryType"]["name"] == "Query"
        await socket.subscribe(ABUSIVE)
        refused = await socket.receive()
        while refused["type"] == "complete":  # the first operation's
            refused = await socket.receive()
        errors = refused["payload"] if isinstance(refused["payload"], list) else refused["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COMPLEX"], refused
    finally:
        await socket.close()


# ---------------------------------------------------------------- the answer's bytes


async def test_an_answer_over_max_response_bytes_is_a_coded_error_not_a_huge_body(client, gql, settings, monkeypatch):
    token = await gql.token_for("owner@romashka.example")
    headers = {"Authorization": f"Bearer {token}", **GRAPHQL_RESPONSE}
    query = "{ me { email memberships { role organization { name inn } } } organizations { edges { node { id name } } } }"
    whole = await client.post("/graphql", json={"query": query}, headers=headers)
    assert "errors" not in whole.json()
    monkeypatch.setattr(settings, "max_response_bytes", len(whole.content) // 2)
    query = query.replace("{", "{ __typename ", 1)  # another text: not the kept answer
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert len(response.content) < 1_000
    (error,) = errors_of(response)
    assert error["extensions"] == {"code": "RESPONSE_TOO_LARGE", "bytes": error["extensions"]["bytes"],
                                   "maximum": len(whole.content) // 2}
    assert error["extensions"]["bytes"] > error["extensions"]["maximum"]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_websocket_result_over_max_response_bytes_is_its_coded_error(gql, live_server, settings, monkeypatch, protocol):
    monkeypatch.setattr(settings, "max_response_bytes", 1024)
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(await gql.token_for("owner@romashka.example")))["type"] == "connection_ack"
        await socket.subscribe("{ a: __schema { types { name description } } }")
        payload = await socket.next_data()
        assert payload["data"] is None
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["RESPONSE_TOO_LARGE"]
    finally:
        await socket.close()


# ---------------------------------------------------------------- caches


@pytest.fixture
def small_budgets():
    """Budgets small enough that the floods below overflow them many times over."""
    saved = [(cache, cache.max_bytes, cache.max_entry_bytes) for cache in (DOCUMENTS, execution.PLANS)]
    for cache in (DOCUMENTS, execution.PLANS):
        cache.resize(1024 * 1024, 64 * 1024)
    yield
    for cache, max_bytes, max_entry in saved:
        cache.resize(max_bytes, max_entry)


async def test_a_flood_of_large_distinct_queries_stays_within_the_caches_budgets(client, small_budgets):
    """Finding 6: 100 queries of 300 KB were all kept. Now huge texts are not kept, and many
    medium ones push each other out: each cache's own count stays within its budget."""
    for i in range(20):
        huge = '{ __type(name: "' + f"{i}-" + "x" * 300_000 + '") { name } }'
        response = await client.post("/graphql", json={"query": huge})
        assert response.status_code == 200 and response.json()["data"]["__type"] is None
        assert DOCUMENTS.get((huge, 5_000)) is None  # over the entry limit: parsed, never kept
    for i in range(100):
        medium = '{ __type(name: "' + f"{i}-" + "y" * 10_000 + '") { name } }'
        await client.post("/graphql", json={"query": medium})
        assert DOCUMENTS.bytes <= DOCUMENTS.max_bytes
    assert 0 < len(DOCUMENTS) < 100


async def test_distinct_large_variables_keep_no_more_plans_than_the_budget(client, gql, small_budgets):
    token = await gql.token_for("owner@romashka.example")
    query = ("query($n: Int, $pad: ID!) { organizations(first: $n) { edges { node { name } } } "
             "organization(id: $pad) { name } }")
    for i in range(60):
        response = await client.post("/graphql", json={"query": query, "variables": {"n": 5, "pad": f"{i}" + "z" * 100_000}},
                                     headers={"Authorization": f"Bearer {token}"})
        assert response.json()["data"]["organizations"]["edges"]
        assert execution.PLANS.bytes <= execution.PLANS.max_bytes
    assert len(execution.PLANS) > 0


async def test_failed_tokens_are_never_kept_and_kept_ones_are_within_the_budget(client, gql, settings):
    before = len(tokens.VERIFIED_TOKENS)
    for i in range(50):
        for bad in (f"{i}." + "a" * 70_000, f"eyJ{i}.e30.{uuid.uuid4().hex}"):
            response = await client.post("/graphql", json={"query": "{ me { email } }"}, headers={"Authorization": f"Bearer {bad}"})
            assert errors_of(response)[0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert len(tokens.VERIFIED_TOKENS) == before
    assert tokens.decode_access_token(settings, await gql.token_for("owner@romashka.example")) is not None
    assert tokens.VERIFIED_TOKENS.bytes <= tokens.VERIFIED_TOKENS.max_bytes


async def test_the_response_cache_counts_its_keys_and_stays_within_its_budget(app, client, gql):
    cache = app.state.graphql.response_cache.kept
    token = await gql.token_for("owner@romashka.example")
    saved = cache.max_bytes, cache.max_entry_bytes
    cache.resize(256 * 1024, 32 * 1024)
    try:
        query = "query($pad: ID!) { organizations(first: 2) { edges { node { name } } } organization(id: $pad) { name } }"
        for i in range(40):
            await client.post("/graphql", json={"query": query, "variables": {"pad": f"{i}" + "q" * 20_000}},
                              headers={"Authorization": f"Bearer {token}"})
            assert cache.bytes <= cache.max_bytes
        assert 0 < len(cache) and len(cache) * 20_000 < cache.bytes  # the variables count
    finally:
        cache.resize(*saved)


@pytest.mark.parametrize("query", [
    get_introspection_query(descriptions=True), queries.W2_KABINET, queries.W1_KABINET,
    "{" + " ".join(f"a{i}" for i in range(4_000)) + "}", "{" + "a " * 4_000 + "}",
    '{ a(x: "' + "y" * 300_000 + '") }', '{ a(x: """' + "y\n" * 150_000 + '""") }', '{ ' + "n" * 300_000 + ' }',
    '{ a(x: "' + "ж" * 100_000 + '") }',
], ids=["introspection", "W2", "W1", "many names", "many short tokens", "long string", "block string", "long name", "unicode"])
def test_a_documents_estimate_is_not_below_what_it_keeps_alive(query):
    """The caches count a document by `source_bytes`: it must not be less than what parsing allocated
    (measured with tracemalloc) plus the text itself."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        document = parse(query, max_lexical_tokens=10_000, max_comments=10_000)
        gc.collect()
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert source_bytes(document.loc) >= allocated + sys.getsizeof(query)


# ---------------------------------------------------------------- scalars without a token

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _schema():
    from foundation.settings import Settings

    return build_schema(Settings(_env_file=None, database_url="sqlite://:memory:", secret_key="x" * 40))._schema


SCHEMA = _schema()
SCALARS = sorted(name for name, t in SCHEMA.type_map.items() if isinstance(t, GraphQLScalarType) and not name.startswith("__"))


def _unwrap(gtype):
    return gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype


def _filler(gtype) -> str | None:
    """A valid literal for a required value beside the fuzzed one."""
    gtype = _unwrap(gtype)
    if isinstance(gtype, GraphQLList):
        return "[]"
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values))
    if isinstance(gtype, GraphQLInputObjectType):
        fields = [f"{n}: {_filler(f.type)}" for n, f in gtype.fields.items() if isinstance(f.type, GraphQLNonNull)]
        return "{" + ", ".join(fields) + "}"
    return {"String": '"x"', "ID": '"x"', "Int": "1", "Float": "1.5", "Boolean": "true",
            "DateTime": '"2030-01-01T00:00:00Z"', "Date": '"2030-01-01"', "Decimal": '"1.00"'}[gtype.name]


def _argument_for(field, scalar: str) -> str | None:
    """`name(arguments)` of a field with `HOLE` where a value of the scalar goes, directly or inside
    its input object; None when no argument of the field takes the scalar."""
    for arg_name, arg in field.args.items():
        others = [f"{n}: {_filler(a.type)}" for n, a in field.args.items() if n != arg_name and isinstance(a.type, GraphQLNonNull)]
        named, listed = get_named_type(arg.type), isinstance(_unwrap(arg.type), GraphQLList)
        if named.name == scalar and not listed:
            return ", ".join([*others, f"{arg_name}: HOLE"])
        if isinstance(named, GraphQLInputObjectType) and not listed:
            for input_name, input_field in named.fields.items():
                if get_named_type(input_field.type).name == scalar and not isinstance(_unwrap(input_field.type), GraphQLList):
                    siblings = [f"{n}: {_filler(f.type)}" for n, f in named.fields.items()
                                if n != input_name and isinstance(f.type, GraphQLNonNull)]
                    return ", ".join([*others, f"{arg_name}: {{{', '.join([*siblings, f'{input_name}: HOLE'])}}}"])
    return None


def _place(scalar: str) -> tuple[str, str] | None:
    """(operation, selection with `HOLE` where a value of the scalar goes): an argument of a root
    field, or of a field a few levels below the query root (reached through fields without required
    arguments); None when no argument takes the scalar."""
    for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type)):
        pending = [(root, "HERE")]
        for _ in range(4 if operation == "query" else 1):
            reached = []
            for otype, wrapper in pending:
                for name, field in otype.fields.items():
                    named = get_named_type(field.type)
                    below = "" if isinstance(named, GraphQLScalarType | GraphQLEnumType) else " { __typename }"
                    arguments = _argument_for(field, scalar)
                    if arguments is not None:
                        return operation, wrapper.replace("HERE", f"{name}({arguments}){below}")
                    if below and not any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()) and hasattr(named, "fields"):
                        reached.append((named, wrapper.replace("HERE", f"{name} {{ HERE }}")))
            pending = reached
    for directive in SCHEMA.directives:
        for arg_name, arg in directive.args.items():
            if get_named_type(arg.type).name == scalar and DirectiveLocation.FIELD in directive.locations:
                return "query", f"__typename @{directive.name}({arg_name}: HOLE)"
    return None


EXTREME_DATES = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "0001-01-01", "9999-12-31", "0000-01-01", "01.01.0001 0:00:00", "2026-02-30", "2026-01-01T25:00:00+03:00",
    "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00", "１２３", "",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50) | st.sampled_from(EXTREME_DATES)
    | st.builds(lambda n: "9" * n, st.integers(1, 5_000)) | st.builds(lambda n: "1e" + "9" * n, st.integers(1, 30)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def _literal(value) -> str:
    """A GraphQL literal of a JSON value (an object's keys made names)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) or "e" in repr(value) or "." in repr(value) else f"{value}.0"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return "{" + ", ".join(f"k{i}: {_literal(v)}" for i, v in enumerate(value.values())) + "}"


LITERALS = JSON_VALUES.map(_literal) | st.sampled_from([
    "1" + "0" * 5_000, "-" + "9" * 5_000, "1e99999", "1." + "5" * 5_000, '"""' + "x" * 1_000 + '"""', "$undeclared", "ENUM_LIKE",
])


def test_every_scalar_of_the_schema_is_fuzzed():
    """A new scalar fails here until the fuzzing knows where it goes or that nothing takes it."""
    placed = {scalar: _place(scalar) for scalar in SCALARS}
    assert set(SCALARS) >= {"DateTime", "Date", "Decimal", "ID", "String", "Int", "Boolean"}
    assert {s for s, p in placed.items() if p is None} <= {"Decimal", "Float"}, placed  # no argument takes these: their
    # parse_value and parse_literal are fuzzed directly


PYTHON = re.compile(r"Traceback|ValueError|OverflowError|TypeError|KeyError|InvalidOperation|decimal\.|datetime\.")


async def _no_server_error(client, body: dict) -> None:
    response = await client.post("/graphql", json=body, headers=GRAPHQL_RESPONSE)
    assert response.status_code < 500, response.text[:300]
    for error in errors_of(response):
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", (body, error)
        assert not PYTHON.search(error["message"]), error


async def test_the_datetime_of_finding_9_is_refused_clearly_without_a_token(client):
    """Year 1 at +14:00 is before year 1 in UTC: converting it overflowed into a 500."""
    operation, selection = _place("DateTime")
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        literal = await client.post("/graphql", json={"query": f"{operation} {{ {selection.replace('HOLE', json.dumps(value))} }}"})
        variable = await client.post("/graphql", json={
            "query": f"{operation}($v: DateTime) {{ {selection.replace('HOLE', '$v')} }}", "variables": {"v": value}})
        for response, code in ((literal, "GRAPHQL_VALIDATION_FAILED"), (variable, "BAD_USER_INPUT")):
            assert response.status_code < 500
            (error,) = errors_of(response)
            assert error["extensions"]["code"] == code and "out of range" in error["message"], error


@pytest.mark.parametrize("scalar", SCALARS)
@hypothesis_settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(value=JSON_VALUES, literal=LITERALS)
async def test_no_scalar_answers_a_500_without_a_token(client, scalar, value, literal):
    """Each scalar's literal and variable forms, with extreme and odd values: a coded error or an answer."""
    placed = _place(scalar)
    if placed is not None:
        operation, selection = placed
        await _no_server_error(client, {"query": f"{operation} {{ {selection.replace('HOLE', literal)} }}"})
        variable_query = f"{operation}($v: {scalar}) {{ {selection.replace('HOLE', '$v')} }}"
        await _no_server_error(client, {"query": variable_query, "variables": {"v": value}})
    gtype = SCHEMA.type_map[scalar]
    for parse_it in (lambda: gtype.parse_value(value), lambda: gtype.parse_literal(parse(f"{{ a(x: {literal}) }}").definitions[0].selection_set.selections[0].arguments[0].value)):
        try:
            parse_it()
        except Exception as error:  # noqa: BLE001 — what matters is which kind
            from graphql import GraphQLError

            assert isinstance(error, GraphQLError), (scalar, value, literal, repr(error))
