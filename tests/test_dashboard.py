"""What an owner, an admin, an accountant and a user see of their organization's dashboard."""

from __future__ import annotations

from decimal import Decimal

import pytest

DASHBOARD = """
query Dashboard {
  me { fullName email memberships { role organization { name } } }
  organizations(first: 10) {
    totalCount
    edges { node {
      id name inn kind moderationStatus code viewerRole
      products(first: 20) { totalCount edges { node { name category workplaces updatesAvailableUntil
        contract { kind number status startsOn endsOn } } } }
      contracts { kind number status }
      balance { amount currency prepaidServices { name unit total used remaining validUntil } }
      balanceTransactions(first: 5) { totalCount edges { node { kind amount balanceAfter occurredAt } } }
      documents(first: 10) { totalCount edges { node { kind number period amount currency downloadUrl } } }
      cloudSubscription { tariff sessionsLimit databasesLimit canExtend extension { endsAt } }
      databases(first: 10) { totalCount edges { node { name configuration version isTypical
        updateSchedule { mode dayOfMonth timeOfDay timezone nextRunAt hasCredentials }
        sessions(status: ACTIVE, first: 50) { totalCount edges { node { userName status } } } } } }
      sessions(status: ACTIVE, first: 50) { totalCount edges { node { userName clientKind status startedAt
        database { name } user { email } } } }
    } }
  }
}
"""


def romashka(body: dict) -> dict:
    return next(e["node"] for e in body["data"]["organizations"]["edges"] if e["node"]["inn"] == "7707083893")


def error_paths(body: dict, code: str) -> set[str]:
    return {".".join(str(p) for p in e["path"] if not isinstance(p, int)) for e in body.get("errors", []) if e["extensions"]["code"] == code}


async def test_an_owner_sees_the_whole_dashboard_of_romashka(gql):
    body = await gql.execute(DASHBOARD, as_user="owner@romashka.example")
    assert "errors" not in body, body["errors"]
    org = romashka(body)
    assert org["name"] == "ООО «Ромашка»"
    assert (org["kind"], org["moderationStatus"], org["viewerRole"]) == ("LEGAL_ENTITY", "APPROVED", "OWNER")
    products = [e["node"] for e in org["products"]["edges"]]
    assert len(products) >= 4 and org["products"]["totalCount"] == len(products)
    assert len({p["category"] for p in products}) >= 3
    assert all(p["contract"] for p in products if p["category"] == "LOCAL_1C")
    assert Decimal(org["balance"]["amount"]) == Decimal(org["balanceTransactions"]["edges"][0]["node"]["balanceAfter"])
    assert org["balance"]["currency"] == "RUB" and org["balance"]["prepaidServices"]
    assert org["balanceTransactions"]["totalCount"] >= 10
    kinds_by_period: dict[str, set[str]] = {}
    for doc in (e["node"] for e in org["documents"]["edges"]):
        assert doc["downloadUrl"].startswith("/files/")
        if doc["period"]:
            kinds_by_period.setdefault(doc["period"], set()).add(doc["kind"])
    assert len([p for p, kinds in kinds_by_period.items() if kinds >= {"INVOICE", "ACT"}]) >= 3
    subscription = org["cloudSubscription"]
    assert subscription["canExtend"] is True and subscription["extension"] is None
    databases = [e["node"] for e in org["databases"]["edges"]]
    assert len(databases) == 2 and {d["isTypical"] for d in databases} == {True, False}
    assert all(d["updateSchedule"]["timezone"] for d in databases)
    assert org["sessions"]["totalCount"] >= 8
    assert sum(d["sessions"]["totalCount"] for d in databases) == org["sessions"]["totalCount"]
    assert {s["node"]["status"] for s in org["sessions"]["edges"]} == {"ACTIVE"}


async def test_a_user_gets_forbidden_on_money_and_members_and_the_rest_still_answers(gql):
    query = """{ organizations { edges { node { name viewerRole
        products { totalCount } balance { amount } documents { totalCount } members { totalCount }
        databases { edges { node { name isTypical } } }
        sessions { edges { node { userName user { email } } } } } } } }"""
    body = await gql.execute(query, as_user="user@romashka.example")
    org = body["data"]["organizations"]["edges"][0]["node"]
    assert org["viewerRole"] == "USER" and org["products"]["totalCount"] >= 4
    assert org["balance"] is None and org["documents"] is None and org["members"] is None
    assert error_paths(body, "FORBIDDEN") == {
        "organizations.edges.node.balance", "organizations.edges.node.documents", "organizations.edges.node.members",
    }
    assert [d["node"]["isTypical"] for d in org["databases"]["edges"]] == [True], "only the granted database"
    assert {s["node"]["user"]["email"] for s in org["sessions"]["edges"]} == {"user@romashka.example"}


async def test_an_accountant_sees_money_but_not_databases_or_sessions(gql):
    query = """{ organizations { edges { node { viewerRole balance { amount } charges(first: 3) { totalCount }
        databases { totalCount } sessions { totalCount } } } } }"""
    body = await gql.execute(query, as_user="buh@romashka.example")
    org = body["data"]["organizations"]["edges"][0]["node"]
    assert org["viewerRole"] == "ACCOUNTANT" and org["balance"]["amount"] and org["charges"]["totalCount"] > 0
    assert org["databases"] is None and org["sessions"] is None
    assert error_paths(body, "FORBIDDEN") == {"organizations.edges.node.databases", "organizations.edges.node.sessions"}


async def test_another_organizations_objects_do_not_exist_for_vasilek(gql):
    owner = await gql.execute(
        "{ organizations { edges { node { id products(first: 1) { edges { node { id } } } } } } }",
        as_user="owner@romashka.example",
    )
    org = owner["data"]["organizations"]["edges"][0]["node"]
    product_id = org["products"]["edges"][0]["node"]["id"]
    body = await gql.execute(
        "query($o: ID!, $p: ID!) { organization(id: $o) { name } node(id: $p) { id } "
        "organizations { totalCount edges { node { name } } } }",
        {"o": org["id"], "p": product_id},
        as_user="owner@vasilek.example",
    )
    assert "errors" not in body
    assert body["data"]["organization"] is None and body["data"]["node"] is None
    assert [e["node"]["name"] for e in body["data"]["organizations"]["edges"]] == ["ИП Васильев"]


@pytest.mark.parametrize("email", ["owner@romashka.example", "admin@romashka.example"])
async def test_owner_and_admin_see_members_and_their_roles(gql, email):
    body = await gql.execute(
        "{ organizations { edges { node { members(first: 10) { totalCount edges { node { role user { email } } } } } } } }",
        as_user=email,
    )
    members = body["data"]["organizations"]["edges"][0]["node"]["members"]
    roles = {e["node"]["user"]["email"]: e["node"]["role"] for e in members["edges"]}
    assert roles == {
        "owner@romashka.example": "OWNER", "admin@romashka.example": "ADMIN",
        "buh@romashka.example": "ACCOUNTANT", "user@romashka.example": "USER",
    }
