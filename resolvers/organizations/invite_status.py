"""How long an invitation lasts, and its status as of now: EXPIRED is never written, only read from its
`expires_at` (resolvers/organizations/invitations.py owns every status it writes)."""

from __future__ import annotations

import datetime as dt

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.organizations import Invite, InviteStatus

INVITE_DAYS = 7


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


def expiry(now: dt.datetime | None = None) -> dt.datetime:
    """When a link sent now stops working."""
    return (now or utcnow()) + dt.timedelta(days=INVITE_DAYS)
