"""«Завершить сеанс» and «Завершить все сеансы»: who may end which sessions, and what they become."""

from __future__ import annotations

import asyncio

from models.audit import AuditEntry
from models.cloud import Session, SessionStatus
from models.organizations import DatabaseGrant, Membership, Role
from foundation.ids import to_global_id
from tests import factories

TERMINATE = """mutation($id: ID!) { terminateSession(sessionId: $id) {
  session { id status userName endedAt } userErrors { code field message } } }"""
TERMINATE_ALL = """mutation($org: ID!, $db: ID) { terminateAllSessions(organizationId: $org, databaseId: $db) {
  sessions { id status database { name } } userErrors { code field message } } }"""


async def signed_in(gql, user) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


def sid(session) -> str:
    return to_global_id("Session", session.id)


def oid(organization) -> str:
    return to_global_id("Organization", organization.id)


async def status_of(session) -> SessionStatus:
    await session.refresh_from_db()
    return session.status


async def terminate(gql, session, user) -> dict:
    body = await gql.execute(TERMINATE, {"id": sid(session)}, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["terminateSession"]


async def terminate_all(gql, organization, user, database=None) -> dict:
    variables = {"org": oid(organization), "db": to_global_id("Database", database.id) if database else None}
    body = await gql.execute(TERMINATE_ALL, variables, as_user=await signed_in(gql, user))
    assert "errors" not in body, body
    return body["data"]["terminateAllSessions"]


# ---------------------------------------------------------------------------------------- one session


async def test_an_owner_terminates_a_session_of_the_organization(gql):
    org, team = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org))
    payload = await terminate(gql, session, team[Role.OWNER])
    assert payload["userErrors"] == []
    assert payload["session"]["id"] == sid(session) and payload["session"]["status"] == "TERMINATING"
    await session.refresh_from_db()
    assert session.status == SessionStatus.TERMINATING
    assert session.termination_requested_by_id == team[Role.OWNER].id and session.termination_requested_at is not None
    assert session.ended_at is None, "the cluster worker ends it and marks it TERMINATED"


async def test_terminating_a_session_is_audited(gql):
    org, team = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org), user_name="Кассир")
    await terminate(gql, session, team[Role.OWNER])
    entry = await AuditEntry.get(action="session.terminate", object_id=str(session.id))
    assert entry.organization_id == org.id and entry.actor_id == team[Role.OWNER].id
    assert entry.details["userName"] == "Кассир"


async def test_an_admin_terminates_anyones_session(gql):
    org, team = await factories.create_team(Role.ADMIN, Role.USER)
    session = await factories.create_session(await factories.create_database(org), user=team[Role.USER])
    payload = await terminate(gql, session, team[Role.ADMIN])
    assert payload["userErrors"] == [] and await status_of(session) == SessionStatus.TERMINATING


async def test_a_user_terminates_their_own_session(gql):
    org, team = await factories.create_team(Role.USER)
    session = await factories.create_session(await factories.create_database(org), user=team[Role.USER])
    payload = await terminate(gql, session, team[Role.USER])
    assert payload["userErrors"] == [] and payload["session"]["status"] == "TERMINATING"


async def test_a_user_may_not_terminate_someone_elses_session(gql):
    org, team = await factories.create_team(Role.USER)
    session = await factories.create_session(await factories.create_database(org), user=team[Role.OWNER])
    payload = await terminate(gql, session, team[Role.USER])
    assert payload["session"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("FORBIDDEN", None)]
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_an_accountant_may_not_terminate_a_session(gql):
    org, team = await factories.create_team(Role.ACCOUNTANT)
    session = await factories.create_session(await factories.create_database(org), user=team[Role.ACCOUNTANT])
    payload = await terminate(gql, session, team[Role.ACCOUNTANT])
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_another_organizations_session_does_not_exist_for_the_caller(gql):
    org, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org))
    payload = await terminate(gql, session, stranger[Role.OWNER])
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["sessionId"])]
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_an_id_that_is_not_a_session_is_not_found(gql):
    org, team = await factories.create_team()
    body = await gql.execute(TERMINATE, {"id": oid(org)}, as_user=await signed_in(gql, team[Role.OWNER]))
    assert body["data"]["terminateSession"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_a_session_already_terminating_cannot_be_terminated_again(gql):
    org, team = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org))
    await terminate(gql, session, team[Role.OWNER])
    payload = await terminate(gql, session, team[Role.OWNER])
    [error] = payload["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID", ["sessionId"])
    assert "already being terminated" in error["message"]


async def test_an_ended_session_cannot_be_terminated_and_the_message_says_why(gql):
    org, team = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org))
    session.status = SessionStatus.ENDED
    await session.save()
    [error] = (await terminate(gql, session, team[Role.OWNER]))["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID", ["sessionId"]) and "logged off" in error["message"]
    assert await status_of(session) == SessionStatus.ENDED


async def test_two_simultaneous_terminations_change_the_session_once(gql):
    org, team = await factories.create_team(Role.ADMIN)
    session = await factories.create_session(await factories.create_database(org))
    for user in team.values():
        await signed_in(gql, user)  # sign in first, so the two requests race only on the session
    results = await asyncio.gather(
        terminate(gql, session, team[Role.OWNER]), terminate(gql, session, team[Role.ADMIN])
    )
    assert sorted(len(r["userErrors"]) for r in results) == [0, 1]
    assert await AuditEntry.filter(action="session.terminate", object_id=str(session.id)).count() == 1


# ---------------------------------------------------------------------------------------- all sessions


async def test_an_owner_terminates_all_active_sessions_of_the_organization(gql):
    org, team = await factories.create_team(Role.USER)
    first, second = await factories.create_database(org, name="Первая"), await factories.create_database(org, name="Вторая")
    active = [await factories.create_session(first), await factories.create_session(second, user=team[Role.USER])]
    ended = await factories.create_session(first)
    ended.status = SessionStatus.ENDED
    await ended.save()
    payload = await terminate_all(gql, org, team[Role.OWNER])
    assert payload["userErrors"] == []
    assert sorted(s["id"] for s in payload["sessions"]) == sorted(sid(s) for s in active)
    assert {s["status"] for s in payload["sessions"]} == {"TERMINATING"}
    assert [await status_of(s) for s in active] == [SessionStatus.TERMINATING] * 2
    assert await status_of(ended) == SessionStatus.ENDED


async def test_terminating_all_sessions_audits_each_one(gql):
    org, team = await factories.create_team()
    database = await factories.create_database(org)
    sessions = [await factories.create_session(database) for _ in range(3)]
    await terminate_all(gql, org, team[Role.OWNER])
    audited = await AuditEntry.filter(action="session.terminate", organization_id=org.id).values_list("object_id", flat=True)
    assert sorted(audited) == sorted(str(s.id) for s in sessions)


async def test_an_admin_terminates_all_sessions_of_one_database(gql):
    org, team = await factories.create_team(Role.ADMIN)
    first, second = await factories.create_database(org, name="Первая"), await factories.create_database(org, name="Вторая")
    in_first, in_second = await factories.create_session(first), await factories.create_session(second)
    payload = await terminate_all(gql, org, team[Role.ADMIN], database=first)
    assert [s["id"] for s in payload["sessions"]] == [sid(in_first)]
    assert payload["sessions"][0]["database"]["name"] == "Первая"
    assert await status_of(in_second) == SessionStatus.ACTIVE


async def test_a_user_terminating_all_sessions_ends_only_their_own(gql):
    org, team = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    own = await factories.create_session(database, user=team[Role.USER])
    others = await factories.create_session(database, user=team[Role.OWNER])
    payload = await terminate_all(gql, org, team[Role.USER])
    assert [s["id"] for s in payload["sessions"]] == [sid(own)]
    assert await status_of(others) == SessionStatus.ACTIVE


async def test_a_user_terminates_all_their_sessions_of_a_database_granted_to_them(gql):
    org, team = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    membership = await Membership.get(organization_id=org.id, user_id=team[Role.USER].id)
    await DatabaseGrant.create(membership=membership, database=database)
    own = await factories.create_session(database, user=team[Role.USER])
    payload = await terminate_all(gql, org, team[Role.USER], database=database)
    assert payload["userErrors"] == [] and [s["id"] for s in payload["sessions"]] == [sid(own)]


async def test_a_database_not_granted_to_a_user_is_not_found_for_them(gql):
    org, team = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    own = await factories.create_session(database, user=team[Role.USER])
    payload = await terminate_all(gql, org, team[Role.USER], database=database)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["databaseId"])]
    assert await status_of(own) == SessionStatus.ACTIVE


async def test_an_accountant_may_not_terminate_all_sessions(gql):
    org, team = await factories.create_team(Role.ACCOUNTANT)
    session = await factories.create_session(await factories.create_database(org))
    payload = await terminate_all(gql, org, team[Role.ACCOUNTANT])
    assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"] and payload["sessions"] == []
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_terminating_all_sessions_of_another_organization_is_not_found(gql):
    org, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    session = await factories.create_session(await factories.create_database(org))
    payload = await terminate_all(gql, org, stranger[Role.OWNER])
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["organizationId"])]
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_a_database_of_another_organization_is_not_found(gql):
    org, team = await factories.create_team()
    other, _ = await factories.create_team()
    foreign = await factories.create_database(other)
    session = await factories.create_session(foreign)
    payload = await terminate_all(gql, org, team[Role.OWNER], database=foreign)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["databaseId"])]
    assert await status_of(session) == SessionStatus.ACTIVE


async def test_with_no_active_session_terminating_all_answers_an_empty_list(gql):
    org, team = await factories.create_team()
    await factories.create_database(org)
    payload = await terminate_all(gql, org, team[Role.OWNER])
    assert payload == {"sessions": [], "userErrors": []}


async def test_sessions_already_terminating_are_not_asked_again(gql):
    org, team = await factories.create_team()
    database = await factories.create_database(org)
    first, second = await factories.create_session(database), await factories.create_session(database)
    await terminate(gql, first, team[Role.OWNER])
    payload = await terminate_all(gql, org, team[Role.OWNER])
    assert [s["id"] for s in payload["sessions"]] == [sid(second)]
    assert await Session.filter(organization_id=org.id, status=SessionStatus.TERMINATING).count() == 2
