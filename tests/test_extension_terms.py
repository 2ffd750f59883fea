"""1cFresh «Подписки на тарифы»: several subscriptions per organization, the terms an extension would give
before it is taken, and why «Расширить» is not offered (and from when it is again) — by the one rule
extendSubscription applies (resolvers/cloud/subscription_terms.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import CloudSubscription, SubscriptionExtension
from models.organizations import Role
from resolvers.cloud.subscriptions import limits_of
from resolvers.cloud.subscription_terms import SUBSCRIPTION_EXTENSION_DATABASES, SUBSCRIPTION_EXTENSION_DAYS, SUBSCRIPTION_EXTENSION_SESSIONS
from tests import factories
from tests.test_query_limits import _empty_database
from tests.test_subscription import extend, oid, parse, signed_in, subscribed_team

ROOT = Path(__file__).resolve().parent.parent
STANDING = """query($org: ID!) { organization(id: $org) { cloudSubscription { id tariff canExtend extendBlockedReason
  extendBlockedMessage nextExtendAt extensionTerms { extraSessions extraDatabases days startsAt endsAt sessionsLimit
  databasesLimit } } } }"""
LIST = """query($org: ID!, $first: Int, $after: String) { organization(id: $org) {
  cloudSubscription { id tariff }
  cloudSubscriptions(first: $first, after: $after) { totalCount edges { node { id tariff sessionsLimit canExtend } }
  pageInfo { hasNextPage endCursor } } } }"""
EXTEND_ONE = """mutation($org: ID!, $sub: ID) { extendSubscription(organizationId: $org, cloudSubscriptionId: $sub) {
  cloudSubscription { id tariff canExtend extendBlockedReason nextExtendAt } userErrors { code field message } } }"""


async def standing(gql, org, user) -> dict:
    body = await gql.execute(STANDING, {"org": oid(org)}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["organization"]["cloudSubscription"]


async def test_the_terms_shown_before_are_what_the_extension_gives(gql):
    org, team, subscription = await subscribed_team()
    before = utcnow()
    shown = await standing(gql, org, team[Role.OWNER])
    assert shown["canExtend"] is True and shown["extendBlockedReason"] is None and shown["nextExtendAt"] is None
    terms = shown["extensionTerms"]
    assert (terms["extraSessions"], terms["extraDatabases"], terms["days"]) == (
        SUBSCRIPTION_EXTENSION_SESSIONS, SUBSCRIPTION_EXTENSION_DATABASES, SUBSCRIPTION_EXTENSION_DAYS
    ) == (2, 8, 7)
    assert (terms["sessionsLimit"], terms["databasesLimit"]) == (5 + 2, 2 + 8)
    assert before - dt.timedelta(seconds=1) <= parse(terms["startsAt"]) and parse(terms["endsAt"]) - parse(terms["startsAt"]) == dt.timedelta(days=7)
    payload = await extend(gql, org, team[Role.OWNER])
    assert payload["userErrors"] == []
    [taken] = await SubscriptionExtension.filter(subscription_id=subscription.id)
    assert (taken.extra_sessions, taken.extra_databases) == (terms["extraSessions"], terms["extraDatabases"])
    assert abs((taken.ends_at - parse(terms["endsAt"])).total_seconds()) < 60


async def test_once_extended_the_reason_and_the_next_period_are_told(gql):
    org, team, subscription = await subscribed_team(Role.ADMIN)
    assert (await extend(gql, org, team[Role.OWNER]))["userErrors"] == []
    shown = await standing(gql, org, team[Role.OWNER])
    assert (shown["canExtend"], shown["extendBlockedReason"]) == (False, "ALREADY_EXTENDED")
    assert "одного раза за период" in shown["extendBlockedMessage"]
    next_period = dt.datetime.combine(subscription.ends_on + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    assert parse(shown["nextExtendAt"]) == next_period
    refused = await extend(gql, org, team[Role.OWNER])
    assert refused["userErrors"][0]["code"] == "LIMIT_EXCEEDED" and refused["userErrors"][0]["message"] == shown["extendBlockedMessage"]
    admin = await standing(gql, org, team[Role.ADMIN])
    assert (admin["extendBlockedReason"], parse(admin["nextExtendAt"])) == ("NOT_OWNER", next_period)


async def test_a_member_who_is_not_the_owner_is_told_why(gql):
    org, team, _ = await subscribed_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    for role in (Role.ADMIN, Role.ACCOUNTANT, Role.USER):
        shown = await standing(gql, org, team[role])
        assert (shown["canExtend"], shown["extendBlockedReason"], shown["nextExtendAt"]) == (False, "NOT_OWNER", None), role
        assert "владелец" in shown["extendBlockedMessage"]
        refused = await extend(gql, org, team[role])
        assert refused["userErrors"][0]["code"] == "FORBIDDEN"


async def test_an_organization_lists_its_subscriptions_the_main_one_first(gql):
    org, team, main = await subscribed_team(Role.USER)
    today = utcnow().date()
    added = await CloudSubscription.create(
        organization=org, tariff="Дополнительные сеансы", sessions_limit=3, databases_limit=0,
        starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30),
    )
    email = await signed_in(gql, team[Role.USER])
    body = await gql.execute(LIST, {"org": oid(org)}, as_user=email)
    data = body["data"]["organization"]
    assert data["cloudSubscription"] == {"id": to_global_id("CloudSubscription", main.id), "tariff": main.tariff}
    listed = data["cloudSubscriptions"]
    assert [e["node"]["tariff"] for e in listed["edges"]] == [main.tariff, "Дополнительные сеансы"] and listed["totalCount"] == 2
    page = (await gql.execute(LIST, {"org": oid(org), "first": 1}, as_user=email))["data"]["organization"]["cloudSubscriptions"]
    assert [e["node"]["tariff"] for e in page["edges"]] == [main.tariff] and page["pageInfo"]["hasNextPage"]
    rest = (await gql.execute(LIST, {"org": oid(org), "first": 1, "after": page["pageInfo"]["endCursor"]}, as_user=email))
    assert [e["node"]["tariff"] for e in rest["data"]["organization"]["cloudSubscriptions"]["edges"]] == ["Дополнительные сеансы"]
    node = await gql.execute(
        """query($id: ID!) { node(id: $id) { ... on CloudSubscription { tariff sessionsLimit } } }""",
        {"id": to_global_id("CloudSubscription", added.id)}, as_user=email,
    )
    assert node["data"]["node"] == {"tariff": "Дополнительные сеансы", "sessionsLimit": 3}
    limits = (await limits_of([org.id], utcnow()))[org.id]
    assert (limits.sessions, limits.databases) == (5 + 3, 2 + 0), "the limits in force are the subscriptions' sum"


async def test_each_subscription_is_extended_on_its_own(gql):
    org, team, main = await subscribed_team()
    today = utcnow().date()
    added = await CloudSubscription.create(
        organization=org, tariff="Дополнительные сеансы", sessions_limit=3, databases_limit=0,
        starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30),
    )
    email = await signed_in(gql, team[Role.OWNER])
    body = await gql.execute(EXTEND_ONE, {"org": oid(org), "sub": to_global_id("CloudSubscription", added.id)}, as_user=email)
    payload = body["data"]["extendSubscription"]
    assert payload["userErrors"] == [] and payload["cloudSubscription"]["tariff"] == "Дополнительные сеансы"
    assert payload["cloudSubscription"]["extendBlockedReason"] == "ALREADY_EXTENDED"
    main_payload = (await gql.execute(EXTEND_ONE, {"org": oid(org)}, as_user=email))["data"]["extendSubscription"]
    assert main_payload["userErrors"] == [] and main_payload["cloudSubscription"]["tariff"] == main.tariff
    limits = (await limits_of([org.id], utcnow()))[org.id]
    assert (limits.sessions, limits.databases) == (5 + 3 + 2 + 2, 2 + 0 + 8 + 8)
    other, other_team, other_sub = await subscribed_team()
    stray = await gql.execute(EXTEND_ONE, {"org": oid(org), "sub": to_global_id("CloudSubscription", other_sub.id)}, as_user=email)
    assert [(e["code"], e["field"]) for e in stray["data"]["extendSubscription"]["userErrors"]] == [("NOT_FOUND", ["cloudSubscriptionId"])]


async def test_a_stranger_sees_no_subscription_of_another_organization(gql):
    org, _, subscription = await subscribed_team()
    _, stranger, _ = await subscribed_team()
    email = await signed_in(gql, stranger[Role.OWNER])
    body = await gql.execute(
        """query($id: ID!) { node(id: $id) { ... on CloudSubscription { tariff } } }""",
        {"id": to_global_id("CloudSubscription", subscription.id)}, as_user=email,
    )
    assert body["data"]["node"] is None


# ---------------------------------------------------------------------------------------- the migration

MIGRATION = r"""
import asyncio, json, sys
from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate
from kabinet.db import tortoise_config

async def main(url):
    config = tortoise_config(url)
    await migrate(config=config, target="models.0016_clusters")
    db = connections.get("default")
    await db.execute_script(
        "INSERT INTO organization (id, created_at, name, inn, kind, moderation_status, code) VALUES "
        "('00000000-0000-0000-0000-00000000000a', '2026-01-02 03:04:05+00:00', 'ООО Тест', '7707083893', 'LEGAL_ENTITY', 'APPROVED', 'T-1')"
    )
    await db.execute_script(
        "INSERT INTO cloud_subscription (id, created_at, organization_id, tariff, sessions_limit, databases_limit, starts_on, ends_on) "
        "VALUES ('00000000-0000-0000-0000-00000000000b', '2026-01-02 03:04:05+00:00', '00000000-0000-0000-0000-00000000000a', "
        "'Стандарт', 5, 2, '2026-01-01', '2026-01-31')"
    )
    await db.execute_script(
        "INSERT INTO subscription_extension (id, created_at, subscription_id, period_starts_on, extra_sessions, extra_databases, "
        "starts_at, ends_at) VALUES ('00000000-0000-0000-0000-00000000000c', '2026-01-02 03:04:05+00:00', "
        "'00000000-0000-0000-0000-00000000000b', '2026-01-01', 2, 8, '2026-01-05 00:00:00+00:00', '2026-01-12 00:00:00+00:00')"
    )
    await Tortoise.close_connections()
    await migrate(config=config)
    db = connections.get("default")
    await db.execute_script(
        "INSERT INTO cloud_subscription (id, created_at, organization_id, tariff, sessions_limit, databases_limit, starts_on, ends_on) "
        "VALUES ('00000000-0000-0000-0000-00000000000d', '2026-01-03 03:04:05+00:00', '00000000-0000-0000-0000-00000000000a', "
        "'Дополнительно', 1, 0, '2026-01-01', '2026-01-31')"
    )
    subscriptions = await db.execute_query_dict("SELECT tariff, sessions_limit FROM cloud_subscription ORDER BY created_at")
    extensions = await db.execute_query_dict("SELECT extra_sessions FROM subscription_extension")
    versions = await db.execute_query_dict("SELECT count(*) AS n FROM data_version")
    await Tortoise.close_connections()
    print(json.dumps({"subscriptions": subscriptions, "extensions": extensions, "versions": versions}, default=str))

asyncio.run(main(sys.argv[1]))
"""


async def test_migration_0021_keeps_the_subscriptions_and_allows_several(tmp_path):
    url, drop = await _empty_database(tmp_path)
    try:
        result = subprocess.run([sys.executable, "-c", MIGRATION, url], cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        if drop is not None:
            await drop()
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert rows["subscriptions"] == [{"tariff": "Стандарт", "sessions_limit": 5}, {"tariff": "Дополнительно", "sessions_limit": 1}]
    assert rows["extensions"] == [{"extra_sessions": 2}]
    assert rows["versions"][0]["n"] >= 1, "the version triggers fire again after the table was rebuilt"
