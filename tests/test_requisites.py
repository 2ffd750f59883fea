"""Requisites and managers (issue 20): the check digits, whose the requisites are (the provider's: a
change waits as a request its next record confirms or supersedes; the customer's: applied at once),
who reads and changes them, and the provider's `organization` and `manager` records."""

from __future__ import annotations

import pytest

from foundation.ids import to_global_id
from models.audit import AuditEntry
from models.events import OrganizationEvent
from models.organizations import Organization, OrganizationKind
from models.requisites import Manager, RequisitesChange, RequisitesChangeStatus, RequisitesSource
from resolvers.organizations import requisites
from resolvers.organizations import requisites_validation
from resolvers.common.errors import UserFacingError
from events.log import DATA
from resolvers.provider.records import Outcome
from tests import factories
from tests.factories import Role
from tests.test_provider_records import ext, new_inn, outcomes, refusals, send

pytestmark = pytest.mark.usefixtures("app")

# Sberbank's own requisites: real numbers whose check digits are right.
SBERBANK = {
    "legal_name": "Публичное акционерное общество «Сбербанк России»", "kpp": "773601001", "ogrn": "1027700132195",
    "legal_address": "117312, г. Москва, ул. Вавилова, д. 19", "postal_address": None, "bank_name": "ПАО Сбербанк",
    "bic": "044525225", "correspondent_account": "30101810400000000225", "settlement_account": "40702810938000000001",
}
LEGAL = OrganizationKind.LEGAL_ENTITY

REQUISITES = """
query($id: ID!) { organization(id: $id) { legalName requisites { legalName inn kpp ogrn legalAddress postalAddress bankName bic
  correspondentAccount settlementAccount source confirmedAt
  pendingChange { legalName postalAddress settlementAccount status requestedAt requestedBy { fullName } } } } }
"""
CHANGE = """
mutation($id: ID!, $input: ChangeRequisitesInput!) { changeRequisites(organizationId: $id, input: $input) {
  requisites { postalAddress settlementAccount source pendingChange { status } }
  requestedChange { postalAddress settlementAccount status requestedBy { fullName } }
  userErrors { code field message } } }
"""
MANAGERS = "query($id: ID!) { organization(id: $id) { managers { id fullName title phone email } } }"


# ---------------------------------------------------------------- the check digits


def test_sberbanks_requisites_are_valid():
    assert requisites_validation.requisites(SBERBANK, LEGAL) == SBERBANK
    assert requisites_validation.requisites({**SBERBANK, "kpp": "7736AB001"}, LEGAL)["kpp"] == "7736AB001"  # a reason in letters


@pytest.mark.parametrize("field, value", [
    ("kpp", "77360100"),  # 8 characters
    ("kpp", "7736a1001"),  # a small letter in the reason
    ("ogrn", "1027700132194"),  # check digit
    ("ogrn", "102770013219"),  # 12 digits
    ("bic", "044525226X"),
    ("bic", "014525225"),  # not 04…
    ("correspondent_account", "30101810400000000226"),  # not the BIC's last three
    ("correspondent_account", "30101810500000000225"),  # control key
    ("settlement_account", "40702810838000000001"),  # control key
    ("settlement_account", "4070281093800000000"),  # 19 digits
    ("legal_name", "Я" * 501),
])
def test_a_wrong_requisite_is_refused_naming_its_field(field, value):
    with pytest.raises(UserFacingError) as refused:
        requisites_validation.requisites({**SBERBANK, field: value}, LEGAL)
    assert (refused.value.code.value, refused.value.field) == ("INVALID", field)


def test_the_inn_check_digits_of_ten_and_twelve():
    from resolvers.common import validation

    assert validation.inn_is_valid("7707083893") and validation.inn_is_valid("771234567859")
    assert not validation.inn_is_valid("7707083894") and not validation.inn_is_valid("771234567858")


def test_kinds_and_the_bank_block_hang_together():
    with pytest.raises(UserFacingError) as refused:
        requisites_validation.requisites({**SBERBANK, "kpp": None}, OrganizationKind.SOLE_PROPRIETOR)
    assert refused.value.field == "ogrn"  # an OGRNIP has 15 digits
    sole = {**SBERBANK, "kpp": None, "ogrn": "304770000123453"}
    assert requisites_validation.requisites(sole, OrganizationKind.SOLE_PROPRIETOR)["ogrn"] == "304770000123453"
    with pytest.raises(UserFacingError) as refused:
        requisites_validation.requisites({**sole, "kpp": "773601001"}, OrganizationKind.SOLE_PROPRIETOR)
    assert refused.value.field == "kpp"
    with pytest.raises(UserFacingError) as refused:
        requisites_validation.requisites({**SBERBANK, "bic": None}, LEGAL)
    assert refused.value.field == "bic"  # an account is checked against a BIC
    with pytest.raises(UserFacingError) as refused:
        requisites_validation.requisites({**SBERBANK, "bank_name": None}, LEGAL)
    assert refused.value.field == "bank_name"


# ---------------------------------------------------------------- helpers


async def _team(organization: Organization) -> dict[Role, str]:
    """One member per role in `organization`, signed in; their logins by role."""
    logins = {}
    for role in (Role.OWNER, Role.ADMIN, Role.ACCOUNTANT, Role.USER):
        user = await factories.create_user(factories.unique_email(role.value.lower()), full_name=f"Член {role.value}")
        await factories.add_member(organization, user, role)
        logins[role] = user.email
    return logins


async def _signed_in(gql, logins: dict[Role, str]) -> None:
    for email in logins.values():
        await gql.token_for_password(email, factories.PASSWORD)


def _provider_record(external_id: str, inn: str, **changes) -> dict:
    values = {key: value for key, value in SBERBANK.items() if value is not None}
    return {"external_id": external_id, "inn": inn, "name": "ООО «Поставщик»", **values, **changes}


async def _providers_organization(gql) -> tuple[Organization, dict[Role, str], str]:
    external_id, inn = ext("org"), new_inn()
    assert outcomes(await send("organization", _provider_record(external_id, inn))) == [Outcome.CREATED]
    organization = await Organization.get(external_id=external_id)
    logins = await _team(organization)
    await _signed_in(gql, logins)
    return organization, logins, inn


async def _read(gql, organization: Organization, as_user: str) -> dict:
    body = await gql.execute(REQUISITES, {"id": to_global_id("Organization", organization.id)}, as_user=as_user)
    assert "errors" not in body, body
    return body["data"]["organization"]


async def _change(gql, organization: Organization, as_user: str, **input_) -> dict:
    body = await gql.execute(CHANGE, {"id": to_global_id("Organization", organization.id), "input": input_}, as_user=as_user)
    assert "errors" not in body, body
    return body["data"]["changeRequisites"]


# ---------------------------------------------------------------- whose they are


async def test_the_customers_own_requisites_change_at_once(gql):
    organization = await factories.create_organization(inn=new_inn())
    logins = await _team(organization)
    await _signed_in(gql, logins)
    answer = await _change(
        gql, organization, logins[Role.OWNER], legalName="ООО «Свои»", bic="044525225", bankName="ПАО Сбербанк",
        correspondentAccount="30101810400000000225", settlementAccount="4070 2810 9380 0000 0001",
    )
    assert answer["userErrors"] == [] and answer["requestedChange"] is None
    assert answer["requisites"]["settlementAccount"] == "40702810938000000001"
    assert answer["requisites"]["source"] == "CUSTOMER"
    shown = await _read(gql, organization, logins[Role.ACCOUNTANT])
    assert shown["legalName"] == "ООО «Свои»" and shown["requisites"]["confirmedAt"] is None
    assert shown["requisites"]["pendingChange"] is None
    assert await AuditEntry.filter(organization_id=organization.id, action="requisites.change").count() == 1
    events = await OrganizationEvent.filter(organization_id=organization.id, topic=DATA)
    assert [event.payload for event in events] == [{"areas": ["organization"]}]  # the dashboards re-read it


async def test_the_providers_requisites_change_by_request_confirmed_by_its_next_record(gql):
    organization, logins, inn = await _providers_organization(gql)
    shown = await _read(gql, organization, logins[Role.OWNER])
    assert shown["requisites"]["source"] == "PROVIDER" and shown["requisites"]["confirmedAt"] is not None
    assert shown["requisites"]["kpp"] == "773601001"

    answer = await _change(gql, organization, logins[Role.ACCOUNTANT], postalAddress="117312, Москва, а/я 5")
    assert answer["userErrors"] == []
    assert answer["requisites"]["postalAddress"] is None  # not applied
    assert answer["requestedChange"]["status"] == "PENDING"
    assert answer["requestedChange"]["postalAddress"] == "117312, Москва, а/я 5"
    assert answer["requestedChange"]["requestedBy"] == {"fullName": "Член ACCOUNTANT"}
    shown = await _read(gql, organization, logins[Role.ADMIN])
    assert shown["requisites"]["pendingChange"]["status"] == "PENDING"

    # The provider re-sends what it had: nothing is decided yet, and nothing changes.
    assert outcomes(await send("organization", _provider_record(organization.external_id, inn))) == [Outcome.UNCHANGED]
    assert (await RequisitesChange.get(organization_id=organization.id)).status == RequisitesChangeStatus.PENDING

    # Its accounting took the change: the record carries the proposed values.
    record = _provider_record(organization.external_id, inn, postal_address="117312, Москва, а/я 5")
    assert outcomes(await send("organization", record)) == [Outcome.UPDATED]
    change = await RequisitesChange.get(organization_id=organization.id)
    assert change.status == RequisitesChangeStatus.CONFIRMED and change.decided_at is not None
    shown = await _read(gql, organization, logins[Role.OWNER])
    assert shown["requisites"]["postalAddress"] == "117312, Москва, а/я 5"
    assert shown["requisites"]["pendingChange"] is None


async def test_a_request_reaches_the_provider_as_a_ticket_closed_when_its_record_decides(gql):
    """The change request is a REQUISITES_CHANGE ticket by its requester (the provider answers it like
    any other); the provider's record that decides it closes the ticket with an entry saying how."""
    from models.tickets import SupportTicket, TicketComment, TicketKind, TicketStatus

    organization, logins, inn = await _providers_organization(gql)
    assert (await _change(gql, organization, logins[Role.ACCOUNTANT], postalAddress="а/я 9"))["userErrors"] == []
    change = await RequisitesChange.get(organization_id=organization.id)
    ticket = await SupportTicket.get(id=change.ticket_id)
    assert ticket.kind == TicketKind.REQUISITES_CHANGE and ticket.status == TicketStatus.OPEN
    assert ticket.author_name == "Член ACCOUNTANT"
    first = await TicketComment.filter(ticket_id=ticket.id).order_by("created_at").first()
    assert "Почтовый адрес: — → а/я 9" in first.text

    record = _provider_record(organization.external_id, inn, postal_address="а/я 9")
    assert outcomes(await send("organization", record)) == [Outcome.UPDATED]
    await ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    last = await TicketComment.filter(ticket_id=ticket.id).order_by("-created_at").first()
    assert last.from_staff and last.status_to == TicketStatus.CLOSED and "подтвердила" in last.text


async def test_a_different_record_or_a_newer_request_supersedes_a_pending_one(gql):
    organization, logins, inn = await _providers_organization(gql)
    first = await _change(gql, organization, logins[Role.OWNER], postalAddress="а/я 1")
    second = await _change(gql, organization, logins[Role.ADMIN], postalAddress="а/я 2")
    assert first["requestedChange"]["status"] == second["requestedChange"]["status"] == "PENDING"
    statuses = [row.status for row in await RequisitesChange.filter(organization_id=organization.id).order_by("created_at")]
    assert statuses == [RequisitesChangeStatus.SUPERSEDED, RequisitesChangeStatus.PENDING]

    record = _provider_record(organization.external_id, inn, postal_address="а/я 3")
    assert outcomes(await send("organization", record)) == [Outcome.UPDATED]
    statuses = [row.status for row in await RequisitesChange.filter(organization_id=organization.id).order_by("created_at")]
    assert statuses == [RequisitesChangeStatus.SUPERSEDED, RequisitesChangeStatus.SUPERSEDED]
    shown = await _read(gql, organization, logins[Role.OWNER])
    assert shown["requisites"]["postalAddress"] == "а/я 3" and shown["requisites"]["pendingChange"] is None


async def test_the_providers_first_record_makes_a_customers_requisites_the_providers(gql):
    organization = await factories.create_organization(inn=new_inn())
    logins = await _team(organization)
    await _signed_in(gql, logins)
    await _change(gql, organization, logins[Role.OWNER], postalAddress="а/я 9")
    assert outcomes(await send("organization", _provider_record(ext("org"), organization.inn))) == [Outcome.UPDATED]
    shown = await _read(gql, organization, logins[Role.OWNER])
    assert shown["requisites"]["source"] == "PROVIDER" and shown["requisites"]["postalAddress"] is None
    answer = await _change(gql, organization, logins[Role.OWNER], postalAddress="а/я 9")
    assert answer["requestedChange"]["status"] == "PENDING"


# ---------------------------------------------------------------- who may


async def test_a_user_reads_the_legal_name_and_the_managers_but_not_the_requisites(gql):
    organization, logins, _ = await _providers_organization(gql)
    await Manager.create(organization=organization, full_name="Орлова Анна", title="Персональный менеджер", phone="+74950000001")
    body = await gql.execute(REQUISITES, {"id": to_global_id("Organization", organization.id)}, as_user=logins[Role.USER])
    assert body["data"]["organization"]["legalName"] == SBERBANK["legal_name"]
    assert body["data"]["organization"]["requisites"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    body = await gql.execute(MANAGERS, {"id": to_global_id("Organization", organization.id)}, as_user=logins[Role.USER])
    assert [m["fullName"] for m in body["data"]["organization"]["managers"]] == ["Орлова Анна"]

    answer = await _change(gql, organization, logins[Role.USER], postalAddress="а/я 1")
    assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"]
    assert not await RequisitesChange.exists(organization_id=organization.id)


async def test_another_organizations_requisites_and_managers_do_not_exist_for_the_caller(gql):
    organization, _, _ = await _providers_organization(gql)
    await Manager.create(organization=organization, full_name="Белов Павел")
    stranger = await factories.create_organization(inn=new_inn())
    logins = await _team(stranger)
    await _signed_in(gql, logins)
    body = await gql.execute(REQUISITES, {"id": to_global_id("Organization", organization.id)}, as_user=logins[Role.OWNER])
    assert body["data"]["organization"] is None
    manager = await Manager.get(organization_id=organization.id)
    body = await gql.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Manager", manager.id)}, as_user=logins[Role.OWNER]
    )
    assert body["data"]["node"] is None
    answer = await _change(gql, organization, logins[Role.OWNER], postalAddress="а/я 1")
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("NOT_FOUND", ["organizationId"])]


async def test_a_bad_value_is_refused_on_its_input_field(gql):
    organization, logins, _ = await _providers_organization(gql)
    answer = await _change(gql, organization, logins[Role.OWNER], settlementAccount="40702810838000000001")
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["input", "settlementAccount"])]
    answer = await _change(gql, organization, logins[Role.OWNER], kpp="12345")
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["input", "kpp"])]
    assert not await RequisitesChange.exists(organization_id=organization.id)


async def test_changes_are_bounded_per_organization_and_day(gql, monkeypatch):
    monkeypatch.setattr(requisites, "CHANGES_PER_DAY", 2)
    organization, logins, _ = await _providers_organization(gql)
    for number in (1, 2):
        assert (await _change(gql, organization, logins[Role.OWNER], postalAddress=f"а/я {number}"))["userErrors"] == []
    answer = await _change(gql, organization, logins[Role.OWNER], postalAddress="а/я 3")
    assert [e["code"] for e in answer["userErrors"]] == ["LIMIT_EXCEEDED"]


# ---------------------------------------------------------------- the provider's records


async def test_a_bad_organization_line_is_refused_alone_with_its_field():
    good, bad_account, bad_bic, no_bic = ext("org"), ext("org"), ext("org"), ext("org")
    results = await send(
        "organization",
        _provider_record(good, new_inn()),
        _provider_record(bad_account, new_inn(), settlement_account="40702810838000000001"),
        _provider_record(bad_bic, new_inn(), bic="04452522"),
        {**_provider_record(no_bic, new_inn()), "bic": ""},
    )
    assert outcomes(results)[0] is Outcome.CREATED
    assert refusals(results) == [(2, "settlement_account"), (3, "bic"), (4, "bic")]
    assert await Organization.filter(external_id__in=[bad_account, bad_bic, no_bic]).count() == 0


async def test_managers_come_from_the_providers_records(gql):
    organization, logins, inn = await _providers_organization(gql)
    first, second = ext("manager"), ext("manager")
    results = await send(
        "manager",
        {"external_id": first, "organization": organization.external_id, "full_name": "Орлова Анна Сергеевна",
         "title": "Персональный менеджер", "phone": "8 (495) 123-45-67", "email": "Orlova@Provider.example"},
        {"external_id": second, "organization_inn": inn, "full_name": "Белов Павел Игоревич", "title": "Менеджер по сопровождению"},
        {"external_id": ext("manager"), "organization": organization.external_id, "full_name": "Плохой Телефон", "phone": "12345"},
        {"external_id": ext("manager"), "organization": organization.external_id, "full_name": "Плохая Почта", "email": "нет"},
        {"external_id": ext("manager"), "organization": "nobody", "full_name": "Ничей"},
        {"external_id": ext("manager"), "organization": organization.external_id},
    )
    assert outcomes(results)[:2] == [Outcome.CREATED, Outcome.CREATED]
    assert refusals(results) == [(3, "phone"), (4, "email"), (5, "organization"), (6, "full_name")]
    body = await gql.execute(MANAGERS, {"id": to_global_id("Organization", organization.id)}, as_user=logins[Role.ACCOUNTANT])
    managers = body["data"]["organization"]["managers"]
    assert [(m["fullName"], m["title"], m["phone"], m["email"]) for m in managers] == [
        ("Белов Павел Игоревич", "Менеджер по сопровождению", None, None),
        ("Орлова Анна Сергеевна", "Персональный менеджер", "+74951234567", "orlova@provider.example"),
    ]
    again = {"external_id": second, "organization_inn": inn, "full_name": "Белов Павел Игоревич", "title": "Менеджер по сопровождению"}
    assert outcomes(await send("manager", again)) == [Outcome.UNCHANGED]
    other = await factories.create_organization(inn=new_inn())
    moved = {**again, "organization_inn": other.inn}
    assert outcomes(await send("organization", _provider_record(ext("org"), other.inn))) == [Outcome.UPDATED]
    assert refusals(await send("manager", moved)) == [(1, "organization_inn")]  # a manager's row does not move
    assert outcomes(await send("manager", {"external_id": second, "deleted": True})) == [Outcome.DELETED]
    assert await Manager.filter(organization_id=organization.id).count() == 1


async def test_managers_are_bounded_per_organization(monkeypatch):
    from resolvers.provider import managers

    monkeypatch.setattr(managers, "MANAGERS_PER_ORGANIZATION", 2)
    external_id = ext("org")
    await send("organization", _provider_record(external_id, new_inn()))
    lines = [{"external_id": ext("manager"), "organization": external_id, "full_name": f"Менеджер {n}"} for n in range(3)]
    results = await send("manager", *lines)
    assert outcomes(results)[:2] == [Outcome.CREATED, Outcome.CREATED] and refusals(results) == [(3, "organization")]


async def test_the_demo_shows_requisites_a_pending_change_and_two_managers(gql):
    romashka = await Organization.get(inn="7707083893")
    shown = await _read(gql, romashka, "buh@romashka.example")
    assert shown["requisites"]["source"] == "PROVIDER" and shown["requisites"]["bic"] == "044525225"
    assert shown["requisites"]["pendingChange"]["status"] == "PENDING"
    body = await gql.execute(MANAGERS, {"id": to_global_id("Organization", romashka.id)}, as_user="user@romashka.example")
    assert len(body["data"]["organization"]["managers"]) == 2
    vasilek = await Organization.get(inn="771234567859")
    assert vasilek.requisites_source == RequisitesSource.CUSTOMER
