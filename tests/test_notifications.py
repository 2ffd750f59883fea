"""Notification settings and `notify`: the kinds, the send window at its edges and across time zones,
digests folded by the mail worker, reminders once per threshold, and the letters each change sends
(a release, an update's schedule and result, a document, a session ended by an admin, an invitation
accepted, a moderation waiting)."""

from __future__ import annotations

import pytest

import datetime as dt
import uuid
from decimal import Decimal

from tortoise.transactions import in_transaction

from foundation.clock import frozen_at, utcnow
from models.billing import BalanceTransaction, DocumentKind, TransactionKind
from models.identity import User
from models.notifications import NotificationKind, NotificationReminder, NotificationSettings
from models.organizations import Role
from models.outbox import DeliveryStatus, OutboxMessage
from models.products import Contract, ContractKind
from models.updates import UpdateRunOrigin, UpdateRunStatus
from foundation.ids import to_global_id
from resolvers.billing import publication as document_publication
from resolvers.common import notifications
from resolvers.common import reminders as reminding
from resolvers.common import outbox
from resolvers.updates import releases
from resolvers.updates import runs as update_runs
from resolvers.common.context import SystemActor
from tests import factories
from tests import test_invites as invites
from tests.test_add_organization import ADD, legal_inn
from tests.test_sessions_mutations import TERMINATE
from workers import mail
from workers import reminders

UTC = dt.timezone.utc
ALL = 100_000  # the session shares one outbox: rounds are big, assertions look at this test's letters only
K = NotificationKind
ACTOR = SystemActor("test")
SETTINGS = """query($o: ID) { notificationSettings(organizationId: $o) {
  enabledKinds availableKinds timeZone windowStart windowEnd digestHours reminders customized } }"""
UPDATE = """mutation($o: ID, $input: NotificationSettingsInput!) { updateNotificationSettings(organizationId: $o, input: $input) {
  notificationSettings { enabledKinds timeZone windowStart windowEnd digestHours reminders customized }
  userErrors { code field message } } }"""
ORGANIZATIONS = """{ organizations { edges { node { id notificationSettings { enabledKinds windowStart customized } } } } }"""

# The database is the app's (a session fixture): a test run alone, or first on its worker, needs it started.
pytestmark = pytest.mark.usefixtures("app")


async def signed_in(gql, user: User) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


async def letters(user: User, template: str | None = None) -> list[OutboxMessage]:
    query = OutboxMessage.filter(recipient=user.email)
    if template:
        query = query.filter(template=template)
    return list(await query.order_by("created_at"))


async def settle(user: User, organization_id, **values) -> NotificationSettings:
    return await NotificationSettings.create(user=user, organization_id=organization_id, **values)


async def document_letter(organization) -> None:
    """NEW_DOCUMENT to the organization, as publishing a visible document does."""
    number = f"СЧ-{uuid.uuid4().hex[:8]}"
    await document_publication.publish_document(
        organization.id, DocumentKind.INVOICE, number, utcnow().date(), None, Decimal("100.00"), b"%PDF-1.4",
        visible_from=utcnow().date(),
    )


# ---------------------------------------------------------------- settings in GraphQL


async def test_a_member_who_never_set_anything_has_the_defaults(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    org_id = to_global_id("Organization", organization.id)
    body = await gql.execute(SETTINGS, {"o": org_id}, as_user=await signed_in(gql, team[Role.ACCOUNTANT]))
    found = body["data"]["notificationSettings"]
    assert found == {
        "enabledKinds": ["NEW_DOCUMENT", "LOW_BALANCE", "CONTRACT_EXPIRING", "SESSION_TERMINATED_BY_ADMIN", "TICKET_ANSWERED"],
        "availableKinds": ["NEW_DOCUMENT", "LOW_BALANCE", "CONTRACT_EXPIRING", "SESSION_TERMINATED_BY_ADMIN", "TICKET_ANSWERED"],
        "timeZone": "Europe/Moscow", "windowStart": None, "windowEnd": None, "digestHours": None, "reminders": True,
        "customized": False,
    }
    owner = (await gql.execute(SETTINGS, {"o": org_id}, as_user=await signed_in(gql, team[Role.OWNER])))["data"]["notificationSettings"]
    assert "RELEASE_OUT" in owner["enabledKinds"] and "MODERATION_WAITING" not in owner["availableKinds"]


async def test_each_member_changes_their_own_settings_only(gql):
    organization, team = await factories.create_team(Role.USER)
    other, _ = await factories.create_team()
    org_id = to_global_id("Organization", organization.id)
    user = await signed_in(gql, team[Role.USER])
    body = await gql.execute(UPDATE, {"o": org_id, "input": {
        "enabledKinds": ["TICKET_ANSWERED"], "timeZone": "Asia/Yekaterinburg", "windowStart": "09:00",
        "windowEnd": "18:00", "digestHours": 24, "reminders": False,
    }}, as_user=user)
    payload = body["data"]["updateNotificationSettings"]
    assert payload["userErrors"] == []
    assert payload["notificationSettings"] == {
        "enabledKinds": ["TICKET_ANSWERED"], "timeZone": "Asia/Yekaterinburg", "windowStart": "09:00", "windowEnd": "18:00",
        "digestHours": 24, "reminders": False, "customized": True,
    }
    # the owner's are untouched, and nobody reaches another organization's
    owner = (await gql.execute(SETTINGS, {"o": org_id}, as_user=await signed_in(gql, team[Role.OWNER])))["data"]["notificationSettings"]
    assert owner["customized"] is False and owner["windowStart"] is None
    foreign = await gql.execute(UPDATE, {"o": to_global_id("Organization", other.id), "input": {"reminders": False}}, as_user=user)
    assert [e["code"] for e in foreign["data"]["updateNotificationSettings"]["userErrors"]] == ["NOT_FOUND"]
    assert (await gql.execute(SETTINGS, {"o": to_global_id("Organization", other.id)}, as_user=user))["data"]["notificationSettings"] is None
    # Organization.notificationSettings: the viewer's own, in each organization
    listed = (await gql.execute(ORGANIZATIONS, as_user=user))["data"]["organizations"]["edges"]
    assert [e["node"]["notificationSettings"] for e in listed] == [
        {"enabledKinds": ["TICKET_ANSWERED"], "windowStart": "09:00", "customized": True}
    ]
    # a window and a digest can be dropped again
    cleared = await gql.execute(UPDATE, {"o": org_id, "input": {"anyTime": True, "noDigest": True}}, as_user=user)
    assert cleared["data"]["updateNotificationSettings"]["notificationSettings"]["windowStart"] is None
    assert cleared["data"]["updateNotificationSettings"]["notificationSettings"]["digestHours"] is None


async def test_bad_settings_are_refused_on_their_field(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    org_id = to_global_id("Organization", organization.id)
    who = await signed_in(gql, team[Role.ACCOUNTANT])
    cases = [
        ({"timeZone": "Mars/Olympus"}, ["input", "timeZone"]),
        ({"timeZone": "../../etc/passwd"}, ["input", "timeZone"]),
        ({"windowStart": "09:00"}, ["input", "windowEnd"]),
        ({"windowStart": "25:00", "windowEnd": "18:00"}, ["input", "windowStart"]),
        ({"windowStart": "09:00", "windowEnd": "09:00"}, ["input", "windowEnd"]),
        ({"digestHours": 0}, ["input", "digestHours"]),
        ({"digestHours": 73}, ["input", "digestHours"]),
        ({"enabledKinds": ["RELEASE_OUT"]}, ["input", "enabledKinds"]),  # not an accountant's
        ({"enabledKinds": ["MODERATION_WAITING"]}, ["input", "enabledKinds"]),
    ]
    for given, field in cases:
        body = await gql.execute(UPDATE, {"o": org_id, "input": given}, as_user=who)
        assert [(e["code"], e["field"]) for e in body["data"]["updateNotificationSettings"]["userErrors"]] == [("INVALID", field)], given
    assert not await NotificationSettings.exists(user_id=team[Role.ACCOUNTANT].id)
    # settings without an organization are the provider's staff's alone
    body = await gql.execute(UPDATE, {"o": None, "input": {"reminders": False}}, as_user=who)
    assert [e["code"] for e in body["data"]["updateNotificationSettings"]["userErrors"]] == ["FORBIDDEN"]


# ---------------------------------------------------------------- the send window


def view(time_zone: str, start: str | None, end: str | None) -> notifications.SettingsView:
    def minutes(text):
        return None if text is None else int(text[:2]) * 60 + int(text[3:])
    return notifications.SettingsView(uuid.uuid4(), uuid.uuid4(), (), time_zone=time_zone, window_start=minutes(start), window_end=minutes(end))


def test_the_window_at_its_edges_in_the_users_time_zone():
    yekaterinburg = view("Asia/Yekaterinburg", "09:00", "18:00")  # UTC+5: 04:00–13:00 UTC
    at = lambda h, m, s=0: dt.datetime(2026, 12, 7, h, m, s, tzinfo=UTC)  # noqa: E731
    assert notifications.not_before(at(3, 59, 59), yekaterinburg) == at(4, 0)  # a second early: waits for 09:00
    assert notifications.not_before(at(4, 0), yekaterinburg) == at(4, 0)  # the start is inside
    assert notifications.not_before(at(12, 59, 59), yekaterinburg) == at(12, 59, 59)
    assert notifications.not_before(at(13, 0), yekaterinburg) == at(4, 0) + dt.timedelta(days=1)  # the end is outside
    # the same moment elsewhere: New York (UTC-5 in December) 09:00–18:00 is 14:00–23:00 UTC
    new_york = view("America/New_York", "09:00", "18:00")
    assert notifications.not_before(at(13, 0), new_york) == at(14, 0)
    # a window over midnight, 22:00–07:00 Moscow (UTC+3): 19:00–04:00 UTC
    night = view("Europe/Moscow", "22:00", "07:00")
    assert notifications.not_before(at(18, 59), night) == at(19, 0)
    assert notifications.not_before(at(23, 30), night) == at(23, 30)
    assert notifications.not_before(at(3, 59), night) == at(3, 59)
    assert notifications.not_before(at(4, 0), night) == at(19, 0)
    # no window: at once
    assert notifications.not_before(at(4, 0), view("Europe/Moscow", None, None)) == at(4, 0)


def test_the_window_follows_daylight_saving_time():
    berlin = view("Europe/Berlin", "09:00", "10:00")
    # 29 March 2026 Berlin moves to UTC+2: the window's start is 07:00 UTC that day, 08:00 UTC the day before
    assert notifications.not_before(dt.datetime(2026, 3, 28, 12, 0, tzinfo=UTC), berlin) == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert notifications.not_before(dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC), berlin) == dt.datetime(2026, 3, 28, 8, 0, tzinfo=UTC)


async def test_a_letter_outside_the_window_waits_for_its_start_and_the_worker_honours_it(settings):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    accountant, owner = team[Role.ACCOUNTANT], team[Role.OWNER]
    await settle(accountant, organization.id, time_zone="Asia/Yekaterinburg", window_start=9 * 60, window_end=18 * 60)
    await settle(owner, organization.id, time_zone="America/New_York", window_start=9 * 60, window_end=18 * 60)
    evening = dt.datetime(2026, 12, 7, 13, 0, tzinfo=UTC)  # 18:00 in Yekaterinburg, 08:00 in New York
    with frozen_at(evening):
        await document_letter(organization)
        (for_accountant,) = await letters(accountant, "new_document")
        (for_owner,) = await letters(owner, "new_document")
        assert for_accountant.next_attempt_at == dt.datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
        assert for_owner.next_attempt_at == dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
        await mail.deliver_due(settings, "test-notify", batch=ALL)
        assert (await OutboxMessage.get(id=for_owner.id)).status == DeliveryStatus.PENDING
    with frozen_at(dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)):
        await mail.deliver_due(settings, "test-notify", batch=ALL)
        assert (await OutboxMessage.get(id=for_owner.id)).status == DeliveryStatus.SENT
        assert (await OutboxMessage.get(id=for_accountant.id)).status == DeliveryStatus.PENDING
    with frozen_at(dt.datetime(2026, 12, 8, 4, 0, tzinfo=UTC)):
        await mail.deliver_due(settings, "test-notify", batch=ALL)
        assert (await OutboxMessage.get(id=for_accountant.id)).status == DeliveryStatus.SENT


async def test_a_kind_turned_off_sends_nothing():
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    await settle(team[Role.ACCOUNTANT], organization.id, muted_kinds="LOW_BALANCE,NEW_DOCUMENT")
    await document_letter(organization)
    assert await letters(team[Role.ACCOUNTANT]) == []
    assert await letters(team[Role.USER]) == []  # a USER does not see documents: never mailed about them
    assert len(await letters(team[Role.OWNER], "new_document")) == 1


async def test_a_document_published_for_later_mails_nobody_yet():
    organization, team = await factories.create_team()
    await document_publication.publish_document(
        organization.id, DocumentKind.ACT, f"АКТ-{uuid.uuid4().hex[:8]}", utcnow().date(), None, Decimal("1.00"), b"%PDF",
        visible_from=utcnow().date() + dt.timedelta(days=3),
    )
    assert await letters(team[Role.OWNER]) == []


# ---------------------------------------------------------------- digests


async def test_a_digest_collects_the_hours_letters_into_one(settings):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    await settle(owner, organization.id, digest_hours=2)
    start = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    for minutes in (0, 30, 90):
        with frozen_at(start + dt.timedelta(minutes=minutes)):
            await document_letter(organization)
            await mail.deliver_due(settings, "test-notify", batch=ALL)
    waiting = await letters(owner, "new_document")
    assert len(waiting) == 3 and {m.status for m in waiting} == {DeliveryStatus.PENDING}
    assert {m.next_attempt_at for m in waiting} == {start + dt.timedelta(hours=2)}
    assert len({m.digest_key for m in waiting}) == 1
    due = start + dt.timedelta(hours=2)
    with frozen_at(due):
        await mail.deliver_due(settings, "test-notify", batch=ALL)
        await mail.deliver_due(settings, "test-notify-2", batch=ALL)  # a second worker sends nothing again
    (digest,) = await letters(owner, "notification_digest")
    assert digest.status == DeliveryStatus.SENT and "(3)" in digest.subject
    assert all(m.subject in digest.body for m in waiting)
    assert {m.status for m in await letters(owner, "new_document")} == {DeliveryStatus.SENT}
    # the next letter opens a new digest
    with frozen_at(due + dt.timedelta(minutes=5)):
        await document_letter(organization)
    latest = (await letters(owner, "new_document"))[-1]
    assert latest.status == DeliveryStatus.PENDING and latest.next_attempt_at == due + dt.timedelta(hours=2, minutes=5)


async def test_a_digest_waits_for_the_window_too():
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    await settle(owner, organization.id, digest_hours=3, time_zone="Europe/Moscow", window_start=9 * 60, window_end=18 * 60)
    with frozen_at(dt.datetime(2026, 12, 7, 14, 0, tzinfo=UTC)):  # 17:00 Moscow: 3 hours on is past 18:00
        await document_letter(organization)
    (waiting,) = await letters(owner, "new_document")
    assert waiting.next_attempt_at == dt.datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # 09:00 Moscow next day


# ---------------------------------------------------------------- reminders


async def test_a_contract_ending_reminds_once_per_threshold():
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    today = dt.date(2026, 12, 7)
    contract = await Contract.create(
        organization=organization, kind=ContractKind.ITS, number=f"ИТС-{uuid.uuid4().hex[:6]}",
        starts_on=today - dt.timedelta(days=300), ends_on=today + dt.timedelta(days=31),
    )
    await settle(team[Role.OWNER], organization.id, reminders=False)

    async def pass_on(day_offset: int) -> int:
        with frozen_at(dt.datetime.combine(today + dt.timedelta(days=day_offset), dt.time(10, 0), tzinfo=UTC)):
            await reminding.remind_contracts(ACTOR, today + dt.timedelta(days=day_offset))
        return len(await letters(team[Role.ACCOUNTANT], "contract_expiring"))

    assert await pass_on(0) == 0  # 31 days ahead: nothing yet
    assert await pass_on(1) == 1  # 30
    assert await pass_on(1) == 1  # the same pass again: once
    assert await pass_on(2) == 1  # 29
    assert await pass_on(24) == 2  # 7
    assert await pass_on(25) == 2
    assert await pass_on(30) == 3  # 1
    assert await pass_on(30) == 3
    assert await letters(team[Role.OWNER]) == []  # reminders off
    assert await letters(team[Role.USER]) == []  # a USER gets no contract letters
    # extended: a new end date, a new series
    contract.ends_on = today + dt.timedelta(days=60)
    await contract.save()
    assert await pass_on(30) == 4


async def test_a_missed_pass_sends_only_the_nearest_threshold():
    organization, team = await factories.create_team()
    today = dt.date(2026, 12, 7)
    await Contract.create(
        organization=organization, kind=ContractKind.ITS, number=f"ИТС-{uuid.uuid4().hex[:6]}",
        starts_on=today - dt.timedelta(days=300), ends_on=today + dt.timedelta(days=5),
    )
    await reminding.remind_contracts(ACTOR, today)
    await reminding.remind_contracts(ACTOR, today + dt.timedelta(days=1))
    (letter,) = await letters(team[Role.OWNER], "contract_expiring")
    assert "5 дн" in letter.subject
    assert await NotificationReminder.filter(user_id=team[Role.OWNER].id).count() == 2  # 30 and 7 remembered


async def ledger(organization, amount: str, kind: TransactionKind, balance_after: str, at: dt.datetime) -> None:
    seq = await BalanceTransaction.filter(organization_id=organization.id).count() + 1
    await BalanceTransaction.create(
        organization=organization, seq=seq, kind=kind, amount=Decimal(amount), balance_after=Decimal(balance_after),
        description="test", occurred_at=at,
    )


async def test_a_low_balance_reminds_once_per_threshold_until_topped_up():
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    now = dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    await ledger(organization, "5000.00", TransactionKind.TOP_UP, "5000.00", now - dt.timedelta(days=20))
    await ledger(organization, "-3000.00", TransactionKind.CHARGE, "2000.00", now - dt.timedelta(days=10))  # 100 a day: 20 days
    accountant = team[Role.ACCOUNTANT]

    async def pass_at(moment: dt.datetime) -> int:
        with frozen_at(moment):
            await reminding.remind_balances(ACTOR, moment)
        return len(await letters(accountant, "low_balance"))

    assert await pass_at(now) == 1
    assert await pass_at(now + dt.timedelta(hours=1)) == 1
    (letter,) = await letters(accountant, "low_balance")
    assert "20 дн" in letter.subject and "2000.00" in letter.body
    await ledger(organization, "-1500.00", TransactionKind.CHARGE, "500.00", now + dt.timedelta(hours=2))  # 150 a day: 3 days
    assert await pass_at(now + dt.timedelta(hours=3)) == 2
    await ledger(organization, "50000.00", TransactionKind.TOP_UP, "50500.00", now + dt.timedelta(hours=4))  # dealt with
    assert await pass_at(now + dt.timedelta(hours=5)) == 2
    assert not await NotificationReminder.exists(organization_id=organization.id)
    await ledger(organization, "-50000.00", TransactionKind.CHARGE, "500.00", now + dt.timedelta(hours=6))  # low again
    assert await pass_at(now + dt.timedelta(hours=7)) == 3


# ---------------------------------------------------------------- the letters of each change


async def test_a_release_mails_the_managers_of_organizations_with_that_configuration():
    organization, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT)
    bystander, others = await factories.create_team()
    configuration = f"Конфигурация {uuid.uuid4().hex[:6]}"
    database = await factories.create_database(organization, name="Бухгалтерия")
    database.configuration = configuration
    await database.save()
    await releases.publish(ACTOR, configuration, "3.0.151.1")
    for role in (Role.OWNER, Role.ADMIN):
        (letter,) = await letters(team[role], "release_out")
        assert "3.0.151.1" in letter.subject and "Бухгалтерия" in letter.body and "5–7 дней" in letter.body
    assert await letters(team[Role.ACCOUNTANT]) == []
    assert await letters(others[Role.OWNER]) == []


async def test_an_update_mails_when_scheduled_done_and_failed():
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    database = await factories.create_database(organization, name="Торговля")
    now = utcnow()
    for outcome in ("done", "failed"):
        run = await update_runs.plan(ACTOR, database, now - dt.timedelta(minutes=1), "3.0.152.1", UpdateRunOrigin.ONE_OFF)
        run = await update_runs.leased(ACTOR, run.id, "test-worker", now, now + dt.timedelta(minutes=5), 3)
        claim = update_runs.Claim.of(run)
        if outcome == "done":
            ended = await update_runs.succeeded(ACTOR, claim, database.id, "ok", "3.0.152.1", now)
        else:
            ended = await update_runs.failed(ACTOR, claim, database.id, "Ошибка конфигуратора", now)
        assert ended.status == (UpdateRunStatus.SUCCEEDED if outcome == "done" else UpdateRunStatus.FAILED)
    assert len(await letters(owner, "update_scheduled")) == 2
    (done,) = await letters(owner, "update_done")
    assert "Торговля" in done.subject and "3.0.152.1" in done.body
    (failed,) = await letters(owner, "update_failed")
    assert "Ошибка конфигуратора" in failed.body


async def test_moderation_waiting_reaches_the_staff(gql):
    staff = await factories.create_user(factories.unique_email("staff"))
    await User.filter(id=staff.id).update(is_staff=True)
    quiet = await factories.create_user(factories.unique_email("staff"))
    await User.filter(id=quiet.id).update(is_staff=True)
    await settle(quiet, None, muted_kinds="MODERATION_WAITING")
    founder = await factories.create_user()
    body = await gql.execute(ADD, {"input": {"inn": legal_inn(), "kind": "LEGAL_ENTITY", "name": "ООО «Ждёт»", "position": "Директор"}},
                             as_user=await signed_in(gql, founder))
    assert body["data"]["addOrganization"]["organization"]["moderationStatus"] == "PENDING"
    (letter,) = await letters(staff, "moderation_waiting")
    assert "ООО «Ждёт»" in letter.body
    assert await letters(quiet) == [] and await letters(founder) == []
    # a staff member's own settings, without an organization
    mine = (await gql.execute(SETTINGS, {"o": None}, as_user=await signed_in(gql, quiet)))["data"]["notificationSettings"]
    assert mine["availableKinds"] == ["MODERATION_WAITING"] and mine["enabledKinds"] == []


async def test_a_session_ended_by_an_admin_mails_its_user_not_one_they_ended_themselves(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    user = team[Role.USER]
    database = await factories.create_database(organization, name="Зарплата")
    first = await factories.create_session(database, user=user)
    second = await factories.create_session(database, user=user)
    body = await gql.execute(TERMINATE, {"id": to_global_id("Session", first.id)}, as_user=await signed_in(gql, team[Role.ADMIN]))
    assert body["data"]["terminateSession"]["userErrors"] == []
    (letter,) = await letters(user, "session_terminated")
    assert "Зарплата" in letter.body
    body = await gql.execute(TERMINATE, {"id": to_global_id("Session", second.id)}, as_user=await signed_in(gql, user))
    assert body["data"]["terminateSession"]["userErrors"] == []
    assert len(await letters(user, "session_terminated")) == 1


async def test_an_accepted_invitation_mails_the_owner_and_admins_not_the_newcomer(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT)
    address = factories.unique_email("newcomer")
    _, token = await invites.sent_invite(gql, team[Role.ADMIN], organization, email=address, role="ADMIN")
    accepted = await invites.accept(gql, token, fullName="Петров Пётр", password="very-secret-42")
    assert accepted["userErrors"] == []
    for role in (Role.OWNER, Role.ADMIN):
        (letter,) = await letters(team[role], "invite_accepted")
        assert "Петров Пётр" in letter.body and organization.name in letter.body
    assert await letters(team[Role.ACCOUNTANT]) == []
    newcomer = await User.get(email=address)
    assert await letters(newcomer, "invite_accepted") == []


async def test_outbox_deferred_holds_letters_queued_inside_only():
    later = utcnow() + dt.timedelta(hours=3)
    address = factories.unique_email("deferred")
    with outbox.deferred(later, "digest:test"):
        inside = await outbox.email(address, "moderation_waiting", organization_name="X", inn="1")
    outside = await outbox.email(address, "moderation_waiting", organization_name="Y", inn="2")
    assert (inside.next_attempt_at, inside.digest_key) == (later, "digest:test")
    assert outside.digest_key is None and outside.next_attempt_at <= utcnow()


async def test_history_is_not_news():
    """The provider's records may bring old documents and releases: nobody is mailed about them."""
    organization, team = await factories.create_team()
    long_ago = utcnow().date() - dt.timedelta(days=40)
    await document_publication.publish_document(
        organization.id, DocumentKind.INVOICE, f"СЧ-{uuid.uuid4().hex[:8]}", long_ago, None, Decimal("1.00"), b"%PDF",
        visible_from=long_ago,
    )
    configuration = f"Конфигурация {uuid.uuid4().hex[:6]}"
    database = await factories.create_database(organization)
    database.configuration = configuration
    await database.save()
    await releases.publish(ACTOR, configuration, "3.0.151.1", published_at=utcnow() - dt.timedelta(days=30))
    assert await letters(team[Role.OWNER]) == []


async def test_two_mail_workers_never_send_a_digest_twice(settings):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    await settle(owner, organization.id, digest_hours=1)
    start = dt.datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    for minutes in (0, 10):
        with frozen_at(start + dt.timedelta(minutes=minutes)):
            await document_letter(organization)
    with frozen_at(start + dt.timedelta(hours=1)):
        lease_owner, claimed = await mail._claim("worker-a", ALL, utcnow())
        mine = [m for m in claimed if m.recipient == owner.email]
        assert len(mine) == 2  # the digest's letters claimed together
        await mail.deliver_due(settings, "worker-b", batch=ALL)  # meanwhile: B finds them leased
        assert await letters(owner, "notification_digest") == []
        async with in_transaction():
            digest = await notifications.fold_digest(mine, lease_owner)
        assert digest is not None and digest.lease_owner == lease_owner
        assert await outbox.sent(digest, lease_owner)
    assert [m.status for m in await letters(owner)] == [DeliveryStatus.SENT] * 3


async def test_the_reminders_worker_pass(app):
    organization, team = await factories.create_team()
    await Contract.create(
        organization=organization, kind=ContractKind.ITS, number=f"ИТС-{uuid.uuid4().hex[:6]}",
        starts_on=utcnow().date() - dt.timedelta(days=300), ends_on=utcnow().date() + dt.timedelta(days=7),
    )
    first = await reminders.reminders_pass(app.state.broadcast)
    again = await reminders.reminders_pass(app.state.broadcast)
    assert first["contracts"] >= 1 and set(again) == {"contracts", "balances"}
    assert len(await letters(team[Role.OWNER], "contract_expiring")) == 1
