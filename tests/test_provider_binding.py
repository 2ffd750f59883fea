"""Issue 17, findings 1, 2 and 4: provider data binds only to a customer who proved it.

1. A tenant's claim of a public INN the provider had not sent yet was bound to the provider's first
   `organization` record of that INN, which approved it: the squatter owned the real customer's money.
2. A billing or cloud record naming the customer by `organization_inn` landed in such a claim.
4. Re-sending a row's external id with another organization moved it (and a document's PDF).

Now a claim nobody proved stands beside the provider's organization and receives nothing; it becomes
the customer only by staff approval or the known-contact rule, in whichever order the claim, the
contact and the provider's record arrive; and no row moves to another organization, for any entity.
"""

from __future__ import annotations

import base64
import uuid

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.audit import AuditEntry
from models.billing import BalanceTransaction, Charge, Document, PrepaidService
from models.cloud import CloudSubscription, Database
from models.events import OrganizationEvent
from models.identity import User
from models.organizations import JoinRequest, KnownContact, Membership, ModerationStatus, Organization, OrganizationKind, Role
from models.outbox import OutboxMessage
from models.products import Contract, Product
from models.provider import PrepaidServiceUse
from foundation.ids import to_global_id
from resolvers.organizations import moderation
from events.log import DATA
from models.requisites import Manager
from resolvers.provider.records import ENTITIES, Outcome
from tests import factories
from tests.test_add_organization import add, legal_inn, new_user, staff
from tests.test_provider_records import actor, ext, send

pytestmark = pytest.mark.usefixtures("app")

BALANCE = "125000.00"
APPROVE_ORG = """mutation($id: ID!) { approveOrganization(organizationId: $id) {
  organization { organizationId moderationStatus fromProvider owner { email } } userErrors { code field message } } }"""
MODERATION = """query($after: String) { organizationsForModeration(status: null, first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node {
  organizationId inn moderationStatus fromProvider
  claimant { userId fullName email emailVerified phone phoneVerified knownContact claimedAt }
  customer { organizationId inn moderationStatus fromProvider owner { email } } } } } }"""
MINE = """{ organizations { edges { node { id inn moderationStatus viewerRole
  balance { amount } balanceTransactions { edges { node { amount } } } documents { edges { node { number } } } } } } }"""


# ---------------------------------------------------------------------------------------- helpers


async def squat(gql, inn: str, *, phone: str | None = None, verified: bool = False) -> tuple[str, Organization]:
    """A tenant claims `inn` through `addOrganization`: their e-mail and the organization they got."""
    who = await new_user(gql, phone=phone, verified_phone=verified)
    payload = await add(gql, who, inn=inn, name="ООО «Захват»")
    assert payload["userErrors"] == [], payload
    organization = await Organization.get(
        id=(await Membership.get(user__email=who, role=Role.OWNER)).organization_id
    )
    return who, organization


async def provider_sends(inn: str, org_ext: str | None = None) -> tuple[str, list]:
    org_ext = org_ext or ext("org")
    results = await send("organization", {"external_id": org_ext, "inn": inn, "name": "ООО «Настоящее»"})
    return org_ext, results


async def money_for(inn: str) -> list:
    """The real customer's money and a document, named by INN as 1C sends them."""
    return [
        (await send("ledger_entry", {"external_id": ext("le"), "organization_inn": inn, "kind": "TOP_UP", "amount": BALANCE,
                                     "occurred_at": "2026-11-02T10:00:00+03:00"}))[0],
        (await send("document", {"external_id": ext("doc"), "organization_inn": inn, "kind": "ACT", "number": ext("A"),
                                 "issued_on": "2026-11-30", "amount": "1000.00",
                                 "file_base64": base64.b64encode(b"%PDF-1.4 secret").decode()}))[0],
    ]


async def sees(gql, who: str) -> list[dict]:
    body = await gql.execute(MINE, as_user=who)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["organizations"]["edges"]]


async def the_customer(inn: str) -> Organization:
    return await Organization.get(inn=inn, moderation_status=ModerationStatus.APPROVED)


async def owner_of(organization_id: uuid.UUID) -> str | None:
    owner = await Membership.get_or_none(organization_id=organization_id, role=Role.OWNER).prefetch_related("user")
    return owner.user.email if owner else None


async def verified_phone_of(who: str) -> str:
    user = await User.get(email=who)
    return user.phone


async def known_contact(inn: str, phone: str) -> list:
    return await send("known_contact", {"external_id": ext("contact"), "inn": inn, "phone": phone})


async def assert_folded(who: str, claim: Organization, customer: Organization, how: str) -> None:
    """The claim became the provider's customer: the claimant is its OWNER, the claim is gone, the
    customer's audit says so (naming the claim), and its dashboards were told."""
    assert await owner_of(customer.id) == who
    assert not await Organization.exists(id=claim.id)
    assert await Organization.filter(inn=customer.inn).count() == 1
    entry = await AuditEntry.get(organization_id=customer.id, action="organization.claimed")
    assert entry.details["claimId"] == str(claim.id) and entry.details["by"] == how
    assert await AuditEntry.exists(organization_id=customer.id, action="organization.added", object_id=str(claim.id))
    assert await OrganizationEvent.exists(organization_id=customer.id, topic=DATA)


# ---------------------------------------------------------------------------------------- finding 1


async def test_finding_1_a_provider_record_after_a_claim_binds_nothing_and_approves_nothing(gql):
    inn = legal_inn()
    squatter, claim = await squat(gql, inn)
    org_ext, results = await provider_sends(inn)
    assert [r.outcome for r in results] == [Outcome.CREATED]  # was UPDATED: bound to the claim, approved
    customer = await Organization.get(external_id=org_ext)
    assert customer.id != claim.id and customer.moderation_status is ModerationStatus.APPROVED
    assert not await Membership.exists(organization_id=customer.id)
    claim = await Organization.get(id=claim.id)
    assert (claim.moderation_status, claim.external_id) == (ModerationStatus.PENDING, None)
    assert not await AuditEntry.exists(organization_id=claim.id, action="organization.approved")
    assert all(r.outcome is Outcome.CREATED for r in await money_for(inn))
    # The squatter sees their claim, empty, and nothing of the customer's money or documents.
    [mine] = await sees(gql, squatter)
    assert (mine["id"], mine["moderationStatus"], mine["balance"]["amount"]) == (to_global_id("Organization", claim.id), "PENDING", "0.00")
    assert mine["balanceTransactions"]["edges"] == [] and mine["documents"]["edges"] == []
    probe = await gql.execute("query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Organization", customer.id)}, as_user=squatter)
    assert probe["data"]["node"] is None


async def test_finding_1_a_claim_after_the_provider_record_waits_beside_it(gql):
    inn = legal_inn()
    org_ext, _ = await provider_sends(inn)
    await money_for(inn)
    squatter, claim = await squat(gql, inn)
    customer = await Organization.get(external_id=org_ext)
    assert claim.id != customer.id and claim.moderation_status is ModerationStatus.PENDING
    assert not await Membership.exists(organization_id=customer.id)
    [mine] = await sees(gql, squatter)
    assert mine["balance"]["amount"] == "0.00" and mine["documents"]["edges"] == []
    # a second stranger finds the INN claimed: no second claim, no join request to the first
    second = await add(gql, await new_user(gql), inn=inn)
    assert [e["code"] for e in second["userErrors"]] == ["CONFLICT"] and second["joinRequest"] is None
    assert await Organization.filter(inn=inn).count() == 2


# ---------------------------------------------------------------------------------------- finding 2


async def test_finding_2_records_naming_an_inn_only_a_claim_holds_are_refused(gql):
    inn = legal_inn()
    _, claim = await squat(gql, inn)
    by_inn = {
        "ledger_entry": {"kind": "TOP_UP", "amount": BALANCE, "occurred_at": "2026-11-02"},
        "charge": {"kind": "SUPPORT_SERVICE", "period": "2026-11", "description": "Линия", "quantity": "1", "unit_price": "10.00"},
        "document": {"kind": "ACT", "number": "A-1", "issued_on": "2026-11-30", "amount": "1.00",
                     "file_base64": base64.b64encode(b"%PDF-1.4").decode()},
        "prepaid_service": {"name": "Часы", "unit": "ч", "total": "10"},
        "contract": {"kind": "ITS", "number": "1", "starts_on": "2026-01-01"},
        "product": {"name": "1С", "category": "LOCAL_1C"},
        "cloud_subscription": {"tariff": "Стандарт", "sessions_limit": 5, "databases_limit": 2,
                               "starts_on": "2026-11-01", "ends_on": "2026-11-30"},
        "database": {"name": "База", "configuration": "Бухгалтерия", "version": "3.0"},
        "manager": {"full_name": "Орлова Анна"},
    }
    naming = {name for name, kind in ENTITIES.items() if "organization_inn" in kind.columns}
    assert naming == set(by_inn), "every entity that names an organization by INN is tried"
    for entity, values in by_inn.items():
        [result] = await send(entity, {"external_id": ext(entity), "organization_inn": inn, **values})
        assert (result.outcome, result.field) == (Outcome.REFUSED, "organization_inn"), (entity, result)
        assert "claim" in result.reason, result.reason
    for model in (BalanceTransaction, Charge, Document, PrepaidService, Contract, Product, CloudSubscription, Database):
        assert not await model.exists(organization_id=claim.id), model
    # the provider's organization of that INN arrives: the same records reach it, never the claim
    org_ext, _ = await provider_sends(inn)
    customer = await Organization.get(external_id=org_ext)
    for result in await money_for(inn):
        assert result.outcome is Outcome.CREATED
    assert await BalanceTransaction.filter(organization_id=customer.id).count() == 1
    assert not await BalanceTransaction.exists(organization_id=claim.id)


async def test_finding_2_an_external_id_reaches_only_an_approved_organization():
    """A claim never has the provider's external id; one left by an older binding is not reached."""
    inn = legal_inn()
    legacy = await factories.create_organization(inn=inn)
    legacy_ext = ext("org")
    await Organization.filter(id=legacy.id).update(moderation_status=ModerationStatus.PENDING, external_id=legacy_ext)
    [result] = await send("contract", {"external_id": ext("c"), "organization": legacy_ext, "kind": "ITS", "number": "1",
                                       "starts_on": "2026-01-01"})
    assert (result.outcome, result.field) == (Outcome.REFUSED, "organization")


# ---------------------------------------------------------------------------------------- the known-contact rule, every order


async def test_claim_then_provider_record_then_known_contact_folds_the_claim(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    who, claim = await squat(gql, inn, phone=phone, verified=True)
    org_ext, _ = await provider_sends(inn)
    await money_for(inn)
    assert [r.outcome for r in await known_contact(inn, phone)] == [Outcome.CREATED]
    customer = await Organization.get(external_id=org_ext)
    await assert_folded(who, claim, customer, "cli:test")
    [mine] = await sees(gql, who)
    assert (mine["id"], mine["viewerRole"], mine["balance"]["amount"]) == (to_global_id("Organization", customer.id), "OWNER", BALANCE)
    assert await OutboxMessage.exists(recipient=who, body__contains=customer.code)


async def test_provider_record_then_claim_then_known_contact_folds_the_claim(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    org_ext, _ = await provider_sends(inn)
    who, claim = await squat(gql, inn, phone=phone, verified=True)
    assert claim.moderation_status is ModerationStatus.PENDING
    await known_contact(inn, phone)
    await assert_folded(who, claim, await Organization.get(external_id=org_ext), "cli:test")


async def test_claim_then_known_contact_then_provider_record_binds_the_approved_claim(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    who, claim = await squat(gql, inn, phone=phone, verified=True)
    await known_contact(inn, phone)
    assert (await Organization.get(id=claim.id)).moderation_status is ModerationStatus.APPROVED  # approved in place
    org_ext, results = await provider_sends(inn)
    assert [r.outcome for r in results] == [Outcome.UPDATED]  # proven: bound to the provider's id
    bound = await Organization.get(id=claim.id)
    assert bound.external_id == org_ext and await owner_of(bound.id) == who
    await money_for(inn)
    [mine] = await sees(gql, who)
    assert mine["balance"]["amount"] == BALANCE


async def test_known_contact_then_claim_then_provider_record_binds(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    await known_contact(inn, phone)
    who, claim = await squat(gql, inn, phone=phone, verified=True)
    assert claim.moderation_status is ModerationStatus.APPROVED
    org_ext, results = await provider_sends(inn)
    assert [r.outcome for r in results] == [Outcome.UPDATED]
    assert (await Organization.get(external_id=org_ext)).id == claim.id


@pytest.mark.parametrize("contact_first", [True, False])
async def test_provider_record_and_known_contact_before_the_claim_make_the_contact_owner(gql, contact_first):
    inn, phone = legal_inn(), factories.unique_phone()
    if contact_first:
        await known_contact(inn, phone)
    org_ext, _ = await provider_sends(inn)
    if not contact_first:
        await known_contact(inn, phone)
    who = await new_user(gql, phone=phone, verified_phone=True)
    payload = await add(gql, who, inn=inn)
    customer = await Organization.get(external_id=org_ext)
    assert payload["organization"]["id"] == to_global_id("Organization", customer.id)
    assert await owner_of(customer.id) == who and await Organization.filter(inn=inn).count() == 1
    entry = await AuditEntry.get(organization_id=customer.id, action="organization.claimed")
    assert entry.details["by"] == "known contact" and "claimId" not in entry.details


async def test_a_phone_verified_after_the_claim_counts_when_the_provider_record_arrives(gql):
    """Claim (phone not yet confirmed), known contact (nothing: unproven), the phone confirmed, then
    the provider's organization: its arrival applies the rule, and the claim folds."""
    inn, phone = legal_inn(), factories.unique_phone()
    who, claim = await squat(gql, inn, phone=phone, verified=False)
    await known_contact(inn, phone)
    assert (await Organization.get(id=claim.id)).moderation_status is ModerationStatus.PENDING
    await User.filter(email=who).update(phone=phone, phone_verified=True, unproven_phone=None)  # its code confirmed
    org_ext, _ = await provider_sends(inn)
    await assert_folded(who, claim, await Organization.get(external_id=org_ext), "cli:test")


async def test_a_known_contact_of_someone_else_approves_no_claim(gql):
    inn = legal_inn()
    _, claim = await squat(gql, inn, phone=factories.unique_phone(), verified=True)
    await provider_sends(inn)
    await known_contact(inn, factories.unique_phone())
    assert (await Organization.get(id=claim.id)).moderation_status is ModerationStatus.PENDING


# ---------------------------------------------------------------------------------------- staff approval


@pytest.mark.parametrize("claim_first", [True, False])
async def test_staff_approving_a_claim_beside_the_provider_s_organization_folds_it(gql, claim_first):
    inn = legal_inn()
    if claim_first:
        who, claim = await squat(gql, inn)
        org_ext, _ = await provider_sends(inn)
    else:
        org_ext, _ = await provider_sends(inn)
        who, claim = await squat(gql, inn)
    customer = await Organization.get(external_id=org_ext)
    moderator = await staff(gql)
    answer = (await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", claim.id)}, as_user=moderator))["data"]["approveOrganization"]
    assert answer["userErrors"] == []
    assert answer["organization"] == {"organizationId": to_global_id("Organization", customer.id), "moderationStatus": "APPROVED",
                                      "fromProvider": True, "owner": {"email": who}}
    await assert_folded(who, claim, customer, "staff")


async def test_staff_approving_a_claim_of_an_inn_the_provider_has_not_sent_approves_it_in_place(gql):
    inn = legal_inn()
    who, claim = await squat(gql, inn)
    moderator = await staff(gql)
    answer = (await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", claim.id)}, as_user=moderator))["data"]["approveOrganization"]
    assert answer["organization"]["organizationId"] == to_global_id("Organization", claim.id)
    assert answer["organization"]["fromProvider"] is False
    org_ext, results = await provider_sends(inn)
    assert [r.outcome for r in results] == [Outcome.UPDATED]
    assert (await Organization.get(external_id=org_ext)).id == claim.id


async def test_staff_cannot_make_a_claimant_owner_of_a_customer_that_has_one(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    org_ext, _ = await provider_sends(inn)
    _, claim = await squat(gql, inn)
    await known_contact(inn, phone)
    owner = await new_user(gql, phone=phone, verified_phone=True)
    await add(gql, owner, inn=inn)
    moderator = await staff(gql)
    answer = (await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", claim.id)}, as_user=moderator))["data"]["approveOrganization"]
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("CONFLICT", ["organizationId"])]
    assert (await Organization.get(id=claim.id)).moderation_status is ModerationStatus.PENDING
    assert await owner_of((await Organization.get(external_id=org_ext)).id) == owner


async def test_a_claim_holding_data_of_its_own_does_not_fold_and_loses_nothing(gql):
    """A claim given data before issue 17 (records by INN reached it then): staff are told, nothing moves."""
    inn = legal_inn()
    _, claim = await squat(gql, inn)
    await Contract.create(organization_id=claim.id, kind="ITS", number="старый", starts_on="2026-01-01")
    await provider_sends(inn)
    moderator = await staff(gql)
    answer = (await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", claim.id)}, as_user=moderator))["data"]["approveOrganization"]
    assert [e["code"] for e in answer["userErrors"]] == ["CONFLICT"] and "contracts" in answer["userErrors"][0]["message"]
    assert await Contract.exists(organization_id=claim.id) and await Organization.exists(id=claim.id)


async def test_staff_see_the_claim_and_the_provider_s_organization_side_by_side(gql):
    inn, phone = legal_inn(), factories.unique_phone()
    who, claim = await squat(gql, inn, phone=phone, verified=True)
    org_ext, _ = await provider_sends(inn)
    customer = await Organization.get(external_id=org_ext)
    user = await User.get(email=who)
    moderator = await staff(gql)
    nodes, after = {}, None
    while True:  # every page: the suite's other organizations come first (oldest first)
        page = (await gql.execute(MODERATION, {"after": after}, as_user=moderator))["data"]["organizationsForModeration"]
        nodes.update({e["node"]["organizationId"]: e["node"] for e in page["edges"] if e["node"]["inn"] == inn})
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    seen = nodes[to_global_id("Organization", claim.id)]
    assert (seen["inn"], seen["moderationStatus"], seen["fromProvider"]) == (inn, "PENDING", False)
    claimant = seen["claimant"]
    assert {k: claimant[k] for k in ("userId", "fullName", "email", "emailVerified", "phone", "phoneVerified", "knownContact")} == {
        "userId": to_global_id("User", user.id), "fullName": user.full_name, "email": who, "emailVerified": True,
        "phone": phone, "phoneVerified": True, "knownContact": False,
    }
    assert claimant["claimedAt"]
    assert seen["customer"] == {"organizationId": to_global_id("Organization", customer.id), "inn": inn,
                                "moderationStatus": "APPROVED", "fromProvider": True, "owner": None}
    beside = nodes[to_global_id("Organization", customer.id)]
    assert beside["customer"] is None and beside["claimant"] is None
    # the same fields are the staff's only: the claimant reading the moderation queue is refused
    refused = await gql.execute(MODERATION, as_user=who)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_staff_desk_names_the_claim_by_inn_beside_the_customer(gql):
    inn = legal_inn()
    _, claim = await squat(gql, inn)
    await provider_sends(inn)
    chosen = await moderation.organization_id_by_inn(actor("staff"), inn)
    assert chosen == claim.id


# ---------------------------------------------------------------------------------------- one customer, one claim per INN


async def test_the_database_holds_one_customer_and_one_open_claim_per_inn():
    inn = legal_inn()

    async def another(status: ModerationStatus, code: str) -> None:
        async with in_transaction():
            await Organization.create(name="X", inn=inn, kind=OrganizationKind.LEGAL_ENTITY, moderation_status=status, code=code)

    await another(ModerationStatus.APPROVED, ext("c")[:20])
    await another(ModerationStatus.PENDING, ext("c")[:20])
    for status in (ModerationStatus.APPROVED, ModerationStatus.PENDING):
        with pytest.raises(IntegrityError):
            await another(status, ext("c")[:20])


# ---------------------------------------------------------------------------------------- finding 4: rows do not move


def _pdf(text: str) -> str:
    return base64.b64encode(f"%PDF-1.4 {text}".encode()).decode()


async def test_finding_4_no_row_moves_to_another_organization_for_any_entity():
    """Every entity whose rows belong to an organization, each sent for A, then its external id again
    for B (by external id and by INN): refused on the field that named B, the row still A's."""
    a_ext, b_ext, a_inn, b_inn = ext("org"), ext("org"), legal_inn(), legal_inn()
    for org_ext, inn in ((a_ext, a_inn), (b_ext, b_inn)):
        await send("organization", {"external_id": org_ext, "inn": inn, "name": f"ООО «{org_ext}»"})
        await send("cloud_subscription", {"external_id": ext("cloud"), "organization": org_ext, "tariff": "Т", "sessions_limit": 5,
                                          "databases_limit": 5, "starts_on": "2026-11-01", "ends_on": "2026-11-30"})
    a, b = await Organization.get(external_id=a_ext), await Organization.get(external_id=b_ext)
    b_package = ext("pkg")
    await send("prepaid_service", {"external_id": b_package, "organization": b_ext, "name": "Часы Б", "unit": "ч", "total": "5"})
    a_package = ext("pkg")
    records = {  # entity → (model, its record for A)
        "contract": (Contract, {"kind": "ITS", "number": "1", "starts_on": "2026-01-01"}),
        "product": (Product, {"name": "1С", "category": "LOCAL_1C"}),
        "database": (Database, {"name": "База", "configuration": "Бухгалтерия", "version": "3.0"}),
        "ledger_entry": (BalanceTransaction, {"kind": "TOP_UP", "amount": BALANCE, "occurred_at": "2026-11-02"}),
        "charge": (Charge, {"kind": "SUPPORT_SERVICE", "period": "2026-11", "description": "Линия", "quantity": "1", "unit_price": "10.00"}),
        "document": (Document, {"kind": "CONTRACT", "number": "Д-1", "issued_on": "2026-11-30", "amount": "1.00", "file_base64": _pdf("A")}),
        "prepaid_service": (PrepaidService, {"name": "Часы", "unit": "ч", "total": "10"}),
        "manager": (Manager, {"full_name": "Орлова Анна"}),
    }
    covered = set(records) | {"cloud_subscription", "prepaid_service_use", "known_contact"}
    owned = {name for name, kind in ENTITIES.items() if "organization" in kind.columns} | {"prepaid_service_use", "known_contact"}
    assert owned <= covered, f"entities not tried: {owned - covered}"
    for entity, (model, values) in records.items():
        external_id = a_package if entity == "prepaid_service" else ext(entity)
        assert [r.outcome for r in await send(entity, {"external_id": external_id, "organization": a_ext, **values})] == [Outcome.CREATED]
        for naming in ({"organization": b_ext}, {"organization_inn": b_inn}):
            [moved] = await send(entity, {"external_id": external_id, **naming, **values})
            assert (moved.outcome, moved.field) == (Outcome.REFUSED, next(iter(naming))), (entity, moved)
            assert "does not move" in moved.reason
        assert (await model.get(external_id=external_id)).organization_id == a.id, entity
        # within one batch too: the row the first line made does not move on the second
        again, values = ext(entity), {**values, "number": "2"} if "number" in values else values
        lines = await send(entity, {"external_id": again, "organization": a_ext, **values},
                           {"external_id": again, "organization": b_ext, **values})
        assert [(r.outcome, r.field) for r in lines] == [(Outcome.CREATED, None), (Outcome.REFUSED, "organization")], entity
    # the cloud subscription (one per organization) keeps to its organization
    a_cloud = await CloudSubscription.get(organization_id=a.id)
    [moved] = await send("cloud_subscription", {"external_id": a_cloud.external_id, "organization": b_ext, "tariff": "Т",
                                                "sessions_limit": 5, "databases_limit": 5, "starts_on": "2026-11-01", "ends_on": "2026-11-30"})
    assert (moved.outcome, moved.field) == (Outcome.REFUSED, "organization")
    # a prepaid service's use does not move to a package of another organization (one of A's is fine)
    use = ext("use")
    await send("prepaid_service_use", {"external_id": use, "prepaid_service": a_package, "quantity": "1", "used_on": "2026-11-03"})
    [moved] = await send("prepaid_service_use", {"external_id": use, "prepaid_service": b_package, "quantity": "1", "used_on": "2026-11-03"})
    assert (moved.outcome, moved.field) == (Outcome.REFUSED, "prepaid_service")
    assert (await PrepaidServiceUse.get(external_id=use)).prepaid_service_id == (await PrepaidService.get(external_id=a_package)).id
    assert (await PrepaidService.get(external_id=b_package)).used == 0
    # a known contact does not move to another INN
    contact = ext("contact")
    phone = factories.unique_phone()
    await send("known_contact", {"external_id": contact, "inn": a_inn, "phone": phone})
    [moved] = await send("known_contact", {"external_id": contact, "inn": b_inn, "phone": phone})
    assert (moved.outcome, moved.field) == (Outcome.REFUSED, "inn")
    assert (await KnownContact.get(external_id=contact)).inn == a_inn
    # nothing of A's reached B, and B's dashboard was never told of A's rows
    for model in (Contract, Product, BalanceTransaction, Charge, Document):
        assert not await model.exists(organization_id=b.id), model


async def test_finding_4_a_document_and_its_pdf_stay_with_their_customer(gql):
    """The reproduction: another customer downloaded a contract after its external id was re-sent."""
    a_ext, b_ext = ext("org"), ext("org")
    for org_ext in (a_ext, b_ext):
        await send("organization", {"external_id": org_ext, "inn": legal_inn(), "name": "ООО"})
    document = ext("doc")
    await send("document", {"external_id": document, "organization": a_ext, "kind": "CONTRACT", "number": "Д-7",
                            "issued_on": "2026-11-30", "amount": "1.00", "file_base64": _pdf("A's contract")})
    [moved] = await send("document", {"external_id": document, "organization": b_ext, "kind": "CONTRACT", "number": "Д-7",
                                      "issued_on": "2026-11-30", "amount": "1.00", "file_base64": _pdf("A's contract")})
    assert (moved.line, moved.outcome, moved.field) == (1, Outcome.REFUSED, "organization")
    stored = await Document.get(external_id=document).prefetch_related("file")
    assert stored.organization_id == (await Organization.get(external_id=a_ext)).id
    assert b"A's contract" in bytes(stored.file.content)
    assert not await JoinRequest.exists(organization__external_id=b_ext)


async def test_a_known_contact_is_not_sent_to_a_squatter_s_claim_and_the_provider_binds_to_them(gql):
    """The squatter claimed first, the provider has not sent the INN: the known contact adding it
    gets an approved organization of their own (no join request to the squatter), which the
    provider's record then binds to; the squatter's claim stays PENDING and cannot be approved over it."""
    inn, phone = legal_inn(), factories.unique_phone()
    squatter, claim = await squat(gql, inn)
    await known_contact(inn, phone)
    owner = await new_user(gql, phone=phone, verified_phone=True)
    payload = await add(gql, owner, inn=inn)
    assert payload["joinRequest"] is None and payload["organization"]["moderationStatus"] == "APPROVED"
    org_ext, results = await provider_sends(inn)
    assert [r.outcome for r in results] == [Outcome.UPDATED]
    customer = await Organization.get(external_id=org_ext)
    assert customer.id != claim.id and await owner_of(customer.id) == owner
    await money_for(inn)
    [theirs] = await sees(gql, squatter)
    assert theirs["balance"]["amount"] == "0.00" and theirs["moderationStatus"] == "PENDING"
    moderator = await staff(gql)
    answer = (await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", claim.id)}, as_user=moderator))["data"]["approveOrganization"]
    assert [e["code"] for e in answer["userErrors"]] == ["CONFLICT"]
    assert await owner_of(customer.id) == owner
