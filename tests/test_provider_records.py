"""Provider records of the catalog and the cloud: created, re-sent unchanged (one row, no second
event), changed (one DATA event), refused by line and field, and what the owner's dashboard shows."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from models.audit import AuditEntry
from models.cloud import CloudSubscription, Database
from models.events import OrganizationEvent
from models.organizations import KnownContact, ModerationStatus, Organization, OrganizationKind
from models.products import Contract, Product
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from events.log import DATA
from resolvers.provider import records
from resolvers.provider.records import SCOPES, Outcome, ProviderActor, Record
from tests import factories
from tests.conftest import ROOT
from tests.factories import Role

pytestmark = pytest.mark.usefixtures("app")

_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_W11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10)


def new_inn(length: int = 10) -> str:
    """A valid INN no organization has yet (random, check digits right)."""
    body = str(random.randrange(10**8, 10**9) if length == 10 else random.randrange(10**9, 10**10))
    if length == 10:
        return body + _check(body, _W10)
    body += _check(body, _W11)
    return body + _check(body, _W12)


def ext(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def actor(*scopes: str) -> ProviderActor:
    return ProviderActor(kind="CLI", name="test", scopes=frozenset(scopes or SCOPES))


async def send(entity: str, *values: dict) -> list[records.LineResult]:
    return await records.apply(actor(), entity, [Record(line, v) for line, v in enumerate(values, start=1)])


def outcomes(results: list[records.LineResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def refusals(results: list[records.LineResult]) -> list[tuple[int, str | None]]:
    return [(r.line, r.field) for r in results if r.outcome is Outcome.REFUSED]


async def data_events(organization_id: uuid.UUID) -> list[OrganizationEvent]:
    return list(await OrganizationEvent.filter(organization_id=organization_id, topic=DATA).order_by("seq"))


def catalog(org_ext: str, inn: str) -> dict[str, dict]:
    """One record of each catalog and cloud entity, all of one new organization."""
    contract = ext("contract")
    return {
        "organization": {"external_id": org_ext, "inn": inn, "kpp": "770701001", "ogrn": "1027700132195",
                         "name": "ООО «Импорт»", "legal_address": "Москва, ул. Тестовая, 1"},
        "contract": {"external_id": contract, "organization": org_ext, "kind": "ITS", "number": "ИТС-2026/17",
                     "starts_on": "01.01.2026", "ends_on": "2026-12-31"},
        "product": {"external_id": ext("product"), "organization": org_ext, "name": "1С:Бухгалтерия 8 ПРОФ",
                    "category": "LOCAL_1C", "registration_number": "800123456", "workplaces": "5",
                    "updates_available_until": "2026-12-31", "contract": contract},
        "cloud_subscription": {"external_id": ext("cloud"), "organization_inn": inn, "tariff": "Стандарт",
                               "sessions_limit": 5, "databases_limit": 2, "starts_on": "2026-11-01", "ends_on": "2026-11-30"},
        "database": {"external_id": ext("db"), "organization": org_ext, "name": "Бухгалтерия (импорт)",
                     "configuration": "Бухгалтерия предприятия", "version": "3.0.150.20", "is_typical": "да", "size_mb": "2048"},
        "known_contact": {"external_id": ext("contact"), "inn": inn, "phone": "8 (916) 123-45-67"},
        "release": {"external_id": ext("release"), "configuration": f"Конфигурация {uuid.uuid4().hex[:8]}",
                    "version": "3.0.152.15", "published_at": "2026-11-20T10:00:00+03:00"},
    }


MODELS = {
    "organization": Organization, "contract": Contract, "product": Product, "cloud_subscription": CloudSubscription,
    "database": Database, "known_contact": KnownContact, "release": Release,
}


async def test_each_entity_is_created_once_and_a_resent_record_changes_nothing():
    org_ext, inn = ext("org"), new_inn()
    sent = catalog(org_ext, inn)
    for entity, values in sent.items():
        assert outcomes(await send(entity, values)) == [Outcome.CREATED], entity
    organization = await Organization.get(external_id=org_ext)
    assert (organization.inn, organization.kind, organization.moderation_status) == (inn, OrganizationKind.LEGAL_ENTITY, ModerationStatus.APPROVED)
    assert (organization.kpp, organization.ogrn, organization.legal_address) == ("770701001", "1027700132195", "Москва, ул. Тестовая, 1")
    assert len(organization.code) == 6 and organization.code.isdigit()
    assert (await KnownContact.get(external_id=sent["known_contact"]["external_id"])).phone == "+79161234567"
    product = await Product.get(external_id=sent["product"]["external_id"])
    assert product.contract_id == (await Contract.get(external_id=sent["contract"]["external_id"])).id
    assert product.workplaces == 5 and product.updates_available_until == dt.date(2026, 12, 31)
    events = len(await data_events(organization.id))
    assert events == 5  # one per batch that changed something of the organization (the contact and release touch none)

    for entity, values in sent.items():
        assert outcomes(await send(entity, values)) == [Outcome.UNCHANGED], entity
        assert await MODELS[entity].filter(external_id=values["external_id"]).count() == 1
    assert len(await data_events(organization.id)) == events


async def test_a_changed_record_is_updated_with_one_data_event_per_batch():
    org_ext = ext("org")
    sent = catalog(org_ext, new_inn())
    for entity in ("organization", "contract", "product"):
        await send(entity, sent[entity])
    organization = await Organization.get(external_id=org_ext)
    before = len(await data_events(organization.id))
    second = {**sent["product"], "external_id": ext("product"), "name": "1С:Зарплата и управление персоналом"}
    assert outcomes(await send("product", {**sent["product"], "workplaces": 10}, second)) == [Outcome.UPDATED, Outcome.CREATED]
    assert (await Product.get(external_id=sent["product"]["external_id"])).workplaces == 10
    events = await data_events(organization.id)
    assert len(events) == before + 1 and events[-1].payload == {"areas": ["products"]}
    assert outcomes(await send("organization", {**sent["organization"], "name": "ООО «Импорт и партнёры»"})) == [Outcome.UPDATED]
    assert (await Organization.get(id=organization.id)).name == "ООО «Импорт и партнёры»"
    assert (await data_events(organization.id))[-1].payload == {"areas": ["organization"]}


async def test_refusals_name_the_line_and_the_field_and_the_rest_of_the_batch_is_applied():
    org_ext = ext("org")
    results = await send(
        "organization",
        {"external_id": ext("org"), "inn": "1234567890", "name": "Неверный ИНН"},
        {"external_id": org_ext, "inn": new_inn(), "name": "ООО «Верное»"},
        {"external_id": ext("org"), "inn": new_inn()},
        {"inn": new_inn(), "name": "Без своего id"},
        {"external_id": ext("org"), "inn": new_inn(12), "kpp": "770701001", "name": "ИП с КПП"},
    )
    assert outcomes(results)[1] is Outcome.CREATED
    assert refusals(results) == [(1, "inn"), (3, "name"), (4, "external_id"), (5, "kpp")]
    assert all(r.reason for r in results if r.outcome is Outcome.REFUSED)
    results = await send(
        "contract",
        {"external_id": ext("contract"), "organization": "no-such-org", "kind": "ITS", "number": "1", "starts_on": "2026-01-01"},
        {"external_id": ext("contract"), "organization_inn": new_inn(), "kind": "ITS", "number": "2", "starts_on": "2026-01-01"},
        {"external_id": ext("contract"), "organization": org_ext, "kind": "ITS", "number": "3", "starts_on": "31.02.2026"},
        {"external_id": ext("contract"), "organization": org_ext, "kind": "LEASE", "number": "4", "starts_on": "2026-01-01"},
        {"external_id": ext("contract"), "organization": org_ext, "kind": "ITS", "number": "5", "starts_on": "2026-01-01"},
    )
    assert refusals(results) == [(1, "organization"), (2, "organization_inn"), (3, "starts_on"), (4, "kind")]
    assert outcomes(results)[4] is Outcome.CREATED
    results = await send(
        "product",
        {"external_id": ext("product"), "organization": org_ext, "name": "X", "category": "LOCAL_1C", "contract": "no-such-contract"},
        {"external_id": ext("product"), "organization": org_ext, "name": "X", "category": "LOCAL_1C", "workplaces": "пять"},
    )
    assert refusals(results) == [(1, "contract"), (2, "workplaces")]


async def test_a_product_may_not_name_another_organizations_contract():
    first, second = catalog(ext("org"), new_inn()), catalog(ext("org"), new_inn())
    for sent in (first, second):
        await send("organization", sent["organization"])
    await send("contract", first["contract"])
    results = await send("product", {**second["product"], "contract": first["contract"]["external_id"]})
    assert refusals(results) == [(1, "contract")]


async def test_an_approved_customers_organization_is_bound_by_inn_and_another_id_is_refused():
    """Bound by INN only when approved already (by staff, or a known contact): a claim nobody proved
    is not (issue 17, tests/test_provider_binding.py)."""
    inn = new_inn()
    approved = await factories.create_organization(inn=inn)
    org_ext = ext("org")
    assert outcomes(await send("organization", {"external_id": org_ext, "inn": inn, "name": "ООО «Заявленное»"})) == [Outcome.UPDATED]
    bound = await Organization.get(id=approved.id)
    assert (bound.external_id, bound.moderation_status, bound.code) == (org_ext, ModerationStatus.APPROVED, approved.code)
    assert await Organization.filter(inn=inn).count() == 1
    results = await send("organization", {"external_id": ext("org"), "inn": inn, "name": "Другое"})
    assert refusals(results) == [(1, "inn")]


async def test_a_kind_follows_from_the_inn_when_not_given():
    sole, person = ext("org"), ext("org")
    await send(
        "organization",
        {"external_id": sole, "inn": new_inn(12), "ogrn": "304500116000157", "name": "ИП Иванов"},
        {"external_id": person, "inn": new_inn(12), "name": "Петров П. П."},
    )
    assert (await Organization.get(external_id=sole)).kind == OrganizationKind.SOLE_PROPRIETOR
    assert (await Organization.get(external_id=person)).kind == OrganizationKind.INDIVIDUAL


async def test_an_inn_of_neither_length_without_a_kind_is_called_wrong_not_the_wrong_kind():
    [result] = await send("organization", {"external_id": ext("org"), "inn": "77362075", "name": "ООО «Ромашка»"})
    assert (result.outcome, result.field) == (Outcome.REFUSED, "inn")
    assert result.reason == "«77362075» is not a valid INN: check the digits."


async def test_a_subscription_under_a_new_id_is_another_of_the_organizations_subscriptions():
    """Issue 20: an organization may have several tariff subscriptions, each by its external id; the
    databases limit is their sum; deleting one of several leaves the others (and the databases)."""
    org_ext = ext("org")
    sent = catalog(org_ext, new_inn())
    await send("organization", sent["organization"])
    await send("cloud_subscription", {**sent["cloud_subscription"], "databases_limit": 1})
    added = {**sent["cloud_subscription"], "external_id": ext("cloud"), "tariff": "Дополнительные базы", "databases_limit": 1,
             "starts_on": "2026-12-01", "ends_on": "2026-12-31"}
    assert outcomes(await send("cloud_subscription", added)) == [Outcome.CREATED]
    rows = await CloudSubscription.filter(organization__external_id=org_ext).order_by("created_at")
    assert [(r.external_id, r.tariff) for r in rows] == [
        (sent["cloud_subscription"]["external_id"], sent["cloud_subscription"]["tariff"]), (added["external_id"], "Дополнительные базы"),
    ]
    results = await send("database", sent["database"], {**sent["database"], "external_id": ext("db"), "name": "Вторая"})
    assert outcomes(results) == [Outcome.CREATED, Outcome.CREATED], "two subscriptions of one database each: two"
    assert outcomes(await send("cloud_subscription", {**added, "deleted": True})) == [Outcome.DELETED]
    assert await CloudSubscription.filter(organization__external_id=org_ext).count() == 1
    last = await send("cloud_subscription", {**sent["cloud_subscription"], "deleted": True})
    assert refusals(last) == [(1, "deleted")], "the last one goes only once the databases have"


async def test_a_seeded_subscription_without_an_id_takes_the_first_one_sent():
    org_ext = ext("org")
    sent = catalog(org_ext, new_inn())
    await send("organization", sent["organization"])
    organization = await Organization.get(external_id=org_ext)
    await CloudSubscription.create(organization=organization, tariff="Демо", sessions_limit=1, databases_limit=1,
                                   starts_on=dt.date(2026, 11, 1), ends_on=dt.date(2026, 11, 30))
    assert outcomes(await send("cloud_subscription", sent["cloud_subscription"])) == [Outcome.UPDATED]
    [row] = await CloudSubscription.filter(organization_id=organization.id)
    assert (row.external_id, row.tariff) == (sent["cloud_subscription"]["external_id"], sent["cloud_subscription"]["tariff"])


async def test_a_new_database_beyond_the_subscriptions_limit_is_refused():
    org_ext = ext("org")
    sent = catalog(org_ext, new_inn())
    await send("organization", sent["organization"])
    no_subscription = await send("database", sent["database"])
    assert refusals(no_subscription) == [(1, "organization")]
    await send("cloud_subscription", {**sent["cloud_subscription"], "databases_limit": 1})
    results = await send("database", sent["database"], {**sent["database"], "external_id": ext("db"), "name": "Вторая"})
    assert outcomes(results)[0] is Outcome.CREATED
    assert refusals(results) == [(2, "organization")] and "databases_limit" in results[1].reason
    assert outcomes(await send("database", {**sent["database"], "size_mb": 4096})) == [Outcome.UPDATED]
    later = await send("database", {**sent["database"], "external_id": ext("db"), "name": "Третья"})
    assert refusals(later) == [(1, "organization")] and "1 database(s)" in later[0].reason
    assert await Database.filter(organization__external_id=org_ext).count() == 1


async def test_a_sent_release_plans_runs_as_a_staff_published_one():
    org, _ = await factories.create_team()
    configuration = f"Конфигурация {uuid.uuid4().hex[:8]}"
    database = await factories.create_database(org)
    database.configuration = configuration
    await database.save()
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.ON_RELEASE)
    release = {"external_id": ext("release"), "configuration": configuration, "version": "3.0.152.15"}
    assert outcomes(await send("release", release)) == [Outcome.CREATED]
    [run] = await UpdateRun.filter(database_id=database.id)
    stored = await Release.get(external_id=release["external_id"])
    assert (run.status, run.release_id) == (UpdateRunStatus.QUARANTINE, stored.id)
    assert run.scheduled_for == stored.published_at + dt.timedelta(hours=24)
    assert await AuditEntry.filter(action="release.publish", object_id=str(stored.id)).exists()
    assert outcomes(await send("release", release)) == [Outcome.UNCHANGED]
    assert await UpdateRun.filter(database_id=database.id).count() == 1
    refused = await send("release", {**release, "version": "3.0.153.1"})
    assert refusals(refused) == [(1, "version")]


async def test_a_token_without_the_scope_is_refused_the_whole_batch():
    with pytest.raises(records.EntityRefused):
        await records.apply(actor("billing:write"), "database", [Record(1, {"external_id": "x"})])


DASHBOARD = """{ organizations(first: 50) { edges { node { inn moderationStatus
  products { edges { node { name category workplaces contract { kind number } } } }
  contracts { kind number }
  cloudSubscription { tariff sessionsLimit databasesLimit }
  databases { edges { node { name configuration version isTypical } } } } } } }"""


async def test_the_owners_dashboard_shows_what_the_provider_sent(gql):
    org_ext, inn = ext("org"), new_inn()
    sent = catalog(org_ext, inn)
    for entity in ("organization", "contract", "product", "cloud_subscription", "database"):
        await send(entity, sent[entity])
    owner = await factories.create_user(factories.unique_email("owner"))
    await factories.add_member(await Organization.get(external_id=org_ext), owner, Role.OWNER)
    await gql.token_for_password(owner.email, factories.PASSWORD)
    body = await gql.execute(DASHBOARD, as_user=owner.email)
    assert "errors" not in body, body
    [org] = [e["node"] for e in body["data"]["organizations"]["edges"] if e["node"]["inn"] == inn]
    assert org["moderationStatus"] == "APPROVED"
    assert [p["node"] for p in org["products"]["edges"]] == [
        {"name": "1С:Бухгалтерия 8 ПРОФ", "category": "LOCAL_1C", "workplaces": 5, "contract": {"kind": "ITS", "number": "ИТС-2026/17"}}
    ]
    assert org["contracts"] == [{"kind": "ITS", "number": "ИТС-2026/17"}]
    assert org["cloudSubscription"] == {"tariff": "Стандарт", "sessionsLimit": 5, "databasesLimit": 2}
    assert [d["node"] for d in org["databases"]["edges"]] == [
        {"name": "Бухгалтерия (импорт)", "configuration": "Бухгалтерия предприятия", "version": "3.0.150.20", "isTypical": True}
    ]


def test_external_ids_are_never_served():
    """To customers: only the staff desk's types (staff only, by their type rule) name one, a refused
    record's, for staff to find it in the provider's accounting."""
    from graphql import build_schema as parse_sdl

    from resolvers.common.permissions import TYPE_RULES, _staff_only

    served = parse_sdl((ROOT / "schema.graphql").read_text())
    naming = {
        name for name, gtype in served.type_map.items()
        if "external" in (gtype.description or "").lower()
        or any("external" in f"{field_name} {field.description or ''}".lower() for field_name, field in getattr(gtype, "fields", {}).items())
    }
    assert naming == {"RefusedRecord"} and TYPE_RULES["RefusedRecord"] is _staff_only
