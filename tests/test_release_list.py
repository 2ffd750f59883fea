"""`releases(configuration:)`: the releases of a configuration, newest first, recalled ones shown as such;
for staff and members of an organization with a database of that configuration, empty for anyone else."""

from __future__ import annotations

import datetime as dt

from models.organizations import Role
from models.updates import Release
from tests import factories
from tests.test_releases import configuration, staff
from tests.test_schedules import signed_in

UTC = dt.timezone.utc
RELEASES = """query($c: String!, $first: Int, $after: String) { releases(configuration: $c, first: $first, after: $after) {
  totalCount edges { cursor node { id version publishedAt recalledAt } } pageInfo { hasNextPage endCursor } } }"""


async def released(config: str) -> None:
    base = dt.datetime(2031, 1, 1, tzinfo=UTC)
    for day, version in enumerate(["3.0.150.1", "3.0.151.1", "3.0.152.1"]):
        await Release.create(configuration=config, version=version, published_at=base + dt.timedelta(days=day))
    await Release.filter(configuration=config, version="3.0.151.1").update(recalled_at=base + dt.timedelta(days=5))


async def listed(gql, email: str, config: str, **variables) -> dict:
    body = await gql.execute(RELEASES, {"c": config, **variables}, as_user=email)
    assert "errors" not in body, body
    return body["data"]["releases"]


async def test_every_role_of_an_organization_with_the_configuration_lists_its_releases_newest_first(gql):
    config = configuration()
    await released(config)
    org, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await factories.create_database(org)
    database.configuration = config
    await database.save()
    for role in (Role.OWNER, Role.ADMIN, Role.ACCOUNTANT, Role.USER):
        result = await listed(gql, await signed_in(gql, team[role]), config)
        versions = [(e["node"]["version"], e["node"]["recalledAt"] is not None) for e in result["edges"]]
        assert versions == [("3.0.152.1", False), ("3.0.151.1", True), ("3.0.150.1", False)], role
        assert result["totalCount"] == 3


async def test_pages_follow_each_other(gql):
    config = configuration()
    await released(config)
    email = await staff()
    await gql.token_for_password(email, factories.PASSWORD)
    first = await listed(gql, email, config, first=2)
    assert [e["node"]["version"] for e in first["edges"]] == ["3.0.152.1", "3.0.151.1"] and first["pageInfo"]["hasNextPage"]
    rest = await listed(gql, email, config, first=2, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["version"] for e in rest["edges"]] == ["3.0.150.1"] and not rest["pageInfo"]["hasNextPage"]
    assert rest["totalCount"] == 3


async def test_a_member_without_that_configuration_sees_nothing(gql):
    config = configuration()
    await released(config)
    org, team = await factories.create_team()
    await factories.create_database(org)  # another configuration
    result = await listed(gql, await signed_in(gql, team[Role.OWNER]), config)
    assert result == {"totalCount": 0, "edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_bad_input_is_refused_not_a_500(gql):
    org, team = await factories.create_team()
    email = await signed_in(gql, team[Role.OWNER])
    for config in ("", "x" * 201):
        body = await gql.execute(RELEASES, {"c": config}, as_user=email)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    body = await gql.execute(RELEASES, {"c": "x", "first": 1000}, as_user=email)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_anonymous_callers_are_refused(gql):
    body = await gql.execute(RELEASES, {"c": "Бухгалтерия предприятия"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
