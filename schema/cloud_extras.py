"""Cloud subscription types beside the contract (issue 20): why an extension is not offered, and what one
would give before it is taken. Values of resolvers/cloud/subscription_terms.py, the rule extendSubscription applies."""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.cloud.subscription_terms import ExtendBlockedReason, ExtensionTerms
from schema.enums import described_enum

described_enum(ExtendBlockedReason, "Why the caller may not extend the cloud subscription now.", {
    "NOT_OWNER": "Only the organization's owner («владелец абонента») extends the subscription.",
    "ALREADY_EXTENDED": "The one extension of the current subscription period has been taken; `nextExtendAt` says "
    "when the next period offers it again.",
})


@strawberry.type(description="What an extension taken now would give, before `extendSubscription` is confirmed.")
class SubscriptionExtensionTerms:
    extra_sessions: int = strawberry.field(description="Sessions added to the limit.")
    extra_databases: int = strawberry.field(description="Databases added to the limit.")
    days: int = strawberry.field(description="How many days it lasts.")
    starts_at: dt.datetime = strawberry.field(description="When it would begin: now.")
    ends_at: dt.datetime = strawberry.field(description="When it would end.")
    sessions_limit: int = strawberry.field(description="The subscription's sessions limit while it lasts.")
    databases_limit: int = strawberry.field(description="The subscription's databases limit while it lasts.")

    @classmethod
    def of(cls, terms: ExtensionTerms) -> SubscriptionExtensionTerms:
        return cls(
            extra_sessions=terms.extra_sessions, extra_databases=terms.extra_databases, days=terms.days,
            starts_at=terms.starts_at, ends_at=terms.ends_at, sessions_limit=terms.sessions_limit,
            databases_limit=terms.databases_limit,
        )
