"""An organization's requisites and the provider's managers of it.

Whose the requisites are decides what a customer's change does. The ones the provider's records
sent (`requisites_source` PROVIDER) are the provider's accounting's: a change by the customer is
not applied but kept as a request (`request_requisites_change`, the one function that creates one),
until the provider's next record confirms it (it carries the proposed values: CONFIRMED) or
supersedes it (it changes them to others: SUPERSEDED; a record re-sent unchanged leaves it
pending, the provider has not acted yet). A newer request supersedes the one pending. What a
customer enters for an organization the provider never sent is theirs (CUSTOMER), applied at once;
the provider's first record of it makes them the provider's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.identity import User
from models.organizations import Organization
from models.requisites import Manager, RequisitesChange, RequisitesChangeStatus, RequisitesSource
from resolvers.common import audit
from resolvers.organizations import requisites_validation
from resolvers.common.gates import check_member_of, related_one, check_permission
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from events.log import DATA
from resolvers.common.permissions import Permission
from models.tickets import TicketKind
from resolvers.support import tickets

FIELDS = requisites_validation.FIELDS
# How the ticket asking the provider names each requisite.
LABELS = {
    "legal_name": "Полное наименование", "kpp": "КПП", "ogrn": "ОГРН", "legal_address": "Юридический адрес",
    "postal_address": "Почтовый адрес", "bank_name": "Банк", "bic": "БИК", "correspondent_account": "Корр. счёт",
    "settlement_account": "Расчётный счёт",
}
# What the ticket is told when the provider's record decides the request.
SETTLED = {
    RequisitesChangeStatus.CONFIRMED: "Реквизиты изменены: запись поставщика подтвердила запрос.",
    RequisitesChangeStatus.SUPERSEDED: "Поставщик прислал другие реквизиты: запрос не применён.",
}
CHANGES_PER_DAY = 10  # changes and requests of one organization's requisites in a UTC day: far above a real need
_ACTIONS = ("requisites.change", "requisites.request")


def values_of(organization: Organization) -> dict[str, str | None]:
    return {name: getattr(organization, name) for name in FIELDS}


# ---------------------------------------------------------------------------------------- reading


async def requisites_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    """The requisites are the organization's own columns: no statement."""
    return list(orgs)


async def pending_change_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    """Each organization's PENDING request (at most one), in one statement."""
    rows = await RequisitesChange.filter(
        organization_id__in=[o.id for o in orgs], status=RequisitesChangeStatus.PENDING
    ).order_by("created_at")
    by_org = {row.organization_id: row for row in rows}  # the newest wins, should two ever be
    return [by_org.get(o.id) for o in orgs]


async def requester_of(ctx: RequestContext, changes: list[RequisitesChange], args: dict[str, Any]) -> list:
    return await related_one(User, changes, "requested_by_id")


async def managers_of(ctx: RequestContext, orgs: list[Organization], args: dict[str, Any]) -> list:
    rows = await Manager.filter(organization_id__in=[o.id for o in orgs]).order_by("full_name", "id")
    by_org: dict[uuid.UUID, list[Manager]] = {o.id: [] for o in orgs}
    for row in rows:
        by_org[row.organization_id].append(row)
    return [by_org[o.id] for o in orgs]


# ---------------------------------------------------------------------------------------- the customer's change


async def change_requisites(
    ctx: RequestContext, organization_id: uuid.UUID, changes: Mapping[str, str | None]
) -> tuple[Organization, RequisitesChange | None]:
    """An OWNER's, ADMIN's or ACCOUNTANT's change: applied when the requisites are the customer's,
    a pending request when they are the provider's. `changes` holds the fields given (None: not
    given; blank: cleared). Answers the organization and the request made, if one was."""
    await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, organization_id, Permission.REQUISITES, "Only the owner, an administrator or the accountant changes the requisites.")
    organization = await Organization.filter(id=organization_id).select_for_update().get()
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise UserFacingError(ErrorCode.INVALID, f"«{unknown[0]}» is not a requisite.", unknown[0])
    current = values_of(organization)
    proposed = requisites_validation.requisites(
        {**current, **{name: value for name, value in changes.items() if value is not None}}, organization.kind
    )
    if organization.requisites_source == RequisitesSource.PROVIDER:
        pending = (await pending_change_of(ctx, [organization], {}))[0]
        if proposed == current and pending is None:
            return organization, None  # nothing to ask for
        await _within_daily_limit(organization_id)
        return organization, await request_requisites_change(ctx, organization, proposed)
    if proposed == current:
        return organization, None
    await _within_daily_limit(organization_id)
    await _apply(organization, proposed, RequisitesSource.CUSTOMER, None)
    await audit.record(
        ctx, "requisites.change", organization_id=organization_id, object_type="Organization", object_id=organization_id,
        details={"changed": [name for name in FIELDS if proposed[name] != current[name]]},
    )
    await ctx.record_event(organization_id, DATA, "CHANGED", {"areas": ["organization"]})
    return organization, None


async def request_requisites_change(
    actor: Actor, organization: Organization, proposed: dict[str, str | None], *, requested_by: uuid.UUID | None = None
) -> RequisitesChange:
    """The one way a request to change the provider's requisites is made: a PENDING row of the
    proposed values (checked by the caller; an earlier pending one SUPERSEDED), in the audit log, the
    dashboards told. `requested_by`: whose it is when the actor is not them (the demo data set)."""
    now = utcnow()
    earlier = await RequisitesChange.filter(organization_id=organization.id, status=RequisitesChangeStatus.PENDING)
    for superseded in earlier:
        superseded.status, superseded.decided_at = RequisitesChangeStatus.SUPERSEDED, now
        await superseded.save(update_fields=["status", "decided_at"])
        await _settle_ticket(actor, superseded, "Запрос заменён новым запросом изменения реквизитов.")
    author_id = requested_by or (actor.viewer.user_id if actor.viewer else None)
    current = values_of(organization)
    ticket = None
    author = await User.get_or_none(id=author_id) if author_id else None
    if author is not None:  # the request reaches the provider as a ticket, answered like any other
        lines = [f"{LABELS[name]}: {current[name] or '—'} → {proposed[name] or '—'}" for name in FIELDS if proposed[name] != current[name]]
        ticket = await tickets.open_ticket(
            actor, organization.id, author, "Изменение реквизитов",
            "Прошу изменить реквизиты организации:\n" + "\n".join(lines or ["(без изменений)"]),
            kind=TicketKind.REQUISITES_CHANGE,
        )
    change = await RequisitesChange.create(
        organization_id=organization.id, proposed=proposed, requested_by_id=author_id, ticket=ticket,
    )
    await audit.record(
        actor, "requisites.request", organization_id=organization.id, object_type="Organization", object_id=organization.id,
        details={"request": str(change.id), "changed": [name for name in FIELDS if proposed[name] != current[name]]},
        actor_id=requested_by,
    )
    await actor.record_event(organization.id, DATA, "CHANGED", {"areas": ["organization"]})
    return change


async def _settle_ticket(actor: Actor, change: RequisitesChange, note: str) -> None:
    if change.ticket_id is not None:
        await tickets.settle(actor, change.ticket_id, note)


async def _within_daily_limit(organization_id: uuid.UUID) -> None:
    start = dt.datetime.combine(utcnow().date(), dt.time(), dt.timezone.utc)
    done = await AuditEntry.filter(organization_id=organization_id, action__in=_ACTIONS, created_at__gte=start).count()
    if done >= CHANGES_PER_DAY:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"The requisites were changed or a change requested {CHANGES_PER_DAY} times today: try again tomorrow.",
        )


async def _apply(organization: Organization, values: Mapping[str, str | None], source: RequisitesSource, confirmed_at: dt.datetime | None) -> None:
    for name in FIELDS:
        setattr(organization, name, values[name])
    organization.requisites_source, organization.requisites_confirmed_at = source, confirmed_at
    await organization.save(update_fields=[*FIELDS, "requisites_source", "requisites_confirmed_at"])


# ---------------------------------------------------------------------------------------- the provider's record


async def pending_changes(organization_ids: list[uuid.UUID]) -> dict[uuid.UUID, RequisitesChange]:
    """The PENDING requests of a batch's organizations, in one statement (the provider's records)."""
    rows = await RequisitesChange.filter(organization_id__in=organization_ids, status=RequisitesChangeStatus.PENDING).order_by("created_at")
    return {row.organization_id: row for row in rows}


async def provider_sent(
    actor: Actor, organization: Organization, before: Mapping[str, str | None] | None, pending: RequisitesChange | None
) -> bool:
    """After the provider's record of an organization was saved (`before`: its requisites until then,
    None for one just created or bound): they are the provider's, confirmed now when they changed; a
    pending request is CONFIRMED when the record carries its values, SUPERSEDED when it changed them
    to others. True when this changed anything."""
    now = utcnow()
    after = values_of(organization)
    changed = before is None or after != before or organization.requisites_source != RequisitesSource.PROVIDER
    touched = False
    if pending is not None and pending.status == RequisitesChangeStatus.PENDING:
        if after == {name: pending.proposed.get(name) for name in FIELDS}:
            pending.status, changed = RequisitesChangeStatus.CONFIRMED, True
        elif changed:
            pending.status = RequisitesChangeStatus.SUPERSEDED
        if pending.status != RequisitesChangeStatus.PENDING:
            pending.decided_at = now
            await pending.save(update_fields=["status", "decided_at"])
            await _settle_ticket(actor, pending, SETTLED[pending.status])
            touched = True
    if changed:
        organization.requisites_source, organization.requisites_confirmed_at = RequisitesSource.PROVIDER, now
        await organization.save(update_fields=["requisites_source", "requisites_confirmed_at"])
        touched = True
    return touched
