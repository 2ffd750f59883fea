"""An attacker's read of the doors issue 20 added (support tickets and their download door, people,
notification settings, requisites and managers, the dashboard, the provider's staff answers).
Each test tries one attack; the holes found are fixed where their rule lives, the rest confirm
the door holds."""

from __future__ import annotations

import uuid

import pytest

from foundation.ids import to_global_id
from models.identity import User
from models.organizations import Membership, Role
from models.tickets import SupportTicket, TicketAttachment
from resolvers.support import attachments, tickets
from tests import factories
from tests.test_provider_api import bearer, new_token
from tests.test_tickets import (
    ATTACH, COMMENT, CLOSE, CREATE, LIST, NODE, PDF, PNG, attach, b64, created, errors_of, oid, team,
)


# ---------------------------------------------------------------------------------------- the download door


@pytest.mark.parametrize("name", [
    "счёт\r\nSet-Cookie: session=stolen\r\n.pdf",
    "a\nb.pdf",
    "tab\there.pdf",
    "form\x0cfeed.pdf",
    "next\x85line.pdf",
    "invoice\u202efdp.pdf",  # right-to-left override: shown as «invoicefdp» reversed, another extension
    "line\u2028sep.pdf",
])
async def test_a_filename_never_carries_line_breaks_or_controls_into_the_download_header(gql, client, name):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    payload = await attach(gql, emails[Role.OWNER], ticket["id"], name, PDF)
    assert payload["userErrors"] == [], payload
    kept = payload["attachment"]["filename"]
    assert kept.endswith(".pdf")
    assert not any(ch in kept for ch in "\r\n\t\x0c\x85\u202e\u2028"), repr(kept)
    response = await client.get(payload["attachment"]["downloadUrl"])
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "\r" not in disposition and "\n" not in disposition
    assert "set-cookie" not in response.headers


async def test_a_polyglot_png_is_served_as_a_download_never_as_a_page(gql, client):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    polyglot = PNG + b"<html><script>alert(document.domain)</script></html>"
    payload = await attach(gql, emails[Role.OWNER], ticket["id"], "x.png", polyglot)
    response = await client.get(payload["attachment"]["downloadUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]


async def test_a_link_replayed_by_someone_else_or_after_the_author_is_demoted_or_the_ticket_gone(gql, client, settings):
    organization, users, emails = await team(gql, Role.ADMIN, Role.USER)
    ticket = await created(gql, emails[Role.ADMIN], organization)
    url = (await attach(gql, emails[Role.ADMIN], ticket["id"], "scan.pdf", PDF))["attachment"]["downloadUrl"]
    assert (await client.get(url)).status_code == 200
    # the link names its viewer: another viewer's id in it breaks the signature
    parts = url.split("/")
    parts[-3] = str(users[Role.USER].id)
    assert (await client.get("/".join(parts))).status_code == 403
    # a colleague USER holding a link signed for them: not the author, not an admin
    attachment_pk = uuid.UUID(url.split("/ticket-files/")[1].split("/")[0])
    assert (await client.get(attachments.sign_attachment(settings, attachment_pk, users[Role.USER].id))).status_code == 403
    # the author (an ADMIN) demoted to ACCOUNTANT: still the author, still theirs
    await Membership.filter(user_id=users[Role.ADMIN].id, organization_id=organization.id).update(role=Role.ACCOUNTANT)
    assert (await client.get(url)).status_code == 200
    # the ticket removed with its organization: nothing served
    await SupportTicket.filter(id=uuid.UUID(str(await _pk(ticket["id"])))).delete()
    assert not await TicketAttachment.exists(id=attachment_pk)
    assert (await client.get(url)).status_code == 403
    # expired
    stale = attachments.sign_attachment(settings, attachment_pk, users[Role.OWNER].id, now=1_000_000)
    assert (await client.get(stale)).status_code == 403


async def _pk(global_id: str) -> uuid.UUID:
    from foundation.ids import pk_of
    return pk_of(global_id, "Ticket")


@pytest.mark.parametrize("content", [
    "A" * (attachments.ATTACHMENT_MAX_BYTES // 3 * 4 + 1000),  # over the limit before decoding
    "====",
    "not base64 at all!",
    "\u0410" * 100,
])
async def test_big_or_broken_base64_is_refused_before_any_work(gql, content):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    body = await gql.execute(ATTACH, {"id": ticket["id"], "name": "x.pdf", "content": content}, as_user=emails[Role.OWNER])
    if "errors" in body:  # the request's own size limit answers first
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and len(content) > 1_000_000, body
        return
    assert errors_of(body["data"]["attachToTicket"]) == [("INVALID", ["contentBase64"])]


# ---------------------------------------------------------------------------------------- another organization


async def test_another_organizations_member_acts_on_no_ticket_and_names_no_foreign_database(gql):
    organization, _, emails = await team(gql, Role.USER)
    ticket = await created(gql, emails[Role.OWNER], organization)
    other, _, strangers = await team(gql)
    stranger = strangers[Role.OWNER]
    for query, variables, field in (
        (COMMENT, {"id": ticket["id"], "text": "чужое"}, "commentTicket"),
        (CLOSE, {"id": ticket["id"]}, "closeTicket"),
        (ATTACH, {"id": ticket["id"], "name": "x.pdf", "content": b64(PDF)}, "attachToTicket"),
    ):
        body = await gql.execute(query, variables, as_user=stranger)
        assert errors_of(body["data"][field]) == [("NOT_FOUND", ["ticketId"])], (field, body)
    assert (await gql.execute(NODE, {"id": ticket["id"]}, as_user=stranger))["data"]["node"] is None
    # a ticket in one's own organization about another organization's database or product
    database = await factories.create_database(organization)
    body = await gql.execute(CREATE, {"input": {
        "organizationId": oid(other), "subject": "s", "text": "t", "databaseId": to_global_id("Database", database.id),
    }}, as_user=stranger)
    assert errors_of(body["data"]["createTicket"]) == [("NOT_FOUND", ["input", "databaseId"])]
    # the colleague USER sees no ticket of the owner's, by node either
    assert (await gql.execute(NODE, {"id": ticket["id"]}, as_user=emails[Role.USER]))["data"]["node"] is None
    body = await gql.execute(ATTACH, {"id": ticket["id"], "name": "x.pdf", "content": b64(PDF)}, as_user=emails[Role.USER])
    assert errors_of(body["data"]["attachToTicket"]) == [("NOT_FOUND", ["ticketId"])]


async def test_a_kept_answer_is_not_served_after_the_admin_is_demoted(gql):
    organization, users, emails = await team(gql, Role.ADMIN, Role.USER)
    await created(gql, emails[Role.USER], organization, subject="Коллеги")
    mine = await created(gql, emails[Role.ADMIN], organization, subject="Моё")
    variables = {"org": oid(organization), "status": None}
    for _ in range(2):  # the second is the kept answer
        body = await gql.execute(LIST, variables, as_user=emails[Role.ADMIN])
        assert {e["node"]["subject"] for e in body["data"]["organization"]["tickets"]["edges"]} == {"Коллеги", "Моё"}
    await Membership.filter(user_id=users[Role.ADMIN].id, organization_id=organization.id).update(role=Role.USER)
    body = await gql.execute(LIST, variables, as_user=emails[Role.ADMIN])
    assert [e["node"]["id"] for e in body["data"]["organization"]["tickets"]["edges"]] == [mine["id"]]


# ---------------------------------------------------------------------------------------- the provider's staff


@pytest.mark.parametrize("body", [[], {"text": None}, {"text": ""}, {"text": "x" * 20_000}, {"text": "a\x00b"},
                                  {"text": "ok", "staffName": ["x"]}, {"text": "ok", "staffName": "n" * 500}])
async def test_a_staff_answer_with_bad_input_is_refused_not_a_500(gql, client, body):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    token = await new_token("staff")
    response = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/answer", json=body, headers=bearer(token))
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] == "INVALID"


async def test_the_provider_api_answers_no_ticket_without_the_staff_scope_nor_an_unknown_one(gql, client):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    catalog = await new_token("catalog:write")
    response = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/answer", json={"text": "x"}, headers=bearer(catalog))
    assert response.status_code == 403
    staff = await new_token("staff")
    for ticket_id in ("nonsense", to_global_id("Organization", organization.id), to_global_id("Ticket", uuid.uuid4())):
        response = await client.post(f"/provider/v1/staff/tickets/{ticket_id}/status", json={"status": "CLOSED"}, headers=bearer(staff))
        assert response.status_code == 404, response.text
    response = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/status", json={"status": "DELETED"}, headers=bearer(staff))
    assert response.status_code in (400, 422) and response.json()["error"]["code"] == "INVALID"


# ---------------------------------------------------------------------------------------- people


async def test_a_password_to_change_opens_no_ticket_door(gql):
    """The first sign-in of a member the owner created (`mustChangePassword`) reads and writes nothing."""
    from tests.test_people import CREATE as CREATE_MEMBER, LOGIN, last_message, password_in, post, run
    from models.outbox import Channel

    organization, people = await factories.create_team()
    email = factories.unique_email("pwc")
    await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(organization), "email": email, "fullName": "Н Н", "role": "USER"}},
              people[Role.OWNER])
    password = password_in((await last_message(email, Channel.EMAIL)).body)
    token = (await post(gql, LOGIN, {"l": email, "p": password}))["data"]["login"]["accessToken"]
    body = await post(gql, CREATE, {"input": {"organizationId": oid(organization), "subject": "s", "text": "t"}}, token)
    assert "errors" in body or body["data"]["createTicket"]["userErrors"][0]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")
    assert not await SupportTicket.filter(organization_id=organization.id).exists()
    body = await post(gql, LIST, {"org": oid(organization)}, token)
    assert body.get("data") is None or body["data"]["organization"] is None


async def test_created_member_password_never_opens_an_existing_account(gql):
    """createMember naming an address that already has an account sends no password, and a password
    of a created member's invitation does not open an account that holds the address since."""
    from tests.test_people import CREATE as CREATE_MEMBER, LOGIN, last_message, password_in, post, run
    from models.outbox import Channel

    organization, people = await factories.create_team()
    email = factories.unique_email("later")
    await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(organization), "email": email, "fullName": "Н Н", "role": "ADMIN"}},
              people[Role.OWNER])
    password = password_in((await last_message(email, Channel.EMAIL)).body)
    victim = await factories.create_user(email=email)  # the address became someone's account meanwhile
    signed = (await post(gql, LOGIN, {"l": email, "p": password}))["data"]["login"]
    assert signed["userErrors"][0]["code"] == "INVALID"
    assert not await Membership.exists(user_id=victim.id, organization_id=organization.id)
    assert (await User.get(id=victim.id)).must_change_password is False


# ---------------------------------------------------------------------------------------- floods


async def test_one_user_cannot_flood_the_staff_with_claims_awaiting_moderation(gql):
    """Each new claim mails every staff member (MODERATION_WAITING); valid INNs are easy to make, so the
    claims one person has awaiting moderation at once are bounded."""
    from models.outbox import OutboxMessage
    from resolvers.organizations import claims
    from tests.test_add_organization import ADD, legal_inn
    from tests.test_notifications import signed_in as notified_sign_in

    staff = await factories.create_user(factories.unique_email("staff"))
    await User.filter(id=staff.id).update(is_staff=True)
    founder = await factories.create_user()
    email = await notified_sign_in(gql, founder)
    answers = []
    for _ in range(claims.PENDING_CLAIMS_PER_USER + 3):
        body = await gql.execute(ADD, {"input": {"inn": legal_inn(), "kind": "LEGAL_ENTITY", "position": "Директор"}}, as_user=email)
        answers.append(body["data"]["addOrganization"])
    assert all(a["userErrors"] == [] for a in answers[:claims.PENDING_CLAIMS_PER_USER])
    assert all(errors_of(a) == [("LIMIT_EXCEEDED", ["input", "inn"])] for a in answers[claims.PENDING_CLAIMS_PER_USER:]), answers
    assert await OutboxMessage.filter(recipient=staff.email, template="moderation_waiting").count() == claims.PENDING_CLAIMS_PER_USER


async def test_a_created_members_password_for_an_address_an_inactive_account_holds_is_no_500(gql):
    """An unconfirmed sign-up (an inactive account) holding the address: the created member's first
    sign-in makes the member's own account, or is refused; never a server error, never the old account."""
    from tests.test_people import CREATE as CREATE_MEMBER, LOGIN, last_message, password_in, post, run
    from models.outbox import Channel

    organization, people = await factories.create_team()
    email = factories.unique_email("inactive")
    dormant = await factories.create_user(email=email)
    await User.filter(id=dormant.id).update(is_active=False)
    await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(organization), "email": email, "fullName": "Н Н", "role": "USER"}},
              people[Role.OWNER])
    password = password_in((await last_message(email, Channel.EMAIL)).body)
    body = await post(gql, LOGIN, {"l": email, "p": password})
    assert "errors" not in body, body
    signed = body["data"]["login"]
    assert signed["userErrors"] == [] and signed["mustChangePassword"] is True or signed["userErrors"][0]["code"] == "CONFLICT"
    assert not await Membership.exists(user_id=dormant.id)
    assert not (await User.get(id=dormant.id)).is_active


# ---------------------------------------------------------------------------------------- live


async def test_a_demoted_admins_ticket_subscription_ends_and_carries_no_colleagues_ticket(gql, live_server):
    import asyncio

    from tests.live import TRANSPORT_WS, GraphQLSocket
    from tests.test_members import CHANGE_ROLE
    from tests.test_tickets import SUBSCRIBE

    organization, users, emails = await team(gql, Role.ADMIN, Role.USER)
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await socket.connect(await gql.token_for(emails[Role.ADMIN])))["type"] == "connection_ack"
        await socket.subscribe(SUBSCRIBE, {"org": oid(organization)})
        await asyncio.sleep(0.3)
        membership = to_global_id("Membership", (await Membership.get(organization_id=organization.id, user_id=users[Role.ADMIN].id)).id)
        demoted = await gql.execute(CHANGE_ROLE, {"m": membership, "r": "USER"}, as_user=emails[Role.OWNER])
        assert demoted["data"]["changeMemberRole"]["userErrors"] == []
        await created(gql, emails[Role.USER], organization, subject="Секрет коллеги")
        seen = []
        try:
            while True:
                seen.append(await socket.receive(timeout=1.5))
        except (asyncio.TimeoutError, Exception):
            pass
        assert "Секрет коллеги" not in str(seen), seen
    finally:
        await socket.close()


# ---------------------------------------------------------------------------------------- unstorable text


@pytest.mark.parametrize("field", ["subject", "text"])
async def test_a_lone_surrogate_in_a_ticket_is_refused_not_a_500(gql, client, field):
    organization, _, emails = await team(gql)
    raw = ('{"query": %s, "variables": {"input": {"organizationId": "%s", "subject": "s", "text": "t"}}}'
           % (__import__("json").dumps(CREATE), oid(organization)))
    raw = raw.replace(f'"{field}": "{field[0]}"', f'"{field}": "a\\ud800b"')
    response = await client.post("/graphql", content=raw.encode(), headers={
        "Authorization": f"Bearer {await gql.token_for(emails[Role.OWNER])}", "Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    body = response.json()
    assert "errors" in body or body["data"]["createTicket"]["userErrors"], body
    assert not await SupportTicket.filter(organization_id=organization.id).exists()


async def test_tickets_written_at_once_stay_within_the_daily_limit(gql, monkeypatch):
    """The daily limits are counted before the write: many requests at once must not each see room."""
    import asyncio

    organization, _, emails = await team(gql, Role.ADMIN, Role.USER)
    monkeypatch.setattr(tickets, "TICKETS_PER_DAY", 3)
    await gql.token_for(emails[Role.USER])

    async def one(i: int) -> dict:
        body = await gql.execute(CREATE, {"input": {"organizationId": oid(organization), "subject": f"s{i}", "text": "t"}},
                                 as_user=emails[(Role.OWNER, Role.ADMIN, Role.USER)[i % 3]])
        return body

    await asyncio.gather(*(one(i) for i in range(12)))
    assert await SupportTicket.filter(organization_id=organization.id).count() <= 3


async def test_files_attached_at_once_stay_within_the_daily_bytes(gql, monkeypatch):
    import asyncio

    organization, _, emails = await team(gql)
    first = await created(gql, emails[Role.OWNER], organization)
    second = await created(gql, emails[Role.OWNER], organization)
    monkeypatch.setattr(attachments, "ATTACHMENT_BYTES_PER_DAY", 2 * len(PDF))
    await asyncio.gather(*(
        attach(gql, emails[Role.OWNER], (first, second)[i % 2]["id"], f"f{i}.pdf", PDF) for i in range(10)
    ))
    assert await TicketAttachment.filter(organization_id=organization.id).count() <= 2


async def test_a_digest_never_carries_letters_for_a_new_address_to_the_old_one(app, settings):
    """A user changed their e-mail (the old mailbox is no longer theirs) while a digest was open: what
    was queued for the new address is never folded into a letter to the old one."""
    import datetime as dt

    from foundation.clock import frozen_at
    from models.outbox import OutboxMessage
    from tests.test_notifications import ALL, document_letter, settle
    from workers import mail

    organization, people = await factories.create_team()
    owner = people[Role.OWNER]
    old, new = owner.email, factories.unique_email("moved")
    await settle(owner, organization.id, digest_hours=2)
    start = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.timezone.utc)
    with frozen_at(start):
        await document_letter(organization)
    await User.filter(id=owner.id).update(email=new)
    with frozen_at(start + dt.timedelta(minutes=30)):
        await document_letter(organization)
    number = {address: (await OutboxMessage.get(recipient=address, template="new_document")).subject.rsplit(" ", 1)[-1]
              for address in (old, new)}
    with frozen_at(start + dt.timedelta(hours=2)):
        await mail.deliver_due(settings, "attack-digest", batch=ALL)
    for address, other in ((old, new), (new, old)):
        sent = await OutboxMessage.filter(recipient=address, template="notification_digest").values_list("body", flat=True)
        assert all(number[other] not in body for body in sent), (address, sent)


async def test_invitations_and_created_members_letters_are_bounded_per_organization_and_day(gql, monkeypatch):
    """createMember sends a password by e-mail or SMS to any address; with inviteMember and
    resendInvite it is one door to the outbox, bounded per organization and day."""
    from resolvers.organizations import invitations
    from tests.test_people import CREATE as CREATE_MEMBER, RESEND, errors, run

    monkeypatch.setattr(invitations, "INVITATIONS_PER_DAY", 3)
    organization, people = await factories.create_team()
    owner = people[Role.OWNER]
    made = []
    for _ in range(2):
        payload = await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(organization), "phone": factories.unique_phone(),
                                                       "fullName": "Н Н", "role": "USER"}}, owner)
        assert payload["userErrors"] == [], payload
        made.append(payload["invite"]["id"])
    assert (await run(gql, RESEND, {"i": made[0]}, owner))["userErrors"] == []
    over = await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(organization), "phone": factories.unique_phone(),
                                                "fullName": "Н Н", "role": "USER"}}, owner)
    assert errors(over) == [("LIMIT_EXCEEDED", ["input", "organizationId"])]
    assert errors(await run(gql, RESEND, {"i": made[1]}, owner)) == [("LIMIT_EXCEEDED", ["inviteId"])]
    other, others = await factories.create_team()  # another organization's count is its own
    payload = await run(gql, CREATE_MEMBER, {"i": {"organizationId": oid(other), "phone": factories.unique_phone(),
                                                   "fullName": "Н Н", "role": "USER"}}, others[Role.OWNER])
    assert payload["userErrors"] == []
