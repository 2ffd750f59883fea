"""The rule of a cloud subscription's extension, in one place: what one gives (+2 sessions, +8 databases,
7 days: `terms`), and whether the caller may take it now, and if not why and from when (`standing`).
`CloudSubscription.canExtend`, `extendBlockedReason`, `nextExtendAt` and `extensionTerms` read it, and
`extend_subscription` (resolvers/cloud/subscriptions.py) applies it: what is shown is what is done."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from models.cloud import CloudSubscription, SubscriptionExtension

SUBSCRIPTION_EXTENSION_SESSIONS = 2
SUBSCRIPTION_EXTENSION_DATABASES = 8
SUBSCRIPTION_EXTENSION_DAYS = 7


class ExtendBlockedReason(str, Enum):
    NOT_OWNER = "NOT_OWNER"
    ALREADY_EXTENDED = "ALREADY_EXTENDED"


BLOCKED_MESSAGES = {
    ExtendBlockedReason.NOT_OWNER: "Расширить подписку может только владелец абонента.",
    ExtendBlockedReason.ALREADY_EXTENDED: (
        "Подписка уже расширялась в этом периоде: расширение доступно не чаще одного раза за период. "
        "Для большего обратитесь к обслуживающей организации за дополнительными сеансами или другим тарифом."
    ),
}


@dataclass(frozen=True)
class ExtensionTerms:
    """What an extension taken at `starts_at` gives, and the limits while it lasts."""

    extra_sessions: int
    extra_databases: int
    days: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    sessions_limit: int  # the subscription's own limit plus the extension
    databases_limit: int


@dataclass(frozen=True)
class Standing:
    """Whether the caller may extend now; if not, why, and when the next period offers it again."""

    blocked: ExtendBlockedReason | None
    next_extend_at: dt.datetime | None  # the next period's start, when this period's extension is taken

    @property
    def can_extend(self) -> bool:
        return self.blocked is None

    @property
    def message(self) -> str | None:
        return BLOCKED_MESSAGES[self.blocked] if self.blocked else None


def terms(subscription: CloudSubscription, now: dt.datetime) -> ExtensionTerms:
    """What extending `subscription` at `now` gives: the one place its sizes and length are decided."""
    return ExtensionTerms(
        SUBSCRIPTION_EXTENSION_SESSIONS, SUBSCRIPTION_EXTENSION_DATABASES, SUBSCRIPTION_EXTENSION_DAYS,
        now, now + dt.timedelta(days=SUBSCRIPTION_EXTENSION_DAYS),
        subscription.sessions_limit + SUBSCRIPTION_EXTENSION_SESSIONS,
        subscription.databases_limit + SUBSCRIPTION_EXTENSION_DATABASES,
    )


def standing(
    may_extend: bool, period: tuple[dt.date, dt.date], extensions: list[SubscriptionExtension]
) -> Standing:
    """The rule: the owner (`may_extend`), once per subscription period (`period`, the current one;
    `extensions`, the subscription's). The next period starts the day after this one ends (UTC midnight,
    as periods are read against the UTC date)."""
    starts_on, ends_on = period
    taken = any(e.period_starts_on == starts_on for e in extensions)
    next_at = (
        dt.datetime.combine(ends_on + dt.timedelta(days=1), dt.time(), dt.timezone.utc) if taken else None
    )
    if not may_extend:
        return Standing(ExtendBlockedReason.NOT_OWNER, next_at)
    if taken:
        return Standing(ExtendBlockedReason.ALREADY_EXTENDED, next_at)
    return Standing(None, None)
