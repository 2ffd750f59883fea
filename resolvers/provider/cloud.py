"""The provider's cloud records (scope cloud:write): an organization's cloud subscriptions (several, each
known by its external id) and its databases, upserted by the provider's external id, from the provider's service manager."""

from __future__ import annotations

import uuid
from collections import Counter

from tortoise.functions import Count

from foundation.clock import utcnow
from models.cloud import CloudSubscription, Cluster, Database, Session
from models.updates import UpdateRun, UpdateRunStatus
from resolvers.cloud import clusters
from resolvers.cloud.subscriptions import limits_of, open_subscription, set_period
from resolvers.provider.catalog import ends_after_start
from resolvers.provider.records import (
    DELETED_FIELD, LineResult, Outcome, ProviderActor, Record, RecordRefused, date, deleted, each_record, entity, flag,
    integer, looked_up, organization_of, organizations_referenced, remove_owned, same_organization, save_changes, text,
)
from resolvers.cloud.sessions import LIVE, hold_admissions

# A subscription's limits: far beyond any tariff, and far enough under a GraphQL Int that the dashboard's
# limit (the extension added while it lasts, resolvers/cloud/subscriptions.py) is still one.
LIMIT_MAXIMUM = 1_000_000
SUBSCRIPTIONS_PER_ORGANIZATION = 50  # tariff subscriptions one organization may hold at once


@entity(
    "cloud_subscription", "cloud:write",
    ("external_id", "organization", "organization_inn", "tariff", "sessions_limit", "databases_limit", "starts_on", "ends_on",
     "deleted"),
    "One tariff subscription of an organization's cloud rental: tariff, limits and the current billing period "
    "(starts_on..ends_on). An organization may have several, each under its own external_id (the limits in force "
    "are their sum); a record under a new external_id adds one, except that a subscription kabinet holds without "
    "an external_id (seeded) takes the first one sent. Deleted (that rental ended): refused when it is the "
    "organization's last one while it has databases or live sessions.",
)
async def upsert_cloud_subscriptions(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    external_ids = [r.external_id for r in records if r.external_id]
    rows = await CloudSubscription.filter(external_id__in=external_ids) if external_ids else []
    rows += await CloudSubscription.filter(organization_id__in=list(set(referenced.values())))
    by_external = {row.external_id: row for row in rows if row.external_id}
    # Per organization: a subscription held without an external id (seeded), which the first new id takes.
    by_organization = {row.organization_id: row for row in rows if not row.external_id}
    counts = Counter(row.organization_id for row in {row.id: row for row in rows}.values())

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            ending = by_external.get(record.external_id)
            outcome = await _end_subscription(actor, by_external, by_organization, record)
            if ending is not None and outcome is not Outcome.UNCHANGED:
                counts[ending.organization_id] -= 1
            return outcome
        organization_id = organization_of(record, referenced)
        values = {
            "tariff": text(record, "tariff", of=CloudSubscription),
            "sessions_limit": integer(record, "sessions_limit", maximum=LIMIT_MAXIMUM, of=CloudSubscription),
            "databases_limit": integer(record, "databases_limit", maximum=LIMIT_MAXIMUM, of=CloudSubscription),
        }
        starts_on, ends_on = date(record, "starts_on"), date(record, "ends_on")
        ends_after_start(starts_on, ends_on)
        row = by_external.get(record.external_id)
        if row is not None:
            same_organization(row, organization_id, "cloud subscription", record)
            outcome = await save_changes(row, values)
            if await set_period(row, starts_on, ends_on):
                outcome = Outcome.UPDATED
        elif (row := by_organization.pop(organization_id, None)) is not None:
            # A subscription kabinet held without the provider's id (seeded): it takes this one.
            await save_changes(row, {**values, "external_id": record.external_id})
            await set_period(row, starts_on, ends_on)
            outcome = Outcome.UPDATED
        else:
            if counts[organization_id] >= SUBSCRIPTIONS_PER_ORGANIZATION:
                raise RecordRefused(
                    "external_id", f"The organization has {counts[organization_id]} cloud subscriptions, as many as "
                    "one may have: delete one first.",
                )
            row = await open_subscription(
                organization_id, starts_on=starts_on, ends_on=ends_on, external_id=record.external_id, **values
            )
            counts[organization_id] += 1
            outcome = Outcome.CREATED
        by_external[record.external_id] = row
        if outcome is not Outcome.UNCHANGED:
            actor.touched(organization_id, "cloud")
        return outcome

    return await each_record("cloud_subscription", records, apply_one)


async def _end_subscription(
    actor: ProviderActor, by_external: dict, by_organization: dict, record: Record
) -> Outcome:
    """A cloud subscription record deleted: that rental ended, the subscription removed (its extensions
    with it). The organization's last one is refused while it has databases or live sessions, which it
    is for; one of several goes (the limits in force shrink by its own)."""
    row = by_external.get(record.external_id)
    if row is None:
        return Outcome.UNCHANGED
    await hold_admissions(row.organization_id)  # no session admitted meanwhile
    if not await CloudSubscription.filter(organization_id=row.organization_id).exclude(id=row.id).exists():
        if databases := await Database.filter(organization_id=row.organization_id).count():
            raise RecordRefused(DELETED_FIELD, f"The organization has {databases} cloud database(s): delete them first.")
        if sessions := await Session.filter(organization_id=row.organization_id, status__in=LIVE).count():
            raise RecordRefused(DELETED_FIELD, f"The organization has {sessions} live session(s) in the cloud: end them first.")
    if by_organization.get(row.organization_id) is row:
        del by_organization[row.organization_id]
    return await remove_owned(actor, by_external, record, "cloud")


async def _databases_limits(organization_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many databases each organization may have now: the sum of its subscriptions' limits, each with
    its extension in force (as the dashboard shows it). An organization without a subscription is absent."""
    return {org: limits.databases for org, limits in (await limits_of(organization_ids, utcnow())).items()}


@entity(
    "database", "cloud:write",
    ("external_id", "organization", "organization_inn", "name", "configuration", "version", "is_typical", "size_mb",
     "cluster", "infobase", "deleted"),
    "A cloud database of an organization; a new one must fit in its cloud subscription's databases_limit "
    "(send the cloud_subscription first). `cluster` (a cluster kabinet knows, `kabinet cluster add`) and "
    "`infobase` (its name there) say where it runs, both or neither (null: on no known cluster); a record "
    "without either leaves that as it was. Deleted: removed with its update schedule, runs and access grants "
    "(refused while it has live sessions or an update is running).",
)
async def upsert_databases(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    organization_ids = list(set(referenced.values()))
    external_ids = [r.external_id for r in records if r.external_id]
    by_external = {row.external_id: row for row in await Database.filter(external_id__in=external_ids)} if external_ids else {}
    limits = await _databases_limits(organization_ids)
    cluster_names = looked_up(records, "cluster", Cluster, "name")
    clusters_by_name = {c.name: c for c in await Cluster.filter(name__in=cluster_names)} if cluster_names else {}
    counts = Counter({
        row["organization_id"]: row["n"]
        for row in await Database.filter(organization_id__in=organization_ids)
        .annotate(n=Count("id")).group_by("organization_id").values("organization_id", "n")
    })

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            row = by_external.get(record.external_id)
            outcome = await _remove_database(actor, by_external, record)
            if outcome is Outcome.DELETED:
                counts[row.organization_id] -= 1
            return outcome
        organization_id = organization_of(record, referenced)
        values = {
            "name": text(record, "name", of=Database), "configuration": text(record, "configuration", of=Database),
            "version": text(record, "version", of=Database), "is_typical": flag(record, "is_typical"),
            "size_mb": integer(record, "size_mb", required=False, of=Database) or 0,
        }
        row = by_external.get(record.external_id)
        if "cluster" in record.values or "infobase" in record.values:
            values.update(await _placement(record, clusters_by_name, row))
        if row is not None:
            same_organization(row, organization_id, "database", record)
            previous_cluster_id = row.cluster_id
            outcome = await save_changes(row, values)
            await clusters.left_cluster(actor, row, previous_cluster_id, utcnow())
        else:
            limit = limits.get(organization_id)
            if limit is None:
                raise RecordRefused("organization", "This organization has no cloud subscription: send its cloud_subscription first.")
            if counts[organization_id] >= limit:
                raise RecordRefused(
                    "organization",
                    f"The organization has {counts[organization_id]} database(s), as many as its cloud subscription's "
                    f"databases_limit ({limit}) allows: raise the limit first.",
                )
            by_external[record.external_id] = await Database.create(
                organization_id=organization_id, external_id=record.external_id, **values
            )
            counts[organization_id] += 1
            outcome = Outcome.CREATED
        if outcome is not Outcome.UNCHANGED:
            actor.touched(organization_id, "cloud")
        return outcome

    return await each_record("database", records, apply_one)


async def _placement(record: Record, clusters_by_name: dict[str, Cluster], row: Database | None) -> dict:
    """Where the record says the database runs: its cluster and infobase (both or neither), refused
    before anything is written when the cluster is unknown or the infobase another database's."""
    name = text(record, "cluster", required=False, max_length=100)
    infobase = text(record, "infobase", required=False, of=Database)
    cluster = clusters_by_name.get(name) if name else None
    if name and cluster is None:
        raise RecordRefused("cluster", f"No cluster is named {name!r}: the operator adds it first (kabinet cluster add).")
    if (cluster is None) != (infobase is None):
        raise RecordRefused("infobase" if cluster else "cluster", "A database on a cluster names its infobase there, and only then.")
    if cluster is not None:
        taken = Database.filter(cluster_id=cluster.id, infobase=infobase)
        if await (taken.exclude(id=row.id) if row is not None else taken).exists():
            raise RecordRefused("infobase", f"Another database is the infobase {infobase!r} of the cluster {name!r}.")
    return {"cluster_id": cluster.id if cluster else None, "infobase": infobase}


async def _remove_database(actor: ProviderActor, by_external: dict, record: Record) -> Outcome:
    """A database record deleted: refused while the database has live sessions or an update running
    (the cluster is using it); else removed, and with it (foreign keys) its update schedule and runs,
    access grants and invitations' grants; ended sessions and charges keep their rows, without it."""
    row = by_external.get(record.external_id)
    if row is None:
        return Outcome.UNCHANGED
    await hold_admissions(row.organization_id)  # no session admitted meanwhile
    if sessions := await Session.filter(database_id=row.id, status__in=LIVE).count():
        raise RecordRefused(DELETED_FIELD, f"The database has {sessions} live session(s): end them first.")
    if await UpdateRun.exists(database_id=row.id, status=UpdateRunStatus.RUNNING):
        raise RecordRefused(DELETED_FIELD, "An update of this database is running: delete it once the update has ended.")
    return await remove_owned(actor, by_external, record, "cloud")
