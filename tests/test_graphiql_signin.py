"""GraphiQL signs in (issue 21): the page and its sign-in script are served under a same-origin CSP,
the script's own operations (login, refresh, logout) validate and do their round trip, and the
default tab's operations validate against the served schema and answer without errors as the demo
owner, the subscription over a real WebSocket as the page sends it. The page in a real browser:
docs/graphiql.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import websockets
from graphql import OperationDefinitionNode, OperationType, build_client_schema, get_introspection_query, parse, validate

from kabinet.front import content_security_policy
from tests import factories
from tests.live import OPEN_TIMEOUT, TRANSPORT_WS

STATIC = Path(__file__).resolve().parent.parent / "kabinet" / "static"
DEFAULT_QUERY_URL = "/static/graphiql-page/default-query.graphql"
DEMO_OWNER = "owner@romashka.example"


async def page(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    return response


async def served_schema(client):
    body = (await client.post("/graphql", json={"query": get_introspection_query()})).json()
    assert "errors" not in body, body
    return build_client_schema(body["data"])


async def default_document(client) -> str:
    response = await client.get(DEFAULT_QUERY_URL)
    assert response.status_code == 200
    return response.text


def operations(document: str) -> dict[str, OperationDefinitionNode]:
    return {d.name.value: d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)}


def sign_in_operations() -> dict[str, str]:
    """The operations signin.js sends, each a one-line string literal there."""
    script = (STATIC / "graphiql-page" / "signin.js").read_text()
    found = re.findall(r'"(mutation (GraphiQL\w+)\(.*?)";', script)
    return {name: text for text, name in found}


async def test_the_page_loads_the_sign_in_script_and_only_its_own_origin(client):
    response = await page(client)
    html = response.text
    assert '<script src="/static/graphiql-page/signin.js"></script>' in html
    assert '<script src="/static/graphiql-page/page.js"></script>' in html
    # no inline script or style: the CSP allows neither
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html and " style=" not in html
    csp = response.headers["content-security-policy"]
    assert csp == content_security_policy("kabinet.test", data_urls=True)  # the front page's, data: images
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["connect-src"].startswith("'self'")
    assert "unsafe" not in csp and "http" not in csp and directives["img-src"] == "'self' data:"
    # every file the page names is served by kabinet
    assets = re.findall(r'(?:src|href)="(/[^"]*)"', html)
    assert "/static/graphiql-page/page.css" in assets and len(assets) >= 9
    for asset in assets:
        assert (await client.get(asset)).status_code == 200, asset
    # the default tab is what page.js fetches
    assert DEFAULT_QUERY_URL in (STATIC / "graphiql-page" / "page.js").read_text()


async def test_the_demo_hint_is_shown_where_the_demo_is_seeded_and_never_elsewhere(client, app):
    assert "owner@romashka.example" in (await page(client)).text  # the tests seed the demo
    graphql = app.state.graphql
    seeded = graphql.settings.seed_demo
    graphql.settings.seed_demo = False
    try:
        html = (await page(client)).text
    finally:
        graphql.settings.seed_demo = seeded
    assert "romashka" not in html and "kabinet-demo" not in html


async def test_the_sign_in_script_operations_validate_and_do_their_round_trip(client):
    schema = await served_schema(client)
    sent = sign_in_operations()
    assert set(sent) == {"GraphiQLSignIn", "GraphiQLRefresh", "GraphiQLSignOut"}
    for name, text in sent.items():
        assert validate(schema, parse(text)) == [], name

    user = await factories.create_user()
    organization = await factories.create_organization()
    await factories.add_member(organization, user, factories.Role.ADMIN)

    async def run(name: str, variables: dict, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = (await client.post("/graphql", json={"query": sent[name], "variables": variables, "operationName": name},
                                  headers=headers)).json()
        assert "errors" not in body, body
        return body["data"]

    signed_in = (await run("GraphiQLSignIn", {"input": {"login": user.email, "password": factories.PASSWORD}}))["login"]
    assert signed_in["userErrors"] == [] and signed_in["accessToken"] and signed_in["accessTokenExpiresAt"]
    assert signed_in["user"]["memberships"][0]["organization"]["name"] == organization.name

    renewed = (await run("GraphiQLRefresh", {"refreshToken": signed_in["refreshToken"]}))["refreshToken"]
    # (within the same second the new access token may equal the old one: it carries no nonce)
    assert renewed["userErrors"] == [] and renewed["accessToken"] and renewed["accessTokenExpiresAt"]
    assert renewed["refreshToken"] != signed_in["refreshToken"]
    me = (await client.post("/graphql", json={"query": "{ me { email } }"},
                            headers={"Authorization": f"Bearer {renewed['accessToken']}"})).json()
    assert me == {"data": {"me": {"email": user.email}}}

    assert (await run("GraphiQLSignOut", {"refreshToken": renewed["refreshToken"]}))["logout"] == {"ok": True, "userErrors": []}
    # signed out: the page's next refresh is refused, and it asks to sign in again
    refused = (await run("GraphiQLRefresh", {"refreshToken": renewed["refreshToken"]}))["refreshToken"]
    assert refused["accessToken"] is None and refused["userErrors"]


async def test_the_default_tab_parses_and_validates_against_the_served_schema(client):
    document = await default_document(client)
    assert validate(await served_schema(client), parse(document)) == []
    ops = operations(document)
    assert list(ops) == ["Me", "MyOrganizations", "Sessions"]
    assert ops["Sessions"].operation is OperationType.SUBSCRIPTION
    assert "kabinet-demo" not in document, "credentials belong to the demo hint, not the default tab"


async def test_the_default_tab_queries_answer_as_the_demo_owner(client, gql):
    document = await default_document(client)
    token = await gql.token_for(DEMO_OWNER)
    answers = {}
    for name, operation in operations(document).items():
        if operation.operation is not OperationType.QUERY:
            continue
        body = (await client.post("/graphql", json={"query": document, "operationName": name},
                                  headers={"Authorization": f"Bearer {token}"})).json()
        assert "errors" not in body, (name, body)
        answers[name] = body["data"]
    assert set(answers) == {"Me", "MyOrganizations"}
    assert answers["Me"]["me"]["email"] == DEMO_OWNER
    (organization,) = [edge["node"] for edge in answers["MyOrganizations"]["organizations"]["edges"]]
    assert organization["name"] == "ООО «Ромашка»" and organization["viewerRole"] == "OWNER"
    assert organization["balance"] and organization["dashboard"]["balanceRunway"]
    for part in ("documents", "databases", "sessions"):
        assert organization[part]["edges"], part


@pytest.mark.parametrize("protocol", [TRANSPORT_WS])
async def test_the_default_tab_subscription_answers_as_the_demo_owner_over_the_websocket(client, gql, live_server, protocol):
    """As page.js does it: the token in connection_init, the whole default document with the operation's
    name, organizationId the signed-in user's first organization (what the page fills in)."""
    document = await default_document(client)
    token = await gql.token_for(DEMO_OWNER)
    me = await gql.execute("{ me { memberships { organization { id } } } }", as_user=DEMO_OWNER)
    organization_id = me["data"]["me"]["memberships"][0]["organization"]["id"]
    async with websockets.connect(f"ws://{live_server}/graphql", subprotocols=[protocol], open_timeout=OPEN_TIMEOUT) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": document, "operationName": "Sessions", "variables": {"organizationId": organization_id}}}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] not in ("ping", "pong"):
                break
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        sessions = message["payload"]["data"]["sessions"]["sessions"]
        assert sessions and all(s["status"] in ("ACTIVE", "TERMINATING") for s in sessions)
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
