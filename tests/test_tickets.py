"""Support tickets (issue 20): a member writes to support or to the manager, comments, closes and
reopens; the provider's staff answer (GraphQL and the provider HTTP API) and the author gets a letter;
the organization's dashboards follow over WebSocket; files are attached and only downloaded."""

from __future__ import annotations

import base64
import uuid

import pytest

from foundation.ids import to_global_id
from models.identity import User
from models.organizations import Membership, Role
from models.outbox import OutboxMessage
from models.tickets import SupportTicket, TicketAttachment, TicketAttachmentFile, TicketStatus
from resolvers.support import attachments, tickets
from tests import factories
from tests.live import TRANSPORT_WS, GraphQLSocket
from tests.test_add_organization import signed_in, staff
from tests.test_provider_api import bearer, new_token

CREATE = """mutation($input: CreateTicketInput!) { createTicket(input: $input) {
  ticket { id subject status addressee kind authorName organizationId
    comments { totalCount edges { node { authorName fromStaff text statusChangedTo } } } }
  userErrors { code field message } } }"""
COMMENT = """mutation($id: ID!, $text: String!) { commentTicket(ticketId: $id, text: $text) {
  ticket { id status } comment { text fromStaff } userErrors { code field message } } }"""
CLOSE = """mutation($id: ID!) { closeTicket(ticketId: $id) { ticket { id status closedAt } userErrors { code field message } } }"""
REOPEN = """mutation($id: ID!) { reopenTicket(ticketId: $id) { ticket { id status closedAt } userErrors { code field message } } }"""
ANSWER = """mutation($id: ID!, $text: String!) { staffAnswerTicket(ticketId: $id, text: $text) {
  ticket { id status organizationName } comment { text fromStaff authorName statusChangedTo } userErrors { code field message } } }"""
SET_STATUS = """mutation($id: ID!, $status: TicketStatus!) { staffSetTicketStatus(ticketId: $id, status: $status) {
  ticket { id status } userErrors { code field message } } }"""
ATTACH = """mutation($id: ID!, $name: String!, $content: String!) { attachToTicket(ticketId: $id, filename: $name, contentBase64: $content) {
  attachment { id filename contentType size downloadUrl } userErrors { code field message } } }"""
LIST = """query($org: ID!, $status: TicketStatus) { organization(id: $org) { tickets(status: $status) { totalCount edges { node {
  id subject status author { id } comments { edges { node { text statusChangedTo fromStaff } } }
  attachments { edges { node { filename } } } } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { ... on Ticket { id subject } } }"""
STAFF_LIST = """query($status: TicketStatus) { staffTickets(status: $status, first: 100) { edges { node { id subject status organizationName } } } }"""
SUBSCRIBE = """subscription($org: ID!) { tickets(organizationId: $org) { kind at ticket { id subject status
  comments { edges { node { text fromStaff } } } } } }"""

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def oid(organization) -> str:
    return to_global_id("Organization", organization.id)


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


async def create(gql, email: str, organization, subject: str = "Не печатаются счета", text: str = "Что делать?", **extra) -> dict:
    body = await gql.execute(CREATE, {"input": {"organizationId": oid(organization), "subject": subject, "text": text, **extra}}, as_user=email)
    assert "errors" not in body, body
    return body["data"]["createTicket"]


async def created(gql, email: str, organization, **kwargs) -> dict:
    payload = await create(gql, email, organization, **kwargs)
    assert payload["userErrors"] == [], payload
    return payload["ticket"]


async def team(gql, *roles: Role):
    organization, users = await factories.create_team(*roles)
    emails = {role: await signed_in(gql, user) for role, user in users.items()}
    return organization, users, emails


async def listed(gql, email: str, organization, status: str | None = None) -> list[dict]:
    body = await gql.execute(LIST, {"org": oid(organization), "status": status}, as_user=email)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["organization"]["tickets"]["edges"]]


def errors_of(payload: dict) -> list[tuple[str, list | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


# ---------------------------------------------------------------------------------------- writing and seeing


async def test_a_user_writes_to_support_and_the_owner_sees_it_the_accountant_does_not(gql):
    organization, _, emails = await team(gql, Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    ticket = await created(gql, emails[Role.USER], organization)
    assert (ticket["status"], ticket["addressee"], ticket["kind"]) == ("OPEN", "SUPPORT", "QUESTION")
    assert ticket["comments"]["totalCount"] == 1
    first = ticket["comments"]["edges"][0]["node"]
    assert (first["text"], first["fromStaff"], first["statusChangedTo"]) == ("Что делать?", False, "OPEN")

    for role in (Role.OWNER, Role.ADMIN, Role.USER):
        assert [t["id"] for t in await listed(gql, emails[role], organization)] == [ticket["id"]], role
    assert await listed(gql, emails[Role.ACCOUNTANT], organization) == []
    body = await gql.execute(NODE, {"id": ticket["id"]}, as_user=emails[Role.ACCOUNTANT])
    assert body["data"]["node"] is None
    refused = (await gql.execute(COMMENT, {"id": ticket["id"], "text": "И у меня"}, as_user=emails[Role.ACCOUNTANT]))["data"]["commentTicket"]
    assert errors_of(refused) == [("NOT_FOUND", ["ticketId"])]


async def test_the_accountant_sees_and_writes_in_their_own_tickets_only(gql):
    organization, _, emails = await team(gql, Role.ACCOUNTANT, Role.USER)
    own = await created(gql, emails[Role.ACCOUNTANT], organization, subject="Сверка")
    await created(gql, emails[Role.USER], organization, subject="Принтер")
    assert [t["subject"] for t in await listed(gql, emails[Role.ACCOUNTANT], organization)] == ["Сверка"]
    assert [t["subject"] for t in await listed(gql, emails[Role.OWNER], organization)] == ["Принтер", "Сверка"]
    answer = (await gql.execute(COMMENT, {"id": own["id"], "text": "Дополнение"}, as_user=emails[Role.ACCOUNTANT]))["data"]["commentTicket"]
    assert answer["userErrors"] == [] and answer["comment"]["text"] == "Дополнение"


async def test_write_to_the_manager(gql):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization, addressee="MANAGER", subject="Продление ИТС")
    assert ticket["addressee"] == "MANAGER"


async def test_another_organization_sees_nothing_of_a_ticket(gql):
    organization, _, emails = await team(gql)
    stranger_org, _, strangers = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    other = strangers[Role.OWNER]
    assert (await gql.execute(NODE, {"id": ticket["id"]}, as_user=other))["data"]["node"] is None
    assert (await gql.execute(LIST, {"org": oid(organization)}, as_user=other))["data"]["organization"] is None
    assert await listed(gql, other, stranger_org) == []
    for query, name, variables in (
        (COMMENT, "commentTicket", {"text": "x"}), (CLOSE, "closeTicket", {}), (REOPEN, "reopenTicket", {}),
        (ATTACH, "attachToTicket", {"name": "a.pdf", "content": b64(PDF)}),
    ):
        payload = (await gql.execute(query, {"id": ticket["id"], **variables}, as_user=other))["data"][name]
        assert errors_of(payload) == [("NOT_FOUND", ["ticketId"])], name
    payload = await create(gql, other, organization)
    assert errors_of(payload) == [("NOT_FOUND", ["input", "organizationId"])]


async def test_a_ticket_about_a_database_takes_only_one_the_writer_sees(gql):
    organization, users, emails = await team(gql, Role.USER)
    database = await factories.create_database(organization)
    stranger_org = await factories.create_organization()
    foreign = await factories.create_database(stranger_org)
    ok = await create(gql, emails[Role.OWNER], organization, databaseId=to_global_id("Database", database.id))
    assert ok["userErrors"] == []
    for email, db in ((emails[Role.OWNER], foreign), (emails[Role.USER], database)):  # the USER was granted none
        payload = await create(gql, email, organization, databaseId=to_global_id("Database", db.id))
        assert errors_of(payload) == [("NOT_FOUND", ["input", "databaseId"])]


@pytest.mark.parametrize(("subject", "text", "field"), [
    ("", "Текст", "subject"), ("   ", "Текст", "subject"), ("x" * 201, "Текст", "subject"),
    ("Тема", "", "text"), ("Тема", "x" * 10_001, "text"),
])
async def test_bad_input_is_refused(gql, subject, text, field):
    organization, _, emails = await team(gql)
    payload = await create(gql, emails[Role.OWNER], organization, subject=subject, text=text)
    assert errors_of(payload) == [("INVALID", ["input", field])]
    assert not await SupportTicket.exists(organization_id=organization.id)


async def test_tickets_and_messages_are_limited_per_organization_and_day(gql, monkeypatch):
    organization, _, emails = await team(gql, Role.USER)
    monkeypatch.setattr(tickets, "TICKETS_PER_DAY", 2)
    await created(gql, emails[Role.OWNER], organization)
    ticket = await created(gql, emails[Role.USER], organization)
    refused = await create(gql, emails[Role.OWNER], organization)
    assert errors_of(refused) == [("LIMIT_EXCEEDED", ["input", "organizationId"])]
    monkeypatch.setattr(tickets, "COMMENTS_PER_DAY", 3)
    first = (await gql.execute(COMMENT, {"id": ticket["id"], "text": "ещё"}, as_user=emails[Role.USER]))["data"]["commentTicket"]
    assert first["userErrors"] == []
    refused = (await gql.execute(COMMENT, {"id": ticket["id"], "text": "и ещё"}, as_user=emails[Role.USER]))["data"]["commentTicket"]
    assert errors_of(refused) == [("LIMIT_EXCEEDED", ["ticketId"])]
    # closing writes a history entry too: it is bounded alike (else close and reopen would be endless)
    assert errors_of((await gql.execute(CLOSE, {"id": ticket["id"]}, as_user=emails[Role.USER]))["data"]["closeTicket"]) == [("LIMIT_EXCEEDED", ["ticketId"])]
    # the provider's answers are not counted against the customer, nor refused
    as_staff = await staff(gql)
    answered = (await gql.execute(ANSWER, {"id": ticket["id"], "text": "Ответ"}, as_user=as_staff))["data"]["staffAnswerTicket"]
    assert answered["userErrors"] == []


# ---------------------------------------------------------------------------------------- the lifecycle


async def test_an_author_who_left_the_organization_is_not_mailed_the_answer(gql):
    """The letter is a notification to a member: one who left learns nothing more of the organization."""
    organization, users, emails = await team(gql, Role.USER)
    ticket = await created(gql, emails[Role.USER], organization, subject="Уже не наш вопрос")
    await Membership.filter(organization_id=organization.id, user_id=users[Role.USER].id).delete()
    as_staff = await staff(gql)
    answered = (await gql.execute(ANSWER, {"id": ticket["id"], "text": "Ответ."}, as_user=as_staff))["data"]["staffAnswerTicket"]
    assert answered["userErrors"] == []
    assert not await OutboxMessage.exists(recipient=users[Role.USER].email, template="ticket_answered")


async def test_the_answer_letter_follows_the_authors_notification_settings(gql):
    """TICKET_ANSWERED is a notification like any other: an author who turned it off gets no letter."""
    from models.notifications import NotificationKind, NotificationSettings

    organization, users, emails = await team(gql, Role.USER)
    await NotificationSettings.create(
        user=users[Role.USER], organization_id=organization.id,
        muted_kinds=NotificationKind.TICKET_ANSWERED.value,
    )
    ticket = await created(gql, emails[Role.USER], organization, subject="Тихо, пожалуйста")
    as_staff = await staff(gql)
    answered = (await gql.execute(ANSWER, {"id": ticket["id"], "text": "Готово."}, as_user=as_staff))["data"]["staffAnswerTicket"]
    assert answered["userErrors"] == [] and answered["ticket"]["status"] == "ANSWERED"
    assert not await OutboxMessage.exists(recipient=users[Role.USER].email, template="ticket_answered")


async def test_staff_answer_the_author_is_mailed_comments_close_and_reopen(gql):
    organization, users, emails = await team(gql, Role.USER)
    ticket = await created(gql, emails[Role.USER], organization, subject="Выписка не загружается")
    as_staff = await staff(gql)
    queue = (await gql.execute(STAFF_LIST, {"status": "OPEN"}, as_user=as_staff))["data"]["staffTickets"]["edges"]
    assert ticket["id"] in [edge["node"]["id"] for edge in queue]

    answered = (await gql.execute(ANSWER, {"id": ticket["id"], "text": "Обновите обработку обмена."}, as_user=as_staff))["data"]["staffAnswerTicket"]
    assert answered["userErrors"] == [] and answered["ticket"]["status"] == "ANSWERED"
    assert answered["comment"]["fromStaff"] is True and answered["comment"]["statusChangedTo"] == "ANSWERED"
    letter = await OutboxMessage.filter(recipient=users[Role.USER].email, template="ticket_answered").first()
    assert letter is not None and "Выписка не загружается" in letter.subject and "Обновите обработку обмена." in letter.body

    again = (await gql.execute(COMMENT, {"id": ticket["id"], "text": "Не помогло"}, as_user=emails[Role.USER]))["data"]["commentTicket"]
    assert again["ticket"]["status"] == "OPEN"
    waiting = (await gql.execute(SET_STATUS, {"id": ticket["id"], "status": "WAITING"}, as_user=as_staff))["data"]["staffSetTicketStatus"]
    assert waiting["ticket"]["status"] == "WAITING"
    same = (await gql.execute(SET_STATUS, {"id": ticket["id"], "status": "WAITING"}, as_user=as_staff))["data"]["staffSetTicketStatus"]
    assert errors_of(same) == [("CONFLICT", ["status"])]

    closed = (await gql.execute(CLOSE, {"id": ticket["id"]}, as_user=emails[Role.OWNER]))["data"]["closeTicket"]
    assert closed["ticket"]["status"] == "CLOSED" and closed["ticket"]["closedAt"]
    refused = (await gql.execute(COMMENT, {"id": ticket["id"], "text": "ещё"}, as_user=emails[Role.USER]))["data"]["commentTicket"]
    assert errors_of(refused) == [("CONFLICT", ["ticketId"])]
    assert errors_of((await gql.execute(CLOSE, {"id": ticket["id"]}, as_user=emails[Role.USER]))["data"]["closeTicket"]) == [("CONFLICT", ["ticketId"])]
    reopened = (await gql.execute(REOPEN, {"id": ticket["id"]}, as_user=emails[Role.USER]))["data"]["reopenTicket"]
    assert reopened["ticket"]["status"] == "OPEN" and reopened["ticket"]["closedAt"] is None

    assert len(await listed(gql, emails[Role.USER], organization, "OPEN")) == 1
    assert await listed(gql, emails[Role.USER], organization, "CLOSED") == []
    history = (await listed(gql, emails[Role.USER], organization))[0]["comments"]["edges"]
    assert [(e["node"]["statusChangedTo"], e["node"]["fromStaff"]) for e in history] == [
        ("OPEN", False), ("ANSWERED", True), ("OPEN", False), ("WAITING", True), ("CLOSED", False), ("OPEN", False),
    ]


async def test_members_may_not_answer_as_staff(gql):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    answered = (await gql.execute(ANSWER, {"id": ticket["id"], "text": "Сам себе отвечу"}, as_user=emails[Role.OWNER]))["data"]["staffAnswerTicket"]
    assert [e["code"] for e in answered["userErrors"]] == ["FORBIDDEN"]
    status = (await gql.execute(SET_STATUS, {"id": ticket["id"], "status": "CLOSED"}, as_user=emails[Role.OWNER]))["data"]["staffSetTicketStatus"]
    assert [e["code"] for e in status["userErrors"]] == ["FORBIDDEN"]
    body = await gql.execute(STAFF_LIST, {}, as_user=emails[Role.OWNER])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_staff_see_any_ticket_by_node(gql):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization, subject="Для сотрудника")
    as_staff = await staff(gql)
    assert (await gql.execute(NODE, {"id": ticket["id"]}, as_user=as_staff))["data"]["node"]["subject"] == "Для сотрудника"


async def test_the_provider_api_answers_and_sets_the_status_with_the_staff_scope(gql, client):
    organization, users, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization, subject="Через API")
    token = await new_token("staff")
    listed_ = await client.get("/provider/v1/staff/tickets?status=open&first=100", headers=bearer(token))
    assert listed_.status_code == 200 and ticket["id"] in [t["id"] for t in listed_.json()["items"]]

    answered = await client.post(
        f"/provider/v1/staff/tickets/{ticket['id']}/answer", json={"text": "Готово.", "staffName": "Ольга, поддержка"},
        headers=bearer(token),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["ticket"]["status"] == "ANSWERED" and answered.json()["comment"]["authorName"] == "Ольга, поддержка"
    assert await OutboxMessage.exists(recipient=users[Role.OWNER].email, template="ticket_answered")

    closed = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/status", json={"status": "closed"}, headers=bearer(token))
    assert closed.status_code == 200 and closed.json()["ticket"]["status"] == "CLOSED"
    bad = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/status", json={"status": "LOST"}, headers=bearer(token))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    unknown = await client.post(f"/provider/v1/staff/tickets/{to_global_id('Ticket', uuid.uuid4())}/answer", json={"text": "x"}, headers=bearer(token))
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "id"
    empty = await client.post(f"/provider/v1/staff/tickets/{ticket['id']}/answer", json={"text": ""}, headers=bearer(token))
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "text"

    without = await new_token("billing:write")
    for method, path in (("GET", "/provider/v1/staff/tickets"), ("POST", f"/provider/v1/staff/tickets/{ticket['id']}/answer"),
                         ("POST", f"/provider/v1/staff/tickets/{ticket['id']}/status")):
        response = await client.request(method, path, json={"text": "x", "status": "OPEN"}, headers=bearer(without))
        assert response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN", path
    assert (await SupportTicket.get(organization_id=organization.id)).status == TicketStatus.CLOSED


# ---------------------------------------------------------------------------------------- attachments


async def attach(gql, email: str, ticket_id: str, name: str, content: bytes) -> dict:
    body = await gql.execute(ATTACH, {"id": ticket_id, "name": name, "content": b64(content)}, as_user=email)
    assert "errors" not in body, body
    return body["data"]["attachToTicket"]


async def test_a_pdf_is_attached_and_only_downloaded(gql, client):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    payload = await attach(gql, emails[Role.OWNER], ticket["id"], "Акт сверки.pdf", PDF)
    assert payload["userErrors"] == []
    attachment = payload["attachment"]
    assert (attachment["contentType"], attachment["size"]) == ("application/pdf", len(PDF))
    response = await client.get(attachment["downloadUrl"])
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert [a["node"]["filename"] for t in await listed(gql, emails[Role.OWNER], organization) for a in t["attachments"]["edges"]] == ["Акт сверки.pdf"]


async def test_text_is_served_as_octet_stream_never_as_html(gql, client):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    page = b"<html><script>alert(document.cookie)</script></html>"
    payload = await attach(gql, emails[Role.OWNER], ticket["id"], "log.txt", page)
    response = await client.get(payload["attachment"]["downloadUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(("name", "content", "field"), [
    ("page.html", b"<html></html>", "filename"),
    ("virus.exe", b"MZ\x90\x00", "filename"),
    ("picture.svg", b"<svg/>", "filename"),
    ("noextension", PDF, "filename"),
    ("fake.pdf", b"<html><script></script></html>", "contentBase64"),
    ("fake.png", PDF, "contentBase64"),
    ("binary.txt", b"\x00\x01\x02\x03", "contentBase64"),
    ("empty.pdf", b"", "contentBase64"),
])
async def test_a_file_of_a_type_not_allowed_or_not_what_it_says_is_refused(gql, name, content, field):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    payload = await attach(gql, emails[Role.OWNER], ticket["id"], name, content)
    assert errors_of(payload) == [("INVALID", [field])]


async def test_a_file_too_big_and_too_many_bytes_a_day_are_refused(gql, monkeypatch):
    organization, _, emails = await team(gql)
    ticket = await created(gql, emails[Role.OWNER], organization)
    monkeypatch.setattr(attachments, "ATTACHMENT_MAX_BYTES", 1000)
    assert errors_of(await attach(gql, emails[Role.OWNER], ticket["id"], "big.png", PNG + b"\x00" * 1000)) == [("INVALID", ["contentBase64"])]
    monkeypatch.setattr(attachments, "ATTACHMENT_BYTES_PER_DAY", 2 * len(PNG))
    assert (await attach(gql, emails[Role.OWNER], ticket["id"], "one.png", PNG))["userErrors"] == []
    assert (await attach(gql, emails[Role.OWNER], ticket["id"], "two.png", PNG))["userErrors"] == []
    assert errors_of(await attach(gql, emails[Role.OWNER], ticket["id"], "three.png", PNG)) == [("LIMIT_EXCEEDED", ["contentBase64"])]


async def test_the_download_link_is_the_viewers_own_and_checked_again(gql, client, settings):
    organization, users, emails = await team(gql, Role.USER)
    ticket = await created(gql, emails[Role.USER], organization)
    attachment = (await attach(gql, emails[Role.USER], ticket["id"], "scan.pdf", PDF))["attachment"]
    url = attachment["downloadUrl"]
    assert (await client.get(url)).status_code == 200
    assert (await client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))).status_code == 403  # altered

    attachment_pk = uuid.UUID(url.split("/ticket-files/")[1].split("/")[0])
    _, strangers = await factories.create_team()
    foreign = attachments.sign_attachment(settings, attachment_pk, strangers[Role.OWNER].id)
    assert (await client.get(foreign)).status_code == 403  # another organization's owner: a valid signature is not enough

    await Membership.filter(user_id=users[Role.USER].id, organization_id=organization.id).delete()
    assert (await client.get(url)).status_code == 403  # the author left: their link stops working
    owner_link = attachments.sign_attachment(settings, attachment_pk, users[Role.OWNER].id)
    assert (await client.get(owner_link)).status_code == 200
    await User.filter(id=users[Role.OWNER].id).update(is_active=False)
    assert (await client.get(owner_link)).status_code == 403


# ---------------------------------------------------------------------------------------- live


async def test_the_dashboard_receives_the_staff_answer_over_a_websocket(gql, live_server):
    organization, users, emails = await team(gql, Role.USER)
    ticket = await created(gql, emails[Role.USER], organization, subject="Живой")
    own_socket, user_socket = GraphQLSocket(live_server, TRANSPORT_WS), GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await own_socket.connect(await gql.token_for(emails[Role.OWNER])))["type"] == "connection_ack"
        assert (await user_socket.connect(await gql.token_for(emails[Role.USER])))["type"] == "connection_ack"
        await own_socket.subscribe(SUBSCRIBE, {"org": oid(organization)})
        await user_socket.subscribe(SUBSCRIBE, {"org": oid(organization)})
        await _until_live(gql, emails)
        # the owner's own ticket reaches the owner's dashboard, not the user's
        owners = await created(gql, emails[Role.OWNER], organization, subject="Только владельцу")
        change = (await own_socket.next_data())["data"]["tickets"]
        assert (change["kind"], change["ticket"]["id"]) == ("CREATED", owners["id"])

        as_staff = await staff(gql)
        answered = await gql.execute(ANSWER, {"id": ticket["id"], "text": "Ответ поддержки"}, as_user=as_staff)
        assert answered["data"]["staffAnswerTicket"]["userErrors"] == []
        for socket in (own_socket, user_socket):
            change = (await socket.next_data())["data"]["tickets"]
            assert (change["kind"], change["ticket"]["id"], change["ticket"]["status"]) == ("COMMENTED", ticket["id"], "ANSWERED")
            assert change["ticket"]["comments"]["edges"][-1]["node"] == {"text": "Ответ поддержки", "fromStaff": True}
    finally:
        await own_socket.close()
        await user_socket.close()


async def test_a_download_link_in_a_live_message_is_the_receivers_own(gql, client, live_server):
    """Two administrators watch with the same document: they would share one result, but each link is signed for its receiver."""
    organization, users, emails = await team(gql, Role.ADMIN)
    second = await factories.create_user(factories.unique_email("admin2"))
    await factories.add_member(organization, second, Role.ADMIN)
    admins = {users[Role.ADMIN].id: emails[Role.ADMIN], second.id: await signed_in(gql, second)}
    ticket = await created(gql, emails[Role.OWNER], organization, subject="Со сканом")
    query = """subscription($org: ID!) { tickets(organizationId: $org) { kind ticket { attachments { edges { node { downloadUrl } } } } } }"""
    sockets = {user_id: GraphQLSocket(live_server, TRANSPORT_WS) for user_id in admins}
    try:
        for user_id, socket in sockets.items():
            assert (await socket.connect(await gql.token_for(admins[user_id])))["type"] == "connection_ack"
            await socket.subscribe(query, {"org": oid(organization)})
        await _until_live(gql, emails)
        assert (await attach(gql, emails[Role.OWNER], ticket["id"], "scan.pdf", PDF))["userErrors"] == []
        for user_id, socket in sockets.items():
            change = (await socket.next_data())["data"]["tickets"]
            url = change["ticket"]["attachments"]["edges"][0]["node"]["downloadUrl"]
            assert f"/{user_id}/" in url and (await client.get(url)).status_code == 200
    finally:
        for socket in sockets.values():
            await socket.close()


async def _until_live(gql, emails) -> None:
    """The subscriptions are live once their first statement ran; a short pause is enough for the
    in-process hub (nothing is sent on subscribing)."""
    import asyncio

    await asyncio.sleep(0.3)


# ---------------------------------------------------------------------------------------- constant SQL

DASHBOARD = """{ organizations(first: 10) { edges { node { id tickets(first: 20) { edges { node {
  id subject author { id fullName } database { id } product { id } organizationName
  comments(first: 5) { edges { node { text fromStaff } } } attachments(first: 5) { edges { node { filename size } } } } } } } } } }"""


async def statements_for(gql, sql_counter, organizations: int, per_organization: int) -> int:
    owner = await factories.create_user(factories.unique_email("tickets-sql"))
    for _ in range(organizations):
        organization = await factories.create_organization()
        await factories.add_member(organization, owner, Role.OWNER)
        for index in range(per_organization):
            ticket = await tickets.seed(organization.id, owner, f"Вопрос {index}", [
                (owner.full_name, "Текст", False, TicketStatus.OPEN, tickets.utcnow()),
                ("Поддержка", "Ответ", True, TicketStatus.ANSWERED, tickets.utcnow()),
            ])
            attachment = await TicketAttachment.create(
                ticket=ticket, organization_id=organization.id, uploaded_by=owner, filename="a.pdf", content_type="application/pdf", size=5,
            )
            await TicketAttachmentFile.create(attachment=attachment, content=b"%PDF-")
    email = await signed_in(gql, owner)
    with sql_counter() as counter:
        body = await gql.execute(DASHBOARD, as_user=email)
    assert "errors" not in body, body
    edges = body["data"]["organizations"]["edges"]
    assert len(edges) == organizations and all(len(e["node"]["tickets"]["edges"]) == per_organization for e in edges)
    return len(counter.statements)


async def test_tickets_with_their_history_and_files_cost_the_same_statements_at_ten_times_the_data(gql, sql_counter):
    small = await statements_for(gql, sql_counter, organizations=1, per_organization=2)
    large = await statements_for(gql, sql_counter, organizations=5, per_organization=10)
    assert small == large, (small, large)
