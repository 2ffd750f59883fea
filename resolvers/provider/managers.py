"""The provider's personal managers of its customers (scope catalog:write): whom a customer calls
(«Контакты ваших персональных менеджеров»). Every member of the organization sees them."""

from __future__ import annotations

from collections import Counter

from models.requisites import Manager
from resolvers.common import validation
from resolvers.common.errors import UserFacingError
from resolvers.provider.records import (
    LineResult, Outcome, ProviderActor, Record, RecordRefused, deleted, each_record, entity, organization_of,
    organizations_referenced, put_owned, remove_owned, text,
)

MANAGERS_PER_ORGANIZATION = 20  # a customer has one or two; a bound keeps a runaway feed off every dashboard


def _checked(check, value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return check(value, field)
    except UserFacingError as error:
        raise RecordRefused(field, error.message) from None


@entity(
    "manager", "catalog:write",
    ("external_id", "organization", "organization_inn", "full_name", "title", "phone", "email", "deleted"),
    "A personal manager of an organization: full name, role (e.g. «Персональный менеджер», «Менеджер по "
    f"сопровождению»), phone (+7…) and e-mail, each optional but the name; at most {MANAGERS_PER_ORGANIZATION} "
    "per organization. Deleted: no longer shown.",
)
async def upsert_managers(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    by_external = {row.external_id: row for row in await Manager.filter(external_id__in=[r.external_id for r in records if r.external_id])}
    counts = Counter(await Manager.filter(organization_id__in=list(set(referenced.values()))).values_list("organization_id", flat=True))

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            row = by_external.get(record.external_id)
            outcome = await remove_owned(actor, by_external, record, "organization")
            if outcome is Outcome.DELETED:
                counts[row.organization_id] -= 1
            return outcome
        organization_id = organization_of(record, referenced)
        values = {
            "full_name": text(record, "full_name", of=Manager),
            "title": text(record, "title", required=False, of=Manager),
            "phone": _checked(validation.phone, text(record, "phone", required=False, max_length=30), "phone"),
            "email": _checked(validation.email, text(record, "email", required=False, max_length=254), "email"),
        }
        if record.external_id not in by_external and counts[organization_id] >= MANAGERS_PER_ORGANIZATION:
            raise RecordRefused("organization", f"This organization has {MANAGERS_PER_ORGANIZATION} managers already: delete one first.")
        outcome = await put_owned(actor, Manager, by_external, record, organization_id, values, "manager", "organization")
        if outcome is Outcome.CREATED:
            counts[organization_id] += 1
        return outcome

    return await each_record("manager", records, apply_one)
