"""The provider's catalog records (scope catalog:write): organizations with their requisites, known
contacts, contracts, products and configuration releases, each upserted by the provider's external id.

An organization the provider sends is its customer, so it is APPROVED. It binds to an organization
of the same INN only when that one is approved already (staff approved a claim, or a known contact
made it): a claim nobody proved stands beside the provider's organization and receives nothing
(resolvers/organizations/moderation.py). A release goes through the same publication as a staff-published one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from models.cloud import Database
from models.organizations import KnownContact, ModerationStatus, Organization, OrganizationKind
from models.products import Contract, ContractKind, Product, ProductCategory
from models.updates import Release
from resolvers.organizations import moderation
from resolvers.updates import releases
from resolvers.common import validation
from resolvers.common.errors import UserFacingError
from resolvers.organizations import requisites
from resolvers.organizations import requisites_validation
from resolvers.provider.records import (
    LineResult, Outcome, ProviderActor, Record, RecordRefused, choice, date, deleted, each_record, entity, integer, looked_up,
    moment, never_deleted, organization_of, organizations_referenced, put_owned, remove_owned, save_changes, text,
)
from resolvers.organizations.subscriber_codes import new_organization

T = TypeVar("T")


def checked(check: Callable[..., T], value: Any, field: str, **options: Any) -> T:
    """A resolvers/common/validation.py rule applied to a record's field: its refusal names the field."""
    try:
        return check(value, field, **options)
    except UserFacingError as error:
        raise RecordRefused(field, error.message) from None


def _digits(record: Record, name: str, lengths: tuple[int, ...], what: str) -> str | None:
    value = text(record, name, required=False, max_length=20)
    if value is not None and not (value.isdigit() and len(value) in lengths):
        raise RecordRefused(name, f"{what} is {' or '.join(map(str, lengths))} digits.")
    return value


# ---------------------------------------------------------------------------------------- organization


def _organization_values(record: Record) -> dict[str, Any]:
    """The columns a record sets, checked; the kind follows from the INN's length when not given
    (10 digits: a legal entity; 12: a sole proprietor when an OGRNIP is given, else an individual)."""
    raw_inn = text(record, "inn", max_length=20)
    kind = choice(record, "kind", OrganizationKind, required=False)
    ogrn = _digits(record, "ogrn", (13, 15), "An OGRN (13) or OGRNIP (15)")
    legal_entity: bool | None = kind == OrganizationKind.LEGAL_ENTITY
    if kind is None:
        kind = OrganizationKind.LEGAL_ENTITY if len(raw_inn) == 10 else (
            OrganizationKind.SOLE_PROPRIETOR if ogrn and len(ogrn) == 15 else OrganizationKind.INDIVIDUAL
        )
        # Neither 10 digits nor 12: the INN is wrong, not the kind guessed from it.
        legal_entity = {10: True, 12: False}.get(len(raw_inn))
    inn = checked(validation.inn, raw_inn, "inn", legal_entity=legal_entity)
    kpp = text(record, "kpp", required=False, max_length=20)
    kpp = checked(validation.kpp, kpp, "kpp") if kpp else None  # as a customer's (its 5th and 6th may be letters)
    if kpp and kind != OrganizationKind.LEGAL_ENTITY:
        raise RecordRefused("kpp", "Only a legal entity has a KPP.")
    if ogrn:
        if kind == OrganizationKind.LEGAL_ENTITY and len(ogrn) != 13:
            raise RecordRefused("ogrn", "A legal entity's OGRN is 13 digits.")
        if kind == OrganizationKind.SOLE_PROPRIETOR and len(ogrn) != 15:
            raise RecordRefused("ogrn", "A sole proprietor's OGRNIP is 15 digits.")
        if kind == OrganizationKind.INDIVIDUAL:
            raise RecordRefused("ogrn", "An individual has no OGRN.")
        if not validation.ogrn_is_valid(ogrn):
            raise RecordRefused("ogrn", f"«{ogrn}» is not a valid OGRN: check the digits.")
    return {
        "inn": inn, "kind": kind, "name": text(record, "name", of=Organization), "kpp": kpp, "ogrn": ogrn,
        "legal_address": text(record, "legal_address", required=False, of=Organization),
        **_more_requisites(record),
    }


def _more_requisites(record: Record) -> dict[str, Any]:
    """The full name, postal address and bank block, checked as a customer's are
    (resolvers/organizations/requisites_validation.py); absent is none, as for every column of the record."""
    values = {name: text(record, name, required=False, of=Organization) for name in ("legal_name", "postal_address", "bank_name")}
    for name in ("bic", "correspondent_account", "settlement_account"):
        values[name] = text(record, name, required=False, max_length=40)
    try:
        bank = requisites_validation.bank(values["bic"], values["correspondent_account"], values["settlement_account"], values["bank_name"])
    except UserFacingError as error:
        raise RecordRefused(error.field, error.message) from None
    return {**values, **bank}


@entity(
    "organization", "catalog:write",
    ("external_id", "inn", "kpp", "ogrn", "name", "kind", "legal_address", "legal_name", "postal_address",
     "bank_name", "bic", "correspondent_account", "settlement_account", "deleted"),
    "A subscriber by INN, with its requisites; APPROVED, as the provider's customer. An organization "
    "approved under the same INN (by staff, or a known contact) is bound to the external_id; a claim "
    "awaiting moderation is not: it stays beside it for staff. Never deleted by a record. The requisites "
    "it carries are the provider's from then on: a customer's change of them waits as a request that a "
    "record carrying the same values confirms and one changing them otherwise supersedes.",
)
async def upsert_organizations(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    external_ids = [r.external_id for r in records if r.external_id]
    inns = looked_up(records, "inn", Organization, "inn")
    rows = await Organization.filter(
        Q(external_id__in=external_ids) | Q(inn__in=inns, moderation_status=ModerationStatus.APPROVED)
    ).select_for_update()
    by_external = {row.external_id: row for row in rows if row.external_id}
    by_inn = {row.inn: row for row in rows if row.moderation_status == ModerationStatus.APPROVED}  # the INN's customer
    arrived: set[str] = set()  # INNs the provider sent anew: their waiting claims are looked at
    pending = await requisites.pending_changes([row.id for row in rows])  # customers' requests the records may decide

    async def apply_one(record: Record) -> Outcome:
        never_deleted(
            record, "An organization is not deleted by a record: its ledger, documents and members stay. The "
            "provider's staff reject a claim in moderation; a customer who leaves keeps its history.",
        )
        values = _organization_values(record)
        external_id = record.external_id
        row = by_external.get(external_id)
        holder = by_inn.get(values["inn"])
        if row is not None:
            if holder is not None and holder.id != row.id:
                raise RecordRefused("inn", f"INN {values['inn']} is another organization's ({_named(holder)}).")
            previous_inn = row.inn
            before = requisites.values_of(row)
            try:
                async with in_transaction():  # a savepoint: an approved claim of the new INN may have arrived meanwhile
                    outcome = await save_changes(row, values)
            except IntegrityError:
                raise RecordRefused("inn", f"INN {values['inn']} was approved for another organization a moment ago.") from None
            by_inn.pop(previous_inn, None)
            if previous_inn != row.inn:
                arrived.add(row.inn)
            if await requisites.provider_sent(actor, row, before, pending.get(row.id)):
                outcome = Outcome.UPDATED
        elif holder is not None:
            if holder.external_id is not None:
                raise RecordRefused("inn", f"INN {values['inn']} is already the organization {_named(holder)}.")
            row = holder
            await save_changes(row, {**values, "external_id": external_id})  # approved before: bound to the provider's id
            await requisites.provider_sent(actor, row, None, pending.get(row.id))  # the customer's entries give way to the provider's
            outcome = Outcome.UPDATED
        else:
            row = await new_organization(
                values.pop("name"), values.pop("inn"), values.pop("kind"), ModerationStatus.APPROVED,
                external_id=external_id, **values,
            )
            if row is None:  # a claim of this INN was approved a moment ago: bind it next time
                raise RecordRefused("inn", f"INN {record.values.get('inn')} was approved a moment ago: send the record again.")
            await requisites.provider_sent(actor, row, None, None)  # the requisites' owner says whose they are
            arrived.add(row.inn)
            outcome = Outcome.CREATED
        by_external[external_id], by_inn[row.inn] = row, row
        if outcome is not Outcome.UNCHANGED:
            actor.touched(row.id, "organization")
        return outcome

    results = await each_record("organization", records, apply_one)
    # The known-contact rule, whichever came first: a claim waiting beside the organization just sent
    # whose owner the provider already lists as a contact of the INN becomes its owner.
    await moderation.approve_known_claims(actor, arrived, _provider_details(actor, "provider records: the organization"))
    return results


def _provider_details(actor: ProviderActor, source: str) -> dict[str, str]:
    return {"by": f"{actor.kind.lower()}:{actor.name}", "source": source}


def _named(row: Organization) -> str:
    return f"external_id {row.external_id}" if row.external_id else f"«{row.name}», added by a customer"


# ---------------------------------------------------------------------------------------- known contact


@entity(
    "known_contact", "catalog:write", ("external_id", "inn", "phone", "deleted"),
    "A phone the provider knows as a taxpayer's contact: a user with that verified phone who adds the "
    "INN is approved at once, and a claim of that INN waiting for moderation whose owner has it is approved.",
)
async def upsert_known_contacts(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    # The provider's own knowledge, not shown on any dashboard: no event of its own (an approval it
    # brings is the organization's change).
    external_ids = [r.external_id for r in records if r.external_id]
    inns = looked_up(records, "inn", KnownContact, "inn")
    rows = await KnownContact.filter(Q(external_id__in=external_ids) | Q(inn__in=inns))
    by_external = {row.external_id: row for row in rows if row.external_id}
    by_pair = {(row.inn, row.phone): row for row in rows}
    known: set[str] = set()  # INNs with a contact created or changed: their waiting claims are looked at

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            row = by_external.get(record.external_id)
            if row is not None:
                by_pair.pop((row.inn, row.phone), None)
            return await remove_owned(None, by_external, record, None)
        inn = checked(validation.inn, text(record, "inn", max_length=20), "inn")
        phone = checked(validation.phone, text(record, "phone", max_length=30), "phone")
        external_id = record.external_id
        row = by_external.get(external_id)
        same = by_pair.get((inn, phone))
        if row is not None:
            if row.inn != inn:  # what it proved for one taxpayer it does not prove for another
                raise RecordRefused("inn", f"This known contact is of INN {row.inn}; it does not move: delete it and send a new one.")
            if same is not None and same.id != row.id:
                raise RecordRefused("phone", f"This INN and phone are already known (external_id {same.external_id}).")
            previous = (row.inn, row.phone)
            outcome = await save_changes(row, {"inn": inn, "phone": phone})
            by_pair.pop(previous, None)
            by_pair[(inn, phone)] = row
        elif same is not None:
            if same.external_id is not None:
                raise RecordRefused("phone", f"This INN and phone are already known (external_id {same.external_id}).")
            same.external_id = external_id
            await same.save(update_fields=["external_id"])
            by_external[external_id] = same
            outcome = Outcome.UPDATED
        else:
            by_external[external_id] = by_pair[(inn, phone)] = await KnownContact.create(inn=inn, phone=phone, external_id=external_id)
            outcome = Outcome.CREATED
        if outcome is not Outcome.UNCHANGED:
            known.add(inn)
        return outcome

    results = await each_record("known_contact", records, apply_one)
    await moderation.approve_known_claims(actor, known, _provider_details(actor, "provider records: a known contact"))
    return results


# ---------------------------------------------------------------------------------------- contract


def ends_after_start(starts_on: dt.date | None, ends_on: dt.date | None, field: str = "ends_on") -> None:
    if starts_on and ends_on and ends_on < starts_on:
        raise RecordRefused(field, "Ends before it starts.")


@entity(
    "contract", "catalog:write",
    ("external_id", "organization", "organization_inn", "kind", "number", "starts_on", "ends_on", "deleted"),
    "A contract of an organization (ITS, PTS, CLOUD_RENTAL, SERVICE); `organization` is the "
    "organization's external_id (or give `organization_inn`). Deleted: its products keep going, without it.",
)
async def upsert_contracts(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    by_external = {row.external_id: row for row in await Contract.filter(external_id__in=[r.external_id for r in records if r.external_id])}

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            return await remove_owned(actor, by_external, record, "products")  # its products' `contract` → none
        organization_id = organization_of(record, referenced)
        values = {
            "kind": choice(record, "kind", ContractKind), "number": text(record, "number", of=Contract),
            "starts_on": date(record, "starts_on"), "ends_on": date(record, "ends_on", required=False),
        }
        ends_after_start(values["starts_on"], values["ends_on"])
        return await put_owned(actor, Contract, by_external, record, organization_id, values, "contract", "products")

    return await each_record("contract", records, apply_one)


# ---------------------------------------------------------------------------------------- product


@entity(
    "product", "catalog:write",
    ("external_id", "organization", "organization_inn", "name", "category", "registration_number", "workplaces",
     "updates_available_until", "contract", "deleted"),
    "What an organization bought; `contract` is the external_id of its contract (of the same organization).",
)
async def upsert_products(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    contract_ids = looked_up(records, "contract", Contract, "external_id")
    contracts = {
        row["external_id"]: row for row in await Contract.filter(external_id__in=contract_ids).values("id", "external_id", "organization_id")
    }
    by_external = {row.external_id: row for row in await Product.filter(external_id__in=[r.external_id for r in records if r.external_id])}

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            return await remove_owned(actor, by_external, record, "products")
        organization_id = organization_of(record, referenced)
        contract_reference = text(record, "contract", required=False, max_length=200)
        contract_id = None
        if contract_reference is not None:
            contract = contracts.get(contract_reference)
            if contract is None:
                raise RecordRefused("contract", f"No contract with external_id {contract_reference!r}: send the contract first.")
            if contract["organization_id"] != organization_id:
                raise RecordRefused("contract", f"Contract {contract_reference!r} is another organization's.")
            contract_id = contract["id"]
        values = {
            "name": text(record, "name", of=Product), "category": choice(record, "category", ProductCategory),
            "registration_number": text(record, "registration_number", required=False, of=Product),
            "workplaces": integer(record, "workplaces", required=False, of=Product),
            "updates_available_until": date(record, "updates_available_until", required=False),
            "contract_id": contract_id,
        }
        return await put_owned(actor, Product, by_external, record, organization_id, values, "product", "products")

    return await each_record("product", records, apply_one)


# ---------------------------------------------------------------------------------------- release

FUTURE_TOLERANCE = dt.timedelta(minutes=5)  # clocks of the provider's systems and ours differ a little


@entity(
    "release", "catalog:write", ("external_id", "configuration", "version", "published_at", "deleted"),
    "A configuration release, published as staff would publish it: ON_RELEASE databases on older "
    "versions get update runs. `published_at` defaults to now. Deleted: recalled as staff would recall it.",
)
async def upsert_releases(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    external_ids = [r.external_id for r in records if r.external_id]
    configurations = looked_up(records, "configuration", Release, "configuration")
    rows = await Release.filter(Q(external_id__in=external_ids) | Q(configuration__in=configurations))
    by_external = {row.external_id: row for row in rows if row.external_id}
    by_version = {(row.configuration, row.version): row for row in rows}

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            return await _recall_release(actor, by_external.get(record.external_id))
        configuration = text(record, "configuration", of=Release)
        version = checked(lambda value, field: releases.check_version(value), text(record, "version", of=Release), "version")
        published_at = moment(record, "published_at", actor.zone, required=False)
        if published_at is not None and published_at > utcnow() + FUTURE_TOLERANCE:
            raise RecordRefused("published_at", "A release is published when it is sent, not in the future.")
        row = by_external.get(record.external_id)
        same = by_version.get((configuration, version))
        if row is not None:
            if (row.configuration, row.version) != (configuration, version):
                field = "version" if row.configuration == configuration else "configuration"
                raise RecordRefused(field, f"This release is {row.version} of «{row.configuration}»: a published release does not change.")
            return await save_changes(row, {"published_at": published_at}) if published_at else Outcome.UNCHANGED
        if same is not None:
            if same.external_id is not None:
                raise RecordRefused("version", f"Release {version} of «{configuration}» is external_id {same.external_id}.")
            same.external_id = record.external_id  # published by staff before: bound to the provider's id
            await same.save(update_fields=["external_id"])
            by_external[record.external_id] = same
            return Outcome.UPDATED
        by_external[record.external_id] = by_version[(configuration, version)] = await releases.publish(
            actor, configuration, version, published_at=published_at, external_id=record.external_id
        )
        await _touch_configuration(actor, configuration)
        return Outcome.CREATED

    return await each_record("release", records, apply_one)


async def _recall_release(actor: ProviderActor, release: Release | None) -> Outcome:
    """A release record deleted: the release recalled (resolvers/updates/releases.py), its planned runs
    cancelled; UNCHANGED when there is none or it was recalled already."""
    if release is None or await releases.recall(actor, release) is None:
        return Outcome.UNCHANGED
    await _touch_configuration(actor, release.configuration)
    return Outcome.DELETED


async def _touch_configuration(actor: ProviderActor, configuration: str) -> None:
    """The organizations whose databases run `configuration`: their update plans follow its releases."""
    for organization_id in await Database.filter(configuration=configuration).distinct().values_list("organization_id", flat=True):
        actor.touched(organization_id, "releases")
