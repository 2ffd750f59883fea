"""The staff desk: what went wrong on the provider's side, for its staff to act on. Messages the
outbox gave up on (and a retry of one), the provider's records that were refused, whatever the
door, and the monthly documents that wait (no supplier requisites). Staff only (resolvers/common/staff_rights.py): a staff member in GraphQL, or a service account with
the `staff` scope in the provider HTTP API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.expressions import Q

from foundation.clock import utcnow

from models.outbox import DeliveryStatus, OutboxMessage
from models.provider import RefusedRecord
from resolvers.common import outbox
from resolvers.billing import supplier as suppliers
from resolvers.billing.publication import due_periods, missing_documents
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.common.pagination import Ordering, Page, PageRequest, load_pages
from resolvers.common.staff_rights import Caller, staff_for_change, staff_for_reading

STAFF_ONLY = "Only the provider's staff see and retry failed deliveries and refused records, and see waiting documents."
NEWEST_FAILURES = Ordering(("-created_at",))  # failed_at is null for messages given up on before it was kept
NEWEST_REFUSALS = Ordering(("-created_at",))


async def delivery_failures(caller: Caller, page: PageRequest, *, with_total: bool = False) -> Page[OutboxMessage]:
    """The messages the outbox gave up on (FAILED), newest first."""
    await staff_for_reading(caller, STAFF_ONLY)
    pages = await load_pages(
        OutboxMessage, None, (), NEWEST_FAILURES, page, filters=Q(status=DeliveryStatus.FAILED), with_total=with_total,
    )
    return pages[None]


async def refused_records(
    caller: Caller, entity: str | None, page: PageRequest, *, source: str | None = None, with_total: bool = False
) -> Page[RefusedRecord]:
    """The provider's refused records, newest first; of one entity when `entity` is given, from one
    door when `source` is (an imported file's name, or "api")."""
    await staff_for_reading(caller, STAFF_ONLY)
    wanted = {name: value for name, value in (("entity", entity), ("source", source)) if value}
    for name, value in wanted.items():
        if len(value) > RefusedRecord._meta.fields_map[name].max_length or "\x00" in value:
            raise UserFacingError(ErrorCode.INVALID, f"No refused record has such a `{name}`.", name)
    pages = await load_pages(
        RefusedRecord, None, (), NEWEST_REFUSALS, page, filters=Q(**wanted) if wanted else None, with_total=with_total,
    )
    return pages[None]


async def retry_delivery(caller: Caller, message_id: uuid.UUID) -> OutboxMessage:
    """Send a FAILED message again (outbox.retry: PENDING, attempts from 0); in the provider's audit."""
    staff = await staff_for_change(caller, STAFF_ONLY)
    message = await outbox.retry(message_id)
    if message is None:
        exists = await OutboxMessage.exists(id=message_id)
        if not exists:
            raise UserFacingError(ErrorCode.NOT_FOUND, "No such message.", "delivery_id")
        raise UserFacingError(ErrorCode.CONFLICT, "Only a FAILED message is retried; this one is not.", "delivery_id")
    await staff.audit(
        "delivery.retry", f"{message.channel.value} {message.recipient}",
        {"messageId": str(message.id), "template": message.template, "lastError": message.last_error},
    )
    return message


@dataclass(frozen=True)
class WaitingDocuments:
    """The monthly invoices and acts due and not published, and why."""

    supplier_configured: bool
    documents: int  # invoices and acts
    organizations: int
    periods: list[str]  # the months they are of, "YYYY-MM"
    reason: str | None  # why they wait; None when nothing does

    @property
    def blocked(self) -> bool:
        return self.reason is not None


async def waiting_documents(caller: Caller) -> WaitingDocuments:
    """What the monthly publisher has not published of the months due today, and why: no supplier
    requisites (nothing is published until the operator configures them), or only its next pass
    (hourly). Two queries per month due (two at most), and one for the requisites."""
    await staff_for_reading(caller, STAFF_ONLY)
    configured = await suppliers.current() is not None
    documents, organizations, periods = 0, set(), []
    today = utcnow().date()
    for period in due_periods(today):
        missing = await missing_documents(period, today)
        if missing:
            periods.append(period)
            organizations |= set(missing)
            documents += sum(len(kinds) for kinds in missing.values())
    reason = None
    if documents:
        reason = suppliers.NOT_CONFIGURED if not configured else "Due: the monthly publisher's next pass (hourly) publishes them."
    return WaitingDocuments(configured, documents, len(organizations), periods, reason)
