"""Addresses are logins only once proven (finding 10 of issue 17).

Before, someone could sign up with a victim's e-mail and their own phone, confirm by SMS, and the
e-mail was then theirs: unique, so the victim could not sign up with it, and a login, an invitee
and a recipient of what was addressed to it. Now an address given but not proven waits in
`unproven_email` / `unproven_phone` (resolvers/identity/addresses.py): it opens nothing, finds nobody and
reserves nothing; whoever proves it has it, and the other account is told.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

from tortoise import connections

from foundation.clock import utcnow
from models.identity import User, VerificationCode
from models.organizations import KnownContact, Role
from models.outbox import Channel, OutboxMessage

from tests import factories
from tests.test_add_organization import add, legal_inn
from tests.test_invites import accept, errors, last_message, sent_invite
from tests.test_recovery import CONFIRM_EMAIL, REQUEST_EMAIL, last_code, login, request_reset
from tests.test_signup import PASSWORD, confirm, sign_up

ROOT = Path(__file__).resolve().parent.parent


async def squatter_with(gql, *, email: str | None = None, phone: str | None = None) -> User:
    """An account confirmed by the code to its own address, having given someone else's beside it."""
    if email:
        data, payload = await sign_up(gql, email=email)
        await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
        return await User.get(phone=data["phone"])
    data, payload = await sign_up(gql, phone=phone, confirmBy="EMAIL")
    await confirm(gql, payload["registrationId"], await last_code(data["email"]))
    return await User.get(email=data["email"])


async def test_a_sign_up_with_someone_else_s_e_mail_gets_no_login_no_reset_and_no_invitation_by_it(gql):
    victim = factories.unique_email("victim")
    squatter = await squatter_with(gql, email=victim)
    assert (squatter.email, squatter.unproven_email) == (None, victim)
    refused = await login(gql, victim, PASSWORD)
    assert refused["accessToken"] is None and errors(refused) == [("INVALID", ["input", "password"])]
    assert (await request_reset(gql, victim))["userErrors"] == []
    assert not await OutboxMessage.exists(recipient=victim), "no reset code for an address nobody proved"
    organization, team = await factories.create_team(Role.OWNER)
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=victim)
    assert (await last_message(victim)).template == "invite_new_user", "the letter does not say it has an account"
    # The link went to the victim, who joins with an account of their own:
    payload = await accept(gql, token, fullName="Настоящий Владелец", password="the-owner-password")
    assert payload["userErrors"] == [] and payload["user"]["email"] == victim
    assert (await User.get(id=squatter.id)).unproven_email is None, "detached from the squatter"


async def test_the_real_owner_signs_up_with_the_e_mail_and_the_other_account_is_told_by_sms(gql):
    victim = factories.unique_email("owner")
    squatter = await squatter_with(gql, email=victim)
    data, payload = await sign_up(gql, email=victim, confirmBy="EMAIL")
    assert payload["codeSentTo"].endswith("@example.com")
    code_letter = await last_message(victim)
    assert code_letter.template == "sign_up_code_email", "a real code, not the notice of a taken address"
    assert (await confirm(gql, payload["registrationId"], await last_code(victim)))["userErrors"] == []
    owner = await User.get(email=victim)
    assert owner.id != squatter.id and owner.email_verified
    assert (await User.get(id=squatter.id)).unproven_email is None
    told = await last_message(squatter.phone, Channel.SMS)
    assert told.template == "address_detached_sms" and "o***@example.com" in told.body
    assert (await login(gql, victim, PASSWORD))["accessToken"]


async def test_a_phone_given_unproven_is_detached_when_its_owner_proves_it_and_the_other_is_told_by_e_mail(gql):
    phone = factories.unique_phone()
    squatter = await squatter_with(gql, phone=phone)
    assert (squatter.phone, squatter.unproven_phone) == (None, phone)
    assert (await login(gql, phone, PASSWORD))["accessToken"] is None, "an unproven phone is no login"
    data, payload = await sign_up(gql, phone=phone)
    assert (await confirm(gql, payload["registrationId"], await last_code(phone)))["userErrors"] == []
    assert (await User.get(phone=phone)).id != squatter.id
    assert (await User.get(id=squatter.id)).unproven_phone is None
    assert (await last_message(squatter.email)).template == "address_detached_email"


async def test_an_account_with_no_proven_address_to_tell_is_told_nothing(gql, settings):
    """The choice: the notice goes to a proven e-mail, else a proven phone (where SMS can go), else nowhere."""
    phone = factories.unique_phone()
    nobody = await User.create(full_name="Без адреса", password_hash="x", unproven_phone=phone)
    before = await OutboxMessage.all().count()
    data, payload = await sign_up(gql, phone=phone)
    assert (await confirm(gql, payload["registrationId"], await last_code(phone)))["userErrors"] == []
    assert (await User.get(id=nobody.id)).unproven_phone is None
    sent = await OutboxMessage.filter().order_by("-created_at").limit(await OutboxMessage.all().count() - before)
    assert {m.template for m in sent} <= {"sign_up_code_sms"}


async def test_an_unproven_phone_of_a_known_contact_does_not_approve_an_organization(gql):
    phone, inn, other_inn = factories.unique_phone(), legal_inn(), legal_inn()
    await KnownContact.create(inn=inn, phone=phone)
    await KnownContact.create(inn=other_inn, phone=phone)
    squatter = await squatter_with(gql, phone=phone)
    await gql.token_for_password(squatter.email, PASSWORD)
    assert (await add(gql, squatter.email, inn=inn))["organization"]["moderationStatus"] == "PENDING"
    owner_data, payload = await sign_up(gql, phone=phone)
    await confirm(gql, payload["registrationId"], await last_code(phone))
    await gql.token_for_password(phone, PASSWORD)
    assert (await add(gql, phone, inn=other_inn))["organization"]["moderationStatus"] == "APPROVED", "the proven one does"


async def test_an_e_mail_given_at_sign_up_is_proven_by_requesting_it_as_a_change(gql):
    data, payload = await sign_up(gql)
    await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    who = data["phone"]
    await gql.token_for_password(who, PASSWORD)
    me = (await gql.execute("{ me { email unprovenEmail unprovenPhone } }", as_user=who))["data"]["me"]
    assert me == {"email": None, "unprovenEmail": data["email"], "unprovenPhone": None}
    asked = (await gql.execute(REQUEST_EMAIL, {"e": data["email"]}, as_user=who))["data"]["requestEmailChange"]
    assert asked["userErrors"] == []
    done = (await gql.execute(CONFIRM_EMAIL, {"c": await last_code(data["email"])}, as_user=who))["data"]["confirmEmailChange"]
    assert done["userErrors"] == [] and done["user"]["email"] == data["email"]
    user = await User.get(phone=data["phone"])
    assert (user.email, user.unproven_email, user.email_verified) == (data["email"], None, True)
    assert (await login(gql, data["email"], PASSWORD))["accessToken"]


async def test_an_unproven_address_is_shown_to_its_own_user_only(gql):
    organization, team = await factories.create_team(Role.OWNER, Role.USER)
    member = team[Role.USER]
    given = factories.unique_email("given")
    await User.filter(id=member.id).update(unproven_email=given)
    query = "{ organizations { edges { node { members { edges { node { user { id unprovenEmail } } } } } } } }"
    await gql.token_for_password(team[Role.OWNER].email, factories.PASSWORD)
    owner = await gql.execute(query, as_user=team[Role.OWNER].email)
    seen = [edge["node"]["user"]["unprovenEmail"] for org in owner["data"]["organizations"]["edges"]
            for edge in org["node"]["members"]["edges"]]
    assert seen and given not in seen
    await gql.token_for_password(member.email, factories.PASSWORD)
    assert (await gql.execute("{ me { unprovenEmail } }", as_user=member.email))["data"]["me"]["unprovenEmail"] == given


async def test_the_migration_moves_addresses_never_proven_out_of_the_logins(app):
    """0013: before it, `email` held unproven addresses too, with `email_verified` false."""
    from importlib import import_module

    migration = import_module("models.migrations.0013_proven_addresses")
    proven, unproven = await factories.create_user(phone=factories.unique_phone()), await factories.create_user()
    phone = factories.unique_phone()
    await User.filter(id=unproven.id).update(email_verified=False, phone=phone, phone_verified=False)
    await migration.move_unproven_addresses(None, SimpleNamespace(client=connections.get("default")))
    moved = await User.get(id=unproven.id)
    assert (moved.email, moved.unproven_email, moved.phone, moved.unproven_phone) == (None, unproven.email, None, phone)
    kept = await User.get(id=proven.id)
    assert (kept.email, kept.phone, kept.unproven_email, kept.unproven_phone) == (proven.email, proven.phone, None, None)


def test_only_the_address_rules_read_the_unproven_columns():
    """Everything else finds people by `email` / `phone`, the proven ones: an unproven address can
    reach an account only through the modules that hold the rule."""
    allowed = {
        "models/identity.py", "models/migrations/0013_proven_addresses.py", "resolvers/identity/addresses.py",
        "resolvers/identity/sign_ups.py", "resolvers/organizations/invitations.py", "schema/identity.py",
    }
    readers = set()
    for folder in ("resolvers", "schema", "kabinet", "workers", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            if "unproven_" in source and any(
                "unproven_" in (node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else
                                getattr(node, "attr", "") or getattr(node, "arg", "") or "")
                for node in ast.walk(ast.parse(source))
            ):
                readers.add(str(path.relative_to(ROOT)))
    assert readers <= allowed, readers - allowed


async def test_two_accounts_proving_one_address_at_once_end_as_one_owner_and_one_conflict(gql):
    """Two people changing their e-mail to one address, each with their own code (one owner could
    only ever read one of the letters; the race is the database's): one has it, the other CONFLICT."""
    import asyncio

    address = factories.unique_email("contested")
    people = [await factories.create_user() for _ in range(2)]
    for person in people:
        await gql.token_for_password(person.email, factories.PASSWORD)
        asked = (await gql.execute(REQUEST_EMAIL, {"e": address}, as_user=person.email))["data"]["requestEmailChange"]
        assert asked["userErrors"] == []
        # the next code to this address may go at once (one a minute otherwise)
        await VerificationCode.filter(target=address).update(created_at=utcnow() - dt.timedelta(minutes=2))
    codes_sent = [m.body for m in await OutboxMessage.filter(recipient=address).order_by("created_at")]
    assert len(codes_sent) == 2
    import re

    answers = await asyncio.gather(*(
        gql.execute(CONFIRM_EMAIL, {"c": re.search(r"(\d{6})", body).group(1)}, as_user=person.email)
        for person, body in zip(people, codes_sent)
    ))
    outcomes = sorted(tuple(e["code"] for e in a["data"]["confirmEmailChange"]["userErrors"]) for a in answers)
    assert outcomes == [(), ("CONFLICT",)]
    assert await User.filter(email=address).count() == 1
