"""Retention: what only grows is deleted once it is surely dead, so a deployment keeps itself for years.

One function per kind of row; each deletes in batches of `batch` rows (one statement each, committed
at once: a pass never holds one huge transaction) and returns how many rows it deleted. "Dead" is
judged against the code that reads each kind:

- a refresh token stays while it could still be presented (until its expiry: a used one then still
  revokes its login, resolvers/identity/logins.py `refresh`) and, once revoked, while the ended sign-ins
  (resolvers/identity/sign_ins.py EndedLogins) may still read its `revoked_at`: an access token's lifetime,
  the minute of margin, and how late a revocation may show (resolvers/identity/tokens.py). Then `refresh_token_retention_days` more;
- a verification code stays while it could still be checked (until its expiry; a used one too:
  deleting it would make an older code of the flow "the latest", resolvers/identity/codes.py `latest`), while
  the sending limits count it (`SENDING_WINDOW`), and while its sign-up waits for confirmation (the
  resend reads where the last code went). Then `verification_code_retention_days` more;
- a login throttle row is dead when it says what no row says: no failure counted and no lock in
  force; a client address's when its window has ended (the next claim starts a new one). Claims
  recreate a row deleted under them (resolvers/identity/throttle.py). A row counting wrong passwords (1–4,
  "in a row", without a time) is never dead: it has no time to age by;
- a delivered (SENT) message, `sent_message_retention_days` after it was sent; PENDING and FAILED
  never (staff see and retry failures);
- a refused provider record, `refused_record_retention_days` after it was refused.

Not pruned here, on purpose: the event log (subscriptions resume from it), sessions, audit entries,
provider actions, billing.

Several processes may run a pass at once: each batch re-checks its condition in the DELETE, and a
row already deleted by another process is simply not counted again. Deleting dead rows is idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.expressions import Q, Subquery
from tortoise.models import Model

from foundation.clock import utcnow
from foundation.settings import Settings
from models.identity import ClientThrottle, LoginThrottle, RefreshToken, User, VerificationCode
from models.outbox import DeliveryStatus, OutboxMessage
from models.program_tokens import ProgramToken, TokenKind
from models.provider import RefusedRecord
from resolvers.identity import api_tokens
from resolvers.identity.codes import SENDING_WINDOW
from resolvers.identity.tokens import REVOCATION_LATE_SECONDS, ended_login_memory_seconds

BATCH = 1000
# A lock or a window ended this long ago is gone on every host, whatever a host's clock says.
THROTTLE_MARGIN = timedelta(hours=1)


async def delete_in_batches(model: type[Model], dead: Q, batch: int = BATCH) -> int:
    """Delete the rows matching `dead`, `batch` at a time (each batch its own statement): how many."""
    pk = model._meta.pk_attr
    deleted = 0
    while True:
        ids = await model.filter(dead).order_by(pk).limit(batch).values_list(pk, flat=True)
        if not ids:
            return deleted
        # the condition again: a row that came alive between the two statements stays
        deleted += await model.filter(dead, **{f"{pk}__in": list(ids)}).delete()
        if len(ids) < batch:
            return deleted


def revocation_needed(settings: Settings) -> timedelta:
    """How long a revoked refresh token's `revoked_at` may still be read by the ended sign-ins."""
    return timedelta(seconds=ended_login_memory_seconds(settings) + REVOCATION_LATE_SECONDS)


async def prune_refresh_tokens(settings: Settings, batch: int = BATCH) -> int:
    """Tokens expired or revoked before the cutoff, and not revoked after it."""
    keep = max(timedelta(days=settings.refresh_token_retention_days), revocation_needed(settings))
    cutoff = utcnow() - keep
    dead = (Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)) & (Q(revoked_at=None) | Q(revoked_at__lt=cutoff))
    return await delete_in_batches(RefreshToken, dead, batch)


async def prune_verification_codes(settings: Settings, batch: int = BATCH) -> int:
    """Codes expired before the cutoff (and out of the sending limits' window), but not those of a
    sign-up still waiting for confirmation (an inactive user's)."""
    now = utcnow()
    keep = max(timedelta(days=settings.verification_code_retention_days), SENDING_WINDOW)
    inactive_users = Subquery(User.filter(is_active=False).values("id"))
    waiting = Q(user_id__in=inactive_users)
    dead = Q(expires_at__lt=now - keep, created_at__lt=now - keep) & (Q(user_id=None) | ~waiting)
    return await delete_in_batches(VerificationCode, dead, batch)


async def prune_login_throttles(settings: Settings, batch: int = BATCH) -> int:
    """Rows with no failure counted and no lock in force: as if there were no row."""
    dead = Q(failures=0) & (Q(locked_until=None) | Q(locked_until__lt=utcnow() - THROTTLE_MARGIN))
    return await delete_in_batches(LoginThrottle, dead, batch)


async def prune_client_throttles(settings: Settings, batch: int = BATCH) -> int:
    """Rows whose window has ended (or never started): the next claim starts a new one anyway."""
    dead = Q(window_ends=None) | Q(window_ends__lt=utcnow() - THROTTLE_MARGIN)
    return await delete_in_batches(ClientThrottle, dead, batch)


async def prune_sent_messages(settings: Settings, batch: int = BATCH) -> int:
    """Delivered messages sent before the cutoff; never a PENDING or FAILED one."""
    cutoff = _days_ago(settings.sent_message_retention_days)
    return await delete_in_batches(OutboxMessage, Q(status=DeliveryStatus.SENT, sent_at__lt=cutoff), batch)


async def prune_refused_records(settings: Settings, batch: int = BATCH) -> int:
    """Refused provider records older than the retention."""
    cutoff = _days_ago(settings.refused_record_retention_days)
    return await delete_in_batches(RefusedRecord, Q(created_at__lt=cutoff), batch)


async def prune_api_tokens(settings: Settings, batch: int = BATCH) -> int:
    """Integrators' API tokens revoked or expired over `api_tokens.KEPT_AFTER_END` ago (and late enough
    that every process has heard of a revocation): their names are free again, the listing shorter."""
    cutoff = utcnow() - max(api_tokens.KEPT_AFTER_END, revocation_needed(settings))
    dead = Q(kind=TokenKind.INTEGRATOR) & (Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff))
    return await delete_in_batches(ProgramToken, dead, batch)


PRUNERS = {
    "refresh_tokens": prune_refresh_tokens,
    "verification_codes": prune_verification_codes,
    "login_throttles": prune_login_throttles,
    "client_throttles": prune_client_throttles,
    "sent_messages": prune_sent_messages,
    "refused_records": prune_refused_records,
    "api_tokens": prune_api_tokens,
}


async def run_pass(settings: Settings, batch: int = BATCH) -> dict[str, int]:
    """One pass of every kind, in order: {kind: rows deleted}."""
    return {kind: await prune(settings, batch) for kind, prune in PRUNERS.items()}


def _days_ago(days: int) -> datetime:
    return utcnow() - timedelta(days=days)
