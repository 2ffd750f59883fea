"""When an invitation has expired: the one rule every reader of an invite's status goes by.

A stored invite stays PENDING when its time runs out (nothing rewrites rows at midnight); it is
EXPIRED from `expires_at` on. The `Invite.status` field, the `invites(status:)` filter and the
mutations that refuse an expired link all decide it here, with the same clock.
"""

from __future__ import annotations

import datetime as dt

from tortoise.expressions import Q

from kabinet.clock import utcnow
from models.organizations import Invite, InviteStatus


def is_expired(invite: Invite, now: dt.datetime | None = None) -> bool:
    """A PENDING invitation whose link has stopped working."""
    return invite.status == InviteStatus.PENDING and invite.expires_at <= (now or utcnow())


def effective_status(invite: Invite, now: dt.datetime | None = None) -> InviteStatus:
    """The status a client sees: the stored one, EXPIRED for a PENDING invite past its time."""
    return InviteStatus.EXPIRED if is_expired(invite, now) else invite.status


def status_filter(status: InviteStatus | None, now: dt.datetime | None = None) -> Q | None:
    """The rows whose `effective_status` is `status` (None: all), as a query on both columns."""
    if status is None:
        return None
    now = now or utcnow()
    if status == InviteStatus.PENDING:
        return Q(status=InviteStatus.PENDING, expires_at__gt=now)
    if status == InviteStatus.EXPIRED:
        return Q(status=InviteStatus.EXPIRED) | Q(status=InviteStatus.PENDING, expires_at__lte=now)
    return Q(status=status)
