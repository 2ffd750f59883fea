"""Reminders: a contract ending or a balance running out, told 30, 7 and 1 days ahead until dealt with
(once per threshold, organization and user: what was sent is remembered), through `notify` and each
recipient's settings (resolvers/common/notifications.py). The reminders worker (workers/reminders.py)
runs them every hour."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from tortoise.functions import Sum

from models.billing import BalanceTransaction, TransactionKind
from models.notifications import NotificationKind, NotificationReminder
from models.organizations import Organization
from models.products import Contract
from resolvers.common import outbox
from resolvers.common.context import Actor
from resolvers.common.notifications import K, Letter, notify, recipients

REMINDER_DAYS = (30, 7, 1)


def _threshold(days_left: int) -> int | None:
    """The smallest of 30/7/1 that `days_left` has reached (None: more than 30 days)."""
    reached = [days for days in REMINDER_DAYS if days_left <= days]
    return min(reached) if reached else None


async def _remind(
    actor: Actor, organization_id: uuid.UUID, kind: NotificationKind, subject: str, threshold: int, letter: Letter,
) -> list[uuid.UUID]:
    """Mail the reminder to whoever has not had this threshold (or a smaller one) of this subject and
    wants reminders; remember it, with the larger thresholds, so none of them mails again."""
    people = [(user, view) for user, view in await recipients(organization_id, kind) if view.reminders]
    if not people:
        return []
    had = set(await NotificationReminder.filter(
        organization_id=organization_id, kind=kind.value, subject=subject, threshold__lte=threshold,
        user_id__in=[user.id for user, _ in people],
    ).values_list("user_id", flat=True))
    due = [user.id for user, _ in people if user.id not in had]
    if not due:
        return []
    sent = await notify(actor, organization_id, kind, letter, users=due)
    known = set(await NotificationReminder.filter(
        organization_id=organization_id, kind=kind.value, subject=subject, user_id__in=due,
    ).values_list("user_id", "threshold"))
    await NotificationReminder.bulk_create([
        NotificationReminder(organization_id=organization_id, user_id=user_id, kind=kind.value, subject=subject, threshold=days)
        for user_id in due for days in REMINDER_DAYS if days >= threshold and (user_id, days) not in known
    ])
    return sent


async def remind_contracts(actor: Actor, today: dt.date) -> int:
    """Contracts ending within 30 days (not yet ended): a reminder at 30, 7 and 1 days. How many letters."""
    count = 0
    contracts = await Contract.filter(ends_on__gte=today, ends_on__lte=today + dt.timedelta(days=max(REMINDER_DAYS))).select_related("organization")
    for contract in contracts:
        days_left = (contract.ends_on - today).days
        threshold = _threshold(days_left)
        if threshold is None:
            continue
        organization = contract.organization

        async def letter(to: str, contract: Contract = contract, organization: Organization = organization, days_left: int = days_left) -> Any:
            return await outbox.email(
                to, "contract_expiring", organization_name=organization.name, contract_number=contract.number,
                ends_on=contract.ends_on.strftime("%d.%m.%Y"), days=days_left,
            )

        subject = f"contract:{contract.id}:{contract.ends_on.isoformat()}"
        count += len(await _remind(actor, organization.id, K.CONTRACT_EXPIRING, subject, threshold, letter))
    return count


async def runways(now: dt.datetime) -> dict[uuid.UUID, tuple[Decimal, int]]:
    """Organizations that spent in the last 30 days: (balance, days it lasts at that spending)."""
    since = now - dt.timedelta(days=30)
    spent = await BalanceTransaction.filter(kind=TransactionKind.CHARGE, occurred_at__gte=since).group_by(
        "organization_id"
    ).annotate(total=Sum("amount")).values_list("organization_id", "total")
    found = {}
    for organization_id, total in spent:
        daily = abs(Decimal(total or 0)) / 30
        if daily <= 0:
            continue
        last = await BalanceTransaction.filter(organization_id=organization_id).order_by("-seq").first()
        balance = last.balance_after if last else Decimal("0.00")
        found[organization_id] = (balance, max(0, int(balance / daily)) if balance > 0 else 0)
    return found


async def remind_balances(actor: Actor, now: dt.datetime) -> int:
    """The balance lasting 30, 7 or 1 days or less at the last 30 days' spending: a reminder each;
    once it lasts longer again (topped up), what was sent is forgotten. How many letters."""
    count = 0
    runway = await runways(now)
    for organization_id, (balance, days) in runway.items():
        threshold = _threshold(days)
        if threshold is None:
            continue
        organization = await Organization.get(id=organization_id)

        async def letter(to: str, organization: Organization = organization, balance: Decimal = balance, days: int = days) -> Any:
            return await outbox.email(
                to, "low_balance", organization_name=organization.name, balance=f"{balance:.2f}", days=days,
            )

        count += len(await _remind(actor, organization_id, K.LOW_BALANCE, "balance", threshold, letter))
    reminded = set(await NotificationReminder.filter(kind=K.LOW_BALANCE.value).distinct().values_list("organization_id", flat=True))
    dealt_with = [org for org in reminded if org not in runway or _threshold(runway[org][1]) is None]
    if dealt_with:
        await NotificationReminder.filter(kind=K.LOW_BALANCE.value, organization_id__in=dealt_with).delete()
    return count
