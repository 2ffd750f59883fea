"""Confirmation codes: issued, hashed with a key derived from the secret, expiring, attempts limited, single use.

A short code sent by e-mail or SMS to confirm an action (sign-up, password reset, e-mail change,
removing a member) is one `VerificationCode` row, and every flow follows the same rules:
- 6 random digits, stored only as an HMAC keyed with a key derived from the secret and bound to
  the row's id: a leaked table does not give the codes away by trying a million of them;
- valid `lifetime` (15 minutes), EXPIRED afterwards;
- every wrong answer counts (an atomic UPDATE, so concurrent guesses are all counted, and counted
  although the mutation fails); after `attempts` (5) wrong ones the code is dead: RATE_LIMITED,
  the right code included;
- single use: claimed by a conditional UPDATE, so two concurrent uses end as one success;
- where `sending_limits` apply: at most one code a minute and 5 an hour per address and purpose,
  and 20 an hour requested from one client address whatever the purpose and the address (so one
  source cannot pump SMS to many numbers); RATE_LIMITED beyond. The figures are settings
  (`code_resend_seconds`, `codes_per_address_hour`, `codes_per_client_hour`). Every code counts,
  a code that went nowhere (recovery of an unknown login, a sign-up at a taken address) included,
  so the limits answer the same whether or not an address has an account.

What genuinely differs between flows is a `CodeRules` value: the purpose, the lifetime, the field
path the errors name, how one gets a new code (for the messages), what a used code answers, and
whether the sending limits apply. Looking the row up and delivering the code stay with each flow.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

from tortoise.expressions import F

from resolvers.identity.tokens import derived_key
from foundation.clock import utcnow
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from models.identity import CodePurpose, User, VerificationCode
from models.locks import one_at_a_time

# Purposes whose rules have sending limits (filled as the rules are made): the per-client count covers them all.
LIMITED_PURPOSES: set[CodePurpose] = set()
# The sending limits count the codes created within this window (resolvers/common/housekeeping.py keeps them that long).
SENDING_WINDOW = timedelta(hours=1)
CODE_PATTERN = re.compile(r"^\d{6}$")
WRONG_CODE = "This code is not right"


@dataclass(frozen=True)
class CodeRules:
    """How one flow's codes behave where flows differ; everything else is this module's."""

    purpose: CodePurpose
    lifetime: timedelta = timedelta(minutes=15)
    attempts: int = 5  # wrong answers a code survives; the next attempt is RATE_LIMITED
    field: str = "code"  # the domain field errors about the code name
    renew: str = "request a new one"  # how to get a new code, as the messages tell it
    # A code already used: INVALID on `spent_field` with `spent_message`; None: answered like a wrong code
    # (where the flow finds "the latest code", a used one is no different from no code at all).
    spent_field: str | None = None
    spent_message: str | None = None
    sending_limits: bool = True  # the sending limits per address and per client address (settings)

    def __post_init__(self) -> None:
        if self.sending_limits:
            LIMITED_PURPOSES.add(self.purpose)

    @property
    def minutes(self) -> int:
        return int(self.lifetime.total_seconds() // 60)


def code_hash(ctx: RequestContext, code_id: uuid.UUID, code: str) -> str:
    """Keyed, and bound to the row: a leaked table does not give the 6 digits away by brute force."""
    return hmac.new(derived_key(ctx.settings, "verification-code"), f"{code_id}:{code}".encode(), sha256).hexdigest()


def mask(address: str) -> str:
    """`+7 *** ***-**-67` or `o***@example.com`: enough to recognise one's own, not to learn another's."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"+7 *** ***-**-{address[-2:]}"


# ---------------------------------------------------------------- issuing


async def require_may_send(ctx: RequestContext, rules: CodeRules, target: str) -> None:
    """RATE_LIMITED when one more code for `target` would go beyond a sending limit (per address, per
    client address). Call it first in the mutation, before any row lock and before the work a
    refusal would waste: it serializes the requests it counts until the transaction ends."""
    if not rules.sending_limits:
        return
    client = [f"codes-client:{ctx.client_address}"] if ctx.client_address else []
    # Counted one after another (the client address, then the address), not all passing the same count.
    await one_at_a_time(VerificationCode, [*client, f"codes-to:{target}"])
    settings, now = ctx.settings, utcnow()
    hour_ago = now - SENDING_WINDOW
    recent = await VerificationCode.filter(
        purpose=rules.purpose, target=target, created_at__gt=hour_ago
    ).order_by("-created_at").limit(settings.codes_per_address_hour).values_list("created_at", flat=True)
    if len(recent) >= settings.codes_per_address_hour or (
        recent and recent[0] > now - timedelta(seconds=settings.code_resend_seconds)
    ):
        raise UserFacingError(
            ErrorCode.RATE_LIMITED,
            "A code was sent to this address a moment ago (or too many in the last hour): wait and try again.",
        )
    if ctx.client_address and await VerificationCode.filter(
        client_address=ctx.client_address, purpose__in=sorted(LIMITED_PURPOSES), created_at__gt=hour_ago
    ).count() >= settings.codes_per_client_hour:
        raise UserFacingError(
            ErrorCode.RATE_LIMITED, "Too many codes were asked for from your network in the last hour: try again later."
        )


async def issue(
    ctx: RequestContext, rules: CodeRules, target: str, *, user: User | None, payload: dict[str, Any] | None = None
) -> tuple[VerificationCode, str]:
    """Store a new code for `target` (the address it goes to): (the row, the plain code to deliver).

    Only the hash is stored; the caller sends the code and forgets it. Where a flow checks "the
    latest code" (`latest`), this one supersedes the earlier ones.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    code_id = uuid.uuid4()
    row = await VerificationCode.create(
        id=code_id, purpose=rules.purpose, user=user, target=target, code_hash=code_hash(ctx, code_id, code),
        expires_at=utcnow() + rules.lifetime, payload=payload or {}, client_address=ctx.client_address,
    )
    return row, code


# ---------------------------------------------------------------- checking


async def latest(rules: CodeRules, **where: Any) -> VerificationCode | None:
    """The newest code of the purpose matching `where`: only it counts (a new one replaces the old)."""
    return await VerificationCode.filter(purpose=rules.purpose, **where).order_by("-created_at", "-id").first()


def _spent(rules: CodeRules) -> UserFacingError:
    if rules.spent_field is None:
        return UserFacingError(ErrorCode.INVALID, f"{WRONG_CODE}: check it, or {rules.renew}.", rules.field)
    return UserFacingError(ErrorCode.INVALID, rules.spent_message or "This code was already used.", rules.spent_field)


def _wrong_answer(rules: CodeRules, code: str, attempts_before: int) -> str:
    what = WRONG_CODE if CODE_PATTERN.match(code) else "A code is 6 digits"
    left = max(rules.attempts - attempts_before - 1, 0)
    if left:
        return f"{what} ({left} attempt(s) left): check it, or {rules.renew}."
    return f"{what}, and that was the last attempt: {rules.renew}."


async def check(ctx: RequestContext, rules: CodeRules, row: VerificationCode | None, code: str | None) -> None:
    """Accept the code once (marking it used), or raise why not. A wrong answer is counted although
    the mutation fails; the caller's later refusals roll the use back (the code stays good)."""
    now: datetime = utcnow()
    code = (code or "").strip()
    field = rules.field
    if row is None:
        raise UserFacingError(ErrorCode.INVALID, f"{WRONG_CODE}: check it, or {rules.renew}.", field)
    if row.used_at is not None:
        raise _spent(rules)
    if row.attempts >= rules.attempts:
        raise UserFacingError(
            ErrorCode.RATE_LIMITED, f"Too many wrong codes: this one no longer works, {rules.renew}.", field
        )
    if row.expires_at <= now:
        raise UserFacingError(ErrorCode.EXPIRED, f"This code has expired: {rules.renew}.", field)
    if not (CODE_PATTERN.match(code) and hmac.compare_digest(row.code_hash, code_hash(ctx, row.id, code))):
        # Atomic: concurrent wrong answers are each counted.
        await VerificationCode.filter(id=row.id).update(attempts=F("attempts") + 1)
        raise UserFacingError(ErrorCode.INVALID, _wrong_answer(rules, code, row.attempts), field, keep_changes=True)
    # The conditional UPDATE makes two concurrent uses of one code end as one success.
    claimed = await VerificationCode.filter(id=row.id, used_at=None, attempts__lt=rules.attempts).update(used_at=now)
    if not claimed:
        raise _spent(rules)
