"""Asking the provider for another tariff, more sessions or more databases (1cFresh: «обратиться к
обслуживающей организации… доп. сеансов… другой тариф»): a TARIFF_CHANGE support ticket by the
owner or an administrator, naming the subscription and what is asked. The provider answers it as any
ticket (resolvers/support/tickets.py) and changes the subscription through its own records."""

from __future__ import annotations

import uuid

from models.cloud import CloudSubscription
from models.identity import User
from models.tickets import SupportTicket, TicketKind
from resolvers.cloud.subscriptions import primary
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, not_found
from resolvers.common.gates import check_member_of, check_permission
from resolvers.common.permissions import Permission
from resolvers.common.validation import optional_text
from resolvers.support import tickets

MAX_EXTRA = 1_000  # sessions or databases asked for in one request
TARIFF_MAX = 100  # characters, as models.cloud.CloudSubscription.tariff holds
COMMENT_MAX = 2_000
SUBJECT = "Изменение тарифа облачной подписки"


def _extra(value: int | None, field: str) -> int:
    if value is None:
        return 0
    if not 0 <= value <= MAX_EXTRA:
        raise UserFacingError(ErrorCode.INVALID, f"Ask for 0 to {MAX_EXTRA} more.", field)
    return value


async def request_tariff_change(
    ctx: RequestContext, organization_id: uuid.UUID, subscription_id: uuid.UUID | None, *,
    extra_sessions: int | None = None, extra_databases: int | None = None, tariff: str | None = None,
    comment: str | None = None,
) -> SupportTicket:
    """The TARIFF_CHANGE ticket asking for `extra_sessions`, `extra_databases` and/or another `tariff`
    on a subscription (the main one when `subscription_id` is None). OWNER and ADMIN (FORBIDDEN
    otherwise); NOT_FOUND for an organization or subscription not theirs; INVALID when nothing is
    asked or a value is out of bounds; the tickets' daily limits apply."""
    viewer = ctx.require_viewer()
    await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, organization_id, Permission.REQUEST_TARIFF_CHANGE, "Only the owner or an administrator may ask for another tariff.")
    sessions, databases = _extra(extra_sessions, "extra_sessions"), _extra(extra_databases, "extra_databases")
    wanted_tariff = optional_text(tariff, "tariff", "The tariff", TARIFF_MAX)
    note = optional_text(comment, "comment", "The comment", COMMENT_MAX)
    if not (sessions or databases or wanted_tariff):
        raise UserFacingError(ErrorCode.INVALID, "Say what to change: more sessions, more databases or another tariff.", "tariff")
    query = CloudSubscription.filter(organization_id=organization_id)
    if subscription_id is not None:
        query = query.filter(id=subscription_id)
    subscription = primary(list(await query))
    if subscription is None:
        raise not_found("cloud subscription", "cloud_subscription_id")
    lines = [f"Подписка: «{subscription.tariff}» ({subscription.sessions_limit} сеансов, {subscription.databases_limit} баз)"]
    if sessions:
        lines.append(f"Дополнительные сеансы: +{sessions}")
    if databases:
        lines.append(f"Дополнительные базы: +{databases}")
    if wanted_tariff:
        lines.append(f"Другой тариф: {wanted_tariff}")
    if note:
        lines.append(f"Комментарий: {note}")
    return await tickets.open_ticket(
        ctx, organization_id, await User.get(id=viewer.user_id), SUBJECT, "\n".join(lines), kind=TicketKind.TARIFF_CHANGE,
    )
