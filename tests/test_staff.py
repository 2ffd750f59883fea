"""The provider's staff: made, listed and disabled from the server's CLI; they sign in as anyone does,
and what they do in moderation and releases is written to the provider's own audit."""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from foundation.ids import to_global_id
from models.identity import RefreshToken, User
from models.organizations import ModerationStatus, Organization
from models.provider import ProviderAction
from resolvers.provider import staff as staff_members
from resolvers.provider.audit import ActorKind
from tests import factories
from tests.processes import kabinet_cli

LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken refreshToken userErrors { code field message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken userErrors { code } } }"""
APPROVE_ORG = """mutation($id: ID!) { approveOrganization(organizationId: $id) {
  organization { moderationStatus } userErrors { code field message } } }"""
REJECT_ORG = """mutation($id: ID!, $r: String!) { rejectOrganization(organizationId: $id, reason: $r) {
  organization { moderationStatus } userErrors { code field message } } }"""
PUBLISH = """mutation($c: String!, $v: String!) { publishRelease(configuration: $c, version: $v) {
  release { id } userErrors { code field message } } }"""
RECALL = """mutation($id: ID!) { recallRelease(releaseId: $id) { release { recalledAt } userErrors { code } } }"""
FOR_MODERATION = """{ organizationsForModeration(first: 1) { edges { node { inn } } } }"""
PASSWORD = "staff-password-1"


async def new_staff(settings) -> User:
    async with in_transaction():
        return await staff_members.create(
            settings, factories.unique_email("staff"), "Сотрудник Провайдера", PASSWORD, by=(ActorKind.CLI, "tests"),
        )


async def pending_organization() -> Organization:
    organization = await factories.create_organization()
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.PENDING)
    return organization


async def test_staff_are_made_listed_and_disabled_with_the_cli_and_a_disabled_one_cannot_sign_in(gql, settings):
    email = factories.unique_email("Staff").upper()  # stored lower-case
    out = await kabinet_cli(settings, "staff", "create", "--email", email, "--name", "Ольга Модератор", "--password", PASSWORD)
    user = await User.get(email=email.lower())
    assert out.strip() == str(user.id)
    assert (user.is_staff, user.is_active, user.email_verified, user.full_name) == (True, True, True, "Ольга Модератор")
    assert await ProviderAction.exists(actor_kind="CLI", action="staff.create", target=email.lower())
    # a second account on the same e-mail is refused, saying why
    refused = await kabinet_cli(settings, "staff", "create", "--email", email, "--name", "Кто-то", "--password", PASSWORD, status=1)
    assert refused == "" and await User.filter(email=email.lower()).count() == 1
    listed = await kabinet_cli(settings, "staff", "list")
    assert any(line.startswith(email.lower() + "\tОльга Модератор\t") and line.endswith("active") for line in listed.splitlines())

    # staff sign in with the ordinary login, and act as staff
    signed_in = (await gql.execute(LOGIN, {"l": email, "p": PASSWORD}))["data"]["login"]
    assert signed_in["userErrors"] == []
    access = {"Authorization": f"Bearer {signed_in['accessToken']}"}
    response = await gql.http.post("/graphql", json={"query": FOR_MODERATION}, headers=access)
    assert "errors" not in response.json()

    out = await kabinet_cli(settings, "staff", "disable", "--email", email)
    assert "no longer staff" in out and "1 sign-in token(s) revoked" in out
    user = await User.get(id=user.id)
    assert (user.is_staff, user.is_active) == (False, False)
    assert not await RefreshToken.exists(user_id=user.id, revoked_at=None)
    assert await ProviderAction.exists(actor_kind="CLI", action="staff.disable", target=email.lower())
    # their sign-in is over: no new one, no refresh, and no staff rights with the access token still held
    again = (await gql.execute(LOGIN, {"l": email, "p": PASSWORD}))["data"]["login"]
    assert [e["code"] for e in again["userErrors"]] == ["INVALID"]
    refreshed = (await gql.execute(REFRESH, {"t": signed_in["refreshToken"]}))["data"]["refreshToken"]
    assert [e["code"] for e in refreshed["userErrors"]] == ["INVALID"]
    response = await gql.http.post("/graphql", json={"query": FOR_MODERATION}, headers=access)
    assert response.json()["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
    assert email.lower() not in await kabinet_cli(settings, "staff", "list")
    await kabinet_cli(settings, "staff", "disable", "--email", email, status=1)  # no longer staff: nothing to disable


async def test_a_staff_member_needs_a_password_of_eight_characters_and_an_e_mail(settings):
    await kabinet_cli(settings, "staff", "create", "--email", factories.unique_email(), "--name", "N", "--password", "short", status=1)
    await kabinet_cli(settings, "staff", "create", "--email", "not-an-email", "--name", "N", "--password", PASSWORD, status=1)


async def test_a_customer_s_e_mail_cannot_become_a_staff_account(settings):
    customer = await factories.create_user()
    try:
        async with in_transaction():
            await staff_members.create(settings, customer.email, "N", PASSWORD, by=(ActorKind.CLI, "tests"))
    except staff_members.UserFacingError as refused:
        assert refused.code == "CONFLICT" and "customer" in refused.message and refused.field == "email"
    else:
        raise AssertionError("a customer's e-mail was taken for a staff account")
    assert not (await User.get(id=customer.id)).is_staff


async def test_moderation_by_staff_is_in_the_provider_audit(gql, settings):
    staff = await new_staff(settings)
    await gql.token_for_password(staff.email, PASSWORD)
    approved, rejected = await pending_organization(), await pending_organization()
    body = await gql.execute(APPROVE_ORG, {"id": to_global_id("Organization", approved.id)}, as_user=staff.email)
    assert body["data"]["approveOrganization"]["userErrors"] == []
    body = await gql.execute(REJECT_ORG, {"id": to_global_id("Organization", rejected.id), "r": "ИНН не найден"}, as_user=staff.email)
    assert body["data"]["rejectOrganization"]["userErrors"] == []
    actions = await ProviderAction.filter(actor=staff.email).order_by("created_at")
    assert [(a.actor_kind, a.action, a.target) for a in actions] == [
        ("STAFF", "organization.approve", f"INN {approved.inn}"), ("STAFF", "organization.reject", f"INN {rejected.inn}"),
    ]
    assert actions[1].details["reason"] == "ИНН не найден" and actions[0].details["organizationId"] == str(approved.id)


async def test_a_refused_moderation_leaves_no_provider_audit(gql, settings):
    staff = await new_staff(settings)
    await gql.token_for_password(staff.email, PASSWORD)
    organization = await pending_organization()
    body = await gql.execute(REJECT_ORG, {"id": to_global_id("Organization", organization.id), "r": " "}, as_user=staff.email)
    assert body["data"]["rejectOrganization"]["userErrors"][0]["code"] == "INVALID"
    assert not await ProviderAction.exists(actor=staff.email)


async def test_releases_published_and_recalled_by_staff_are_in_the_provider_audit(gql, settings):
    staff = await new_staff(settings)
    await gql.token_for_password(staff.email, PASSWORD)
    configuration = f"Конфигурация {uuid.uuid4().hex[:6]}"
    body = await gql.execute(PUBLISH, {"c": configuration, "v": "3.0.1.1"}, as_user=staff.email)
    release_id = body["data"]["publishRelease"]["release"]["id"]
    body = await gql.execute(RECALL, {"id": release_id}, as_user=staff.email)
    assert body["data"]["recallRelease"]["userErrors"] == []
    actions = await ProviderAction.filter(actor=staff.email).order_by("created_at")
    assert [(a.action, a.target) for a in actions] == [
        ("release.publish", f"{configuration} 3.0.1.1"), ("release.recall", f"{configuration} 3.0.1.1"),
    ]
