"""The audit log: the owner and admins read who changed what, newest first; nobody edits it."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from models.audit import AuditEntry
from models.organizations import Role
from foundation.ids import to_global_id
from tests import factories
from tests.factories import PASSWORD

AUDIT_LOG = """query($id: ID!, $action: String, $from: Date, $to: Date, $first: Int, $after: String) {
  organization(id: $id) { name auditLog(action: $action, from: $from, to: $to, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id action objectType objectId details ipAddress createdAt actor { email } } } } } }"""


async def signed_in(gql, user) -> str:
    await gql.token_for_password(user.email, PASSWORD)
    return user.email


async def entry(organization, actor, action: str, *, days_ago: int = 0, **details) -> AuditEntry:
    row = await AuditEntry.create(
        organization_id=organization.id, actor_id=actor.id if actor else None, action=action, object_type="Membership",
        object_id=str(uuid.uuid4()), details=details, ip_address="10.0.0.7",
    )
    if days_ago:
        row.created_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
        await AuditEntry.filter(id=row.id).update(created_at=row.created_at)
    return row


async def audit_log(gql, organization, user, **arguments) -> dict:
    variables = {"id": to_global_id("Organization", organization.id), **arguments}
    return await gql.execute(AUDIT_LOG, variables, as_user=await signed_in(gql, user))


def actions(body: dict) -> list[str]:
    return [e["node"]["action"] for e in body["data"]["organization"]["auditLog"]["edges"]]


async def test_the_owner_reads_the_log_newest_first_with_who_what_and_from_where(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    await entry(organization, team[Role.OWNER], "invite.create", days_ago=2, email="a@b.ru", role="USER")
    newest_row = await entry(organization, team[Role.ADMIN], "member.role_change", days_ago=1, to="ACCOUNTANT")
    body = await audit_log(gql, organization, team[Role.OWNER])
    assert "errors" not in body, body
    log = body["data"]["organization"]["auditLog"]
    assert log["totalCount"] == 2 and actions(body) == ["member.role_change", "invite.create"]
    newest = log["edges"][0]["node"]
    assert newest["actor"] == {"email": team[Role.ADMIN].email}
    assert json.loads(newest["details"]) == {"to": "ACCOUNTANT"}
    assert newest["objectId"] == to_global_id("Membership", uuid.UUID(newest_row.object_id))
    assert (newest["objectType"], newest["ipAddress"]) == ("Membership", "10.0.0.7")
    assert dt.datetime.fromisoformat(newest["createdAt"]).tzinfo is not None


async def test_an_admin_reads_the_log_too(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    await entry(organization, team[Role.OWNER], "invite.create")
    assert actions(await audit_log(gql, organization, team[Role.ADMIN])) == ["invite.create"]


async def test_an_accountant_may_not_read_the_log_but_the_rest_of_the_query_answers(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    body = await audit_log(gql, organization, team[Role.ACCOUNTANT])
    assert body["data"]["organization"] == {"name": organization.name, "auditLog": None}
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [("FORBIDDEN", ["organization", "auditLog"])]


async def test_a_user_may_not_read_the_log(gql):
    organization, team = await factories.create_team(Role.USER)
    body = await audit_log(gql, organization, team[Role.USER])
    assert body["data"]["organization"]["auditLog"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_log_of_another_organization_is_not_there(gql):
    organization, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    assert (await audit_log(gql, organization, stranger[Role.OWNER]))["data"]["organization"] is None


async def test_the_log_filters_by_one_action_or_a_group_of_actions(gql):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    for action in ("member.remove", "member.role_change", "invite.create", "membership.other"):
        await entry(organization, owner, action)
    assert actions(await audit_log(gql, organization, owner, action="member.remove")) == ["member.remove"]
    assert sorted(actions(await audit_log(gql, organization, owner, action="member"))) == ["member.remove", "member.role_change"]


async def test_the_log_filters_by_inclusive_days(gql):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    for days_ago, action in ((10, "a.old"), (5, "b.middle"), (0, "c.today")):
        await entry(organization, owner, action, days_ago=days_ago)
    today = dt.datetime.now(dt.timezone.utc).date()
    five_days_ago = (today - dt.timedelta(days=5)).isoformat()
    assert actions(await audit_log(gql, organization, owner, **{"from": five_days_ago, "to": five_days_ago})) == ["b.middle"]
    assert actions(await audit_log(gql, organization, owner, **{"from": five_days_ago})) == ["c.today", "b.middle"]
    assert actions(await audit_log(gql, organization, owner, to=five_days_ago)) == ["b.middle", "a.old"]


async def test_from_after_to_is_a_bad_input(gql):
    organization, team = await factories.create_team()
    body = await audit_log(gql, organization, team[Role.OWNER], **{"from": "2026-02-02", "to": "2026-02-01"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_log_pages_with_cursors(gql):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    for i in range(5):
        await entry(organization, owner, f"step.n{i}", days_ago=5 - i)
    first = await audit_log(gql, organization, owner, first=2)
    page = first["data"]["organization"]["auditLog"]
    assert actions(first) == ["step.n4", "step.n3"] and page["pageInfo"]["hasNextPage"] and page["totalCount"] == 5
    second = await audit_log(gql, organization, owner, first=2, after=page["pageInfo"]["endCursor"])
    assert actions(second) == ["step.n2", "step.n1"]


async def test_a_real_change_appears_in_the_log_with_its_actor(gql):
    organization, team = await factories.create_team()
    await gql.execute(
        """mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: "audit-me@example.com", role: USER}) {
        userErrors { code } } }""",
        {"o": to_global_id("Organization", organization.id)}, as_user=await signed_in(gql, team[Role.OWNER]),
    )
    body = await audit_log(gql, organization, team[Role.OWNER])
    node = body["data"]["organization"]["auditLog"]["edges"][0]["node"]
    assert node["action"] == "invite.create" and node["actor"] == {"email": team[Role.OWNER].email}
    assert json.loads(node["details"])["email"] == "audit-me@example.com"


async def test_no_mutation_edits_or_deletes_the_log(gql):
    body = await gql.execute("{ __type(name: \"Mutation\") { fields { name } } }")
    names = [f["name"].lower() for f in body["data"]["__type"]["fields"]]
    assert names and not [n for n in names if "audit" in n]


async def test_the_log_of_many_organizations_costs_the_same_statements_as_of_one(gql, sql_counter):
    async def statements(organizations: int) -> int:
        owner = await factories.create_user()
        for _ in range(organizations):
            organization = await factories.create_organization()
            await factories.add_member(organization, owner, Role.OWNER)
            for _ in range(3):
                await entry(organization, await factories.create_user(), "invite.create")
        await signed_in(gql, owner)
        query = "{ organizations { edges { node { auditLog(first: 10) { totalCount edges { node { action actor { email } } } } } } } }"
        with sql_counter() as counter:
            body = await gql.execute(query, as_user=owner.email)
        assert "errors" not in body, body
        assert all(e["node"]["auditLog"]["totalCount"] == 3 for e in body["data"]["organizations"]["edges"])
        return len(counter.statements)

    assert await statements(1) == await statements(4)
