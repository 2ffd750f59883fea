"""An invitation's letter or SMS: the link, and what the invitee is told (a new account, an existing
one, a member the owner created with a password). Sent by resolvers/organizations/invitations.py."""

from __future__ import annotations



from models.cloud import Database
from models.identity import User
from models.organizations import Invite, Organization
from resolvers import messages
from resolvers.identity import codes
from resolvers.common import outbox
from foundation.settings import Settings
from resolvers.organizations.invite_status import INVITE_DAYS

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def invite_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url or DEFAULT_PUBLIC_URL}/invite?token={token}"


async def send_invite(
    settings: Settings, organization: Organization, invite: Invite, token: str, databases: list[Database],
    phone_field: str, inviter: User | None, password: str | None = None,
) -> None:
    """The letter and the SMS. The letter's kind says whether the e-mail itself has an account (only
    its reader learns it); nothing depends on the phone's account, and the inviter sees neither.
    With an e-mail and a phone, the link goes by e-mail and the phone is told (where SMS can go);
    by phone only where SMS are not configured, the invitation is UNAVAILABLE (on `phone_field`).
    The letter names the inviter (a member inviting; none for the provider's staff: "Вас приглашают").
    `password` (a member the owner created, one address): the letter or SMS carries the login and
    it, unless the address already has an account (then it is the ordinary invitation)."""
    if invite.phone and not invite.email:
        outbox.require_sms(settings, phone_field)
    link = invite_link(settings, token)
    inviter_name = inviter.full_name if inviter is not None and not inviter.is_staff else None
    if password and invite.email and not await User.exists(email=invite.email, is_active=True):
        await outbox.email(
            invite.email, "member_created", inviter=messages.inviter_phrase(inviter_name),
            organization_name=organization.name, organization_code=organization.code,
            role=messages.ROLE_NAMES[invite.role],
            databases=messages.databases_list(invite.role, [(d.name, d.configuration) for d in databases]),
            login=invite.email, password=password, link=link, days=INVITE_DAYS,
            expires_at=messages.moscow_time(invite.expires_at),
        )
        return
    if password and invite.phone and not invite.email and not await User.exists(phone=invite.phone, is_active=True):
        await outbox.sms(
            invite.phone, "member_created_sms", organization_name=organization.name,
            organization_code=organization.code, login=invite.phone, password=password, link=link,
        )
        return
    if invite.email:
        # An unconfirmed sign-up is not an account yet.
        has_account = await User.exists(email=invite.email, is_active=True)
        await outbox.email(
            invite.email, "invite_existing_user" if has_account else "invite_new_user",
            inviter=messages.inviter_phrase(inviter_name),
            organization_name=organization.name, organization_code=organization.code,
            role=messages.ROLE_NAMES[invite.role],
            databases=messages.databases_list(invite.role, [(d.name, d.configuration) for d in databases]),
            link=link, days=INVITE_DAYS, expires_at=messages.moscow_time(invite.expires_at),
        )
    if invite.phone and invite.email and settings.sms_available:
        # The link goes by e-mail only: following it proves the e-mail (`_proven_by_link`), which
        # it could not if the same link had also gone to a phone someone else may hold.
        await outbox.sms(
            invite.phone, "invite_sms_letter_sent", organization_name=organization.name,
            organization_code=organization.code, role=messages.ROLE_NAMES[invite.role], email=codes.mask(invite.email),
        )
    elif invite.phone:
        await outbox.sms(
            invite.phone, "invite_sms", organization_name=organization.name, organization_code=organization.code,
            role=messages.ROLE_NAMES[invite.role], link=link,
        )
