"""Notification settings: what mails the viewer about an organization, and when (their own only)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from foundation.ids import NO_SUCH_ID, pk_of
from models.notifications import NotificationKind
from resolvers.common import notifications
from resolvers.common.notifications import SettingsView
from schema.enums import described_enum
from schema.errors import UserError, transactional

described_enum(NotificationKind, "An event that may mail someone (resolvers/common/notifications.py).", {
    "NEW_DOCUMENT": "An invoice, act or contract was published. OWNER, ADMIN, ACCOUNTANT.",
    "LOW_BALANCE": "The balance lasts 30, 7 or 1 days or less at the last 30 days' spending (a reminder). OWNER, ADMIN, ACCOUNTANT.",
    "CONTRACT_EXPIRING": "A contract ends in 30, 7 or 1 days (a reminder). OWNER, ADMIN, ACCOUNTANT.",
    "RELEASE_OUT": "A new release of a configuration of the organization's databases is out. OWNER, ADMIN.",
    "UPDATE_SCHEDULED": "A database's update got its time. OWNER, ADMIN.",
    "UPDATE_DONE": "A database was updated. OWNER, ADMIN.",
    "UPDATE_FAILED": "A database's update failed. OWNER, ADMIN.",
    "SESSION_TERMINATED_BY_ADMIN": "Someone else ended your session. Every role.",
    "INVITE_ACCEPTED": "Someone accepted an invitation to the organization. OWNER, ADMIN.",
    "TICKET_ANSWERED": "Support answered your ticket. Every role.",
    "MODERATION_WAITING": "An organization waits for moderation. The provider's staff only (settings without an organization).",
})


@strawberry.type(description=(
    "What mails you about one organization (or, for the provider's staff, about the provider's work), and when. "
    "Yours alone: nobody sees or changes another's. Never set: every kind your role receives on, any time of day, "
    "each letter at once, reminders on, Europe/Moscow."
))
class NotificationSettings:
    enabled_kinds: list[NotificationKind] = strawberry.field(description="The kinds that mail you.")
    available_kinds: list[NotificationKind] = strawberry.field(description="The kinds your role here may receive.")
    time_zone: str = strawberry.field(description="Your time zone (IANA name) for the send window.")
    window_start: str | None = strawberry.field(description="Letters go from this local time, HH:MM (null: any time).")
    window_end: str | None = strawberry.field(
        description="…until this local time, HH:MM, exclusive; before the start: a window over midnight. A letter "
        "outside the window waits for its next start."
    )
    digest_hours: int | None = strawberry.field(
        description="Delayed sending: the letters of this many hours (1–72) go as one digest (null: each at once)."
    )
    reminders: bool = strawberry.field(
        description="Reminders of a contract ending and of a low balance, 30, 7 and 1 days ahead (each once)."
    )
    customized: bool = strawberry.field(description="False while these are the defaults (you never changed them).")
    model: strawberry.Private[SettingsView]  # whose they are, for the type rule (resolvers/common/permissions.py)

    @classmethod
    def from_view(cls, view: SettingsView) -> NotificationSettings:
        start, end = notifications.window_text(view)
        return cls(
            enabled_kinds=view.enabled, available_kinds=list(view.available), time_zone=view.time_zone,
            window_start=start, window_end=end, digest_hours=view.digest_hours, reminders=view.reminders,
            customized=view.stored, model=view,
        )


@strawberry.input(description="Your new settings; a field left out keeps its value.")
class NotificationSettingsInput:
    enabled_kinds: list[NotificationKind] | None = strawberry.field(
        default=None, description="The kinds that should mail you (the others of `availableKinds` are turned off)."
    )
    time_zone: str | None = strawberry.field(default=None, description="IANA time zone, e.g. Europe/Moscow.")
    window_start: str | None = strawberry.field(default=None, description="HH:MM; give it with `windowEnd`.")
    window_end: str | None = strawberry.field(default=None, description="HH:MM, different from the start.")
    any_time: bool | None = strawberry.field(default=None, description="True: no send window (letters go at any time).")
    digest_hours: int | None = strawberry.field(default=None, description="1 to 72: one digest letter per this many hours.")
    no_digest: bool | None = strawberry.field(default=None, description="True: each letter at once, no digest.")
    reminders: bool | None = strawberry.field(default=None, description="Reminders of contracts ending and low balance.")


@strawberry.type(description="The result of `updateNotificationSettings`.")
class UpdateNotificationSettingsPayload:
    notification_settings: NotificationSettings | None = strawberry.field(default=None, description="Your settings now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


def _organization(organization_id: strawberry.ID | None):
    return None if organization_id is None else (pk_of(organization_id, "Organization") or NO_SUCH_ID)


_ORGANIZATION_ARGUMENT = strawberry.argument(
    description="The organization; null: the provider's staff's own settings (moderation waiting)."
)


@strawberry.type(description="Notification settings.")
class NotificationQueries:
    @strawberry.field(
        description="Your own notification settings in one of your organizations (every role); null for an "
        "organization that is not yours, or without one for anyone but the provider's staff."
    )
    async def notification_settings(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID | None, _ORGANIZATION_ARGUMENT] = None,
    ) -> NotificationSettings | None:
        view = await notifications.settings_of_viewer(info.context, _organization(organization_id))
        return NotificationSettings.from_view(view) if view else None


@strawberry.type(description="Notification settings.")
class NotificationMutations:
    @strawberry.mutation(
        description="Change your own notification settings in one of your organizations (every member may; "
        "nobody changes another's). NOT_FOUND for an organization that is not yours."
    )
    @transactional(UpdateNotificationSettingsPayload)
    async def update_notification_settings(
        self, info: strawberry.Info,
        input: Annotated[NotificationSettingsInput, strawberry.argument(description="What to change.")],
        organization_id: Annotated[strawberry.ID | None, _ORGANIZATION_ARGUMENT] = None,
    ) -> UpdateNotificationSettingsPayload:
        view = await notifications.update_settings(
            info.context, _organization(organization_id), enabled_kinds=input.enabled_kinds, time_zone=input.time_zone,
            window_start=input.window_start, window_end=input.window_end, digest_hours=input.digest_hours,
            reminders=input.reminders, clear_window=bool(input.any_time), clear_digest=bool(input.no_digest),
        )
        return UpdateNotificationSettingsPayload(notification_settings=NotificationSettings.from_view(view))
