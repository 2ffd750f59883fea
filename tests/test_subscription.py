"""«Временное расширение тарифа»: the owner's one extension per subscription period (+2 sessions, +8 databases, 7 days)."""

from __future__ import annotations

import asyncio
import datetime as dt

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.cloud import CloudSubscription, SubscriptionExtension
from models.organizations import Role
from foundation.ids import to_global_id
from tests import factories

EXTEND = """mutation($org: ID!) { extendSubscription(organizationId: $org) {
  cloudSubscription { sessionsLimit databasesLimit canExtend extension { extraSessions extraDatabases startsAt endsAt } }
  userErrors { code field message } } }"""
SUBSCRIPTION = """query($org: ID!) { organization(id: $org) { cloudSubscription {
  sessionsLimit databasesLimit canExtend extension { endsAt } } } }"""


async def signed_in(gql, user) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


def oid(organization) -> str:
    return to_global_id("Organization", organization.id)


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def subscribed_team(*roles: Role):
    org, team = await factories.create_team(*roles)
    today = utcnow().date()
    subscription = await CloudSubscription.create(
        organization=org, tariff="Облако 1С: Стандарт", sessions_limit=5, databases_limit=2,
        starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30),
    )
    return org, team, subscription


async def extend(gql, org, user) -> dict:
    body = await gql.execute(EXTEND, {"org": oid(org)}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["extendSubscription"]


async def test_the_owner_extends_the_subscription_by_two_sessions_and_eight_databases_for_seven_days(gql):
    org, team, _ = await subscribed_team()
    before = utcnow()
    payload = await extend(gql, org, team[Role.OWNER])
    assert payload["userErrors"] == []
    subscription = payload["cloudSubscription"]
    assert (subscription["sessionsLimit"], subscription["databasesLimit"]) == (7, 10)
    assert subscription["extension"]["extraSessions"] == 2 and subscription["extension"]["extraDatabases"] == 8
    starts, ends = parse(subscription["extension"]["startsAt"]), parse(subscription["extension"]["endsAt"])
    assert before - dt.timedelta(seconds=1) <= starts <= utcnow() and ends - starts == dt.timedelta(days=7)
    assert subscription["canExtend"] is False


async def test_the_extended_limits_show_in_the_organizations_subscription(gql):
    org, team, _ = await subscribed_team(Role.ADMIN)
    await extend(gql, org, team[Role.OWNER])
    body = await gql.execute(SUBSCRIPTION, {"org": oid(org)}, as_user=await signed_in(gql, team[Role.ADMIN]))
    subscription = body["data"]["organization"]["cloudSubscription"]
    assert (subscription["sessionsLimit"], subscription["databasesLimit"]) == (7, 10)
    assert subscription["extension"] is not None and subscription["canExtend"] is False


async def test_extending_is_audited(gql):
    org, team, subscription = await subscribed_team()
    await extend(gql, org, team[Role.OWNER])
    entry = await AuditEntry.get(action="subscription.extend", organization_id=org.id)
    assert entry.actor_id == team[Role.OWNER].id and entry.object_id == str(subscription.id)
    assert entry.details["extraSessions"] == 2 and entry.details["extraDatabases"] == 8


async def test_a_second_extension_in_the_same_period_is_limit_exceeded(gql):
    org, team, _ = await subscribed_team()
    await extend(gql, org, team[Role.OWNER])
    payload = await extend(gql, org, team[Role.OWNER])
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("LIMIT_EXCEEDED", ["organizationId"])]
    assert payload["cloudSubscription"] is None
    assert await SubscriptionExtension.filter(subscription__organization_id=org.id).count() == 1


async def test_two_simultaneous_extensions_make_only_one(gql):
    org, team, _ = await subscribed_team()
    await signed_in(gql, team[Role.OWNER])
    results = await asyncio.gather(*(extend(gql, org, team[Role.OWNER]) for _ in range(2)))
    assert sorted(r["userErrors"][0]["code"] if r["userErrors"] else "" for r in results) == ["", "LIMIT_EXCEEDED"]
    assert await SubscriptionExtension.filter(subscription__organization_id=org.id).count() == 1


async def test_once_the_extension_is_over_the_limits_are_back_and_it_cannot_be_extended_again_this_period(gql):
    org, team, subscription = await subscribed_team()
    await SubscriptionExtension.create(
        subscription=subscription, period_starts_on=subscription.starts_on, extra_sessions=2, extra_databases=8,
        starts_at=utcnow() - dt.timedelta(days=8), ends_at=utcnow() - dt.timedelta(days=1),
    )
    body = await gql.execute(SUBSCRIPTION, {"org": oid(org)}, as_user=await signed_in(gql, team[Role.OWNER]))
    view = body["data"]["organization"]["cloudSubscription"]
    assert (view["sessionsLimit"], view["databasesLimit"], view["extension"], view["canExtend"]) == (5, 2, None, False)
    assert (await extend(gql, org, team[Role.OWNER]))["userErrors"][0]["code"] == "LIMIT_EXCEEDED"


async def test_a_new_subscription_period_allows_a_new_extension(gql):
    org, team, subscription = await subscribed_team()
    await SubscriptionExtension.create(
        subscription=subscription, period_starts_on=subscription.starts_on - dt.timedelta(days=31),
        extra_sessions=2, extra_databases=8,
        starts_at=utcnow() - dt.timedelta(days=40), ends_at=utcnow() - dt.timedelta(days=33),
    )
    payload = await extend(gql, org, team[Role.OWNER])
    assert payload["userErrors"] == [] and payload["cloudSubscription"]["sessionsLimit"] == 7


async def test_an_admin_may_not_extend_the_subscription(gql):
    org, team, _ = await subscribed_team(Role.ADMIN)
    payload = await extend(gql, org, team[Role.ADMIN])
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", None)]
    assert not await SubscriptionExtension.filter(subscription__organization_id=org.id).exists()


async def test_an_accountant_may_not_extend_the_subscription(gql):
    org, team, _ = await subscribed_team(Role.ACCOUNTANT)
    assert (await extend(gql, org, team[Role.ACCOUNTANT]))["userErrors"][0]["code"] == "FORBIDDEN"


async def test_a_user_may_not_extend_the_subscription(gql):
    org, team, _ = await subscribed_team(Role.USER)
    assert (await extend(gql, org, team[Role.USER]))["userErrors"][0]["code"] == "FORBIDDEN"


async def test_the_owner_of_another_organization_gets_not_found(gql):
    org, _, _ = await subscribed_team()
    _, stranger, _ = await subscribed_team()
    payload = await extend(gql, org, stranger[Role.OWNER])
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["organizationId"])]
    assert not await SubscriptionExtension.filter(subscription__organization_id=org.id).exists()


async def test_an_organization_without_a_cloud_subscription_cannot_extend_one(gql):
    org, team = await factories.create_team()
    payload = await extend(gql, org, team[Role.OWNER])
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID", ["organizationId"]) and "no cloud subscription" in error["message"]


async def test_a_passed_period_rolls_over_by_itself_and_the_extension_is_offered_again(gql):
    """The provider sent no new period: the next month is the new one (issue 12: after one extension
    the owner could never extend again), and the old period's extension stays in the history."""
    org, team, subscription = await subscribed_team()
    today = utcnow().date()
    subscription.starts_on, subscription.ends_on = today - dt.timedelta(days=60), today - dt.timedelta(days=31)
    await subscription.save()
    await SubscriptionExtension.create(
        subscription=subscription, period_starts_on=subscription.starts_on, extra_sessions=2, extra_databases=8,
        starts_at=utcnow() - dt.timedelta(days=50), ends_at=utcnow() - dt.timedelta(days=43),
    )
    history = """query($org: ID!) { organization(id: $org) { cloudSubscription {
      startsOn endsOn canExtend extensions { periodStartsOn extraSessions } } } }"""
    owner = await signed_in(gql, team[Role.OWNER])
    view = (await gql.execute(history, {"org": oid(org)}, as_user=owner))["data"]["organization"]["cloudSubscription"]
    starts_on, ends_on = dt.date.fromisoformat(view["startsOn"]), dt.date.fromisoformat(view["endsOn"])
    assert starts_on <= today <= ends_on and starts_on > subscription.ends_on and view["canExtend"] is True

    payload = await extend(gql, org, team[Role.OWNER])
    assert payload["userErrors"] == [] and payload["cloudSubscription"]["sessionsLimit"] == 7
    stored = await CloudSubscription.get(id=subscription.id)
    assert (stored.starts_on, stored.ends_on) == (starts_on, ends_on)  # rolled over on the row it locked
    assert await AuditEntry.filter(organization_id=org.id, action="subscription.period").count() == 1
    view = (await gql.execute(history, {"org": oid(org)}, as_user=owner))["data"]["organization"]["cloudSubscription"]
    assert [e["periodStartsOn"] for e in view["extensions"]] == [starts_on.isoformat(), subscription.starts_on.isoformat()]
    assert view["canExtend"] is False


async def test_the_period_worker_rolls_each_passed_period_over_once_and_tells_the_dashboards(app):
    from models.events import OrganizationEvent
    from events.log import DATA
    from workers.periods import roll_over_periods

    org, _, subscription = await subscribed_team()
    today = utcnow().date()
    subscription.starts_on, subscription.ends_on = today - dt.timedelta(days=40), today - dt.timedelta(days=10)
    await subscription.save()
    assert await roll_over_periods(app.state.broadcast) >= 1  # this one, and any other passed one of the suite's
    assert await roll_over_periods(app.state.broadcast) == 0
    stored = await CloudSubscription.get(id=subscription.id)
    assert stored.starts_on == today - dt.timedelta(days=9) and stored.starts_on <= today <= stored.ends_on
    events = await OrganizationEvent.filter(organization_id=org.id, topic=DATA)
    assert [e.payload for e in events] == [{"areas": ["cloud"]}]


def test_a_period_is_a_calendar_month_from_the_day_after_the_last_one():
    from resolvers.cloud.subscriptions import current_period

    d = dt.date
    assert current_period(d(2026, 1, 1), d(2026, 1, 31), d(2026, 1, 15)) == (d(2026, 1, 1), d(2026, 1, 31))
    assert current_period(d(2026, 1, 1), d(2026, 1, 31), d(2026, 2, 1)) == (d(2026, 2, 1), d(2026, 2, 28))
    assert current_period(d(2026, 1, 1), d(2026, 1, 31), d(2026, 4, 30)) == (d(2026, 4, 1), d(2026, 4, 30))
    assert current_period(d(2026, 1, 15), d(2026, 2, 14), d(2026, 3, 20)) == (d(2026, 3, 15), d(2026, 4, 14))
    assert current_period(d(2024, 1, 31), d(2024, 1, 31), d(2024, 2, 29)) == (d(2024, 2, 1), d(2024, 2, 29))
