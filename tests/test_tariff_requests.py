"""requestTariffChange (issue 20; 1cFresh «обратиться к обслуживающей организации… доп. сеансов…
другой тариф»): a TARIFF_CHANGE ticket by the owner or an administrator, naming what is asked."""

from __future__ import annotations

import datetime as dt

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import CloudSubscription
from models.organizations import Role
from models.tickets import SupportTicket, TicketComment, TicketKind, TicketStatus
from tests import factories
from tests.test_add_organization import signed_in

REQUEST = """mutation($input: RequestTariffChangeInput!) { requestTariffChange(input: $input) {
  ticket { id subject status } userErrors { code field message } } }"""


async def subscribed(*roles: Role):
    organization, team = await factories.create_team(*roles)
    today = utcnow().date()
    subscription = await CloudSubscription.create(
        organization=organization, tariff="Стандарт", sessions_limit=5, databases_limit=3,
        starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30),
    )
    return organization, team, subscription


async def ask(gql, user, organization, **values) -> dict:
    email = await signed_in(gql, user)
    body = await gql.execute(REQUEST, {"input": {"organizationId": to_global_id("Organization", organization.id), **values}}, as_user=email)
    assert "errors" not in body, body
    return body["data"]["requestTariffChange"]


async def test_the_owner_asks_for_more_sessions_and_another_tariff_as_a_ticket(gql):
    organization, team, subscription = await subscribed()
    answer = await ask(gql, team[Role.OWNER], organization, extraSessions=3, tariff="Корпоративный", comment="С начала месяца")
    assert answer["userErrors"] == [] and answer["ticket"]["status"] == "OPEN"
    ticket = await SupportTicket.get(organization_id=organization.id)
    assert ticket.kind == TicketKind.TARIFF_CHANGE and ticket.author_id == team[Role.OWNER].id
    text = (await TicketComment.get(ticket_id=ticket.id)).text
    assert "«Стандарт»" in text and "Дополнительные сеансы: +3" in text and "Другой тариф: Корпоративный" in text
    assert "С начала месяца" in text and "Дополнительные базы" not in text


async def test_an_admin_may_ask_other_roles_may_not(gql):
    organization, team, _ = await subscribed(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    assert (await ask(gql, team[Role.ADMIN], organization, extraDatabases=2))["userErrors"] == []
    for role in (Role.ACCOUNTANT, Role.USER):
        refused = await ask(gql, team[role], organization, extraDatabases=2)
        assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"] and refused["ticket"] is None, role
    assert await SupportTicket.filter(organization_id=organization.id).count() == 1


async def test_nothing_asked_or_out_of_bounds_is_invalid_on_its_field(gql):
    organization, team, _ = await subscribed()
    owner = team[Role.OWNER]
    assert [(e["code"], e["field"]) for e in (await ask(gql, owner, organization))["userErrors"]] == [("INVALID", ["input", "tariff"])]
    assert [(e["code"], e["field"]) for e in (await ask(gql, owner, organization, extraSessions=-1))["userErrors"]] == [
        ("INVALID", ["input", "extraSessions"])]
    assert [(e["code"], e["field"]) for e in (await ask(gql, owner, organization, extraDatabases=10_000))["userErrors"]] == [
        ("INVALID", ["input", "extraDatabases"])]
    assert [(e["code"], e["field"]) for e in (await ask(gql, owner, organization, tariff="Т" * 101))["userErrors"]] == [
        ("INVALID", ["input", "tariff"])]
    # a NUL is refused on its field (PostgreSQL would refuse the ticket's text: a 500 the fuzz test found)
    assert [(e["code"], e["field"]) for e in (await ask(gql, owner, organization, extraSessions=1, comment="\x00"))["userErrors"]] == [
        ("INVALID", ["input", "comment"])]
    assert await SupportTicket.filter(organization_id=organization.id).count() == 0


async def test_another_organizations_subscription_does_not_exist_for_the_caller(gql):
    organization, team, _ = await subscribed()
    other, _, foreign = await subscribed()
    answer = await ask(gql, team[Role.OWNER], organization, extraSessions=1,
                       cloudSubscriptionId=to_global_id("CloudSubscription", foreign.id))
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("NOT_FOUND", ["input", "cloudSubscriptionId"])]
    refused = await ask(gql, team[Role.OWNER], other, extraSessions=1)
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    assert await SupportTicket.filter(status=TicketStatus.OPEN, organization_id__in=[organization.id, other.id]).count() == 0
