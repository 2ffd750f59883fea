"""The fields the statement path knows, by GraphQL type, each said in SQL over its row: the
resolvers' own filters and orders, and the rules worked out per object said beside their Python form."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from foundation import clock
from foundation.ids import pk_of
from models.billing import BalanceTransaction, Document as DocumentModel, DocumentKind, PrepaidService
from models.cloud import ClientKind, Database as DatabaseModel, Session as SessionModel, SessionStatus
from models.organizations import ModerationStatus, Organization as OrganizationModel, OrganizationKind, Role
from models.products import Contract as ContractModel, ContractKind, Product as ProductModel, ProductCategory
from models.updates import PLANNED_RUN_STATUSES, UpdateMode, UpdateRun, UpdateSchedule
from resolvers.billing.products import PRODUCT_ORDER, product_filters
from resolvers.billing.reads import CURRENCY, DOCUMENT_ORDER, PREPAID_ORDER, TRANSACTION_ORDER, document_filters
from resolvers.cloud.reads import DATABASE_ORDER, SESSION_ORDER, session_filters
from resolvers.organizations.reads import ORGANIZATION_ORDER
from resolvers.updates.releases import DEFAULT_TIMEZONE
from resolvers.updates.schedules import next_monthly_run_sql
from schema.products import contract_status_sql
from schema.sql_json.statement import (
    CannotCompile, Compiler, FieldSql, connection, date, datetime, decimal, enum_name, global_id, leaf, node_type,
    order, text, to_one,
)


def _viewer_role(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    viewer = c.param(c.ctx.viewer.user_id) + "::uuid"
    return f'(SELECT {enum_name(Role)("m.role")} FROM "membership" m WHERE m."organization_id" = {alias}."id" AND m."user_id" = {viewer})'


def _legal_name(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    return f'COALESCE(NULLIF({alias}."legal_name", \'\'), {alias}."name")'


def _contract_status(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    return contract_status_sql(f'{alias}."ends_on"', c.today())


def _balance(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    """resolvers/billing/reads.py balance_of: the last ledger entry's balance (0.00 with none), the prepaid services."""
    balance_type = node_type(field_def)
    transactions = BalanceTransaction._meta.db_table

    def part(name: str, part_def: Any, sub: list) -> str:
        if name == "amount":
            return (
                f'COALESCE((SELECT "balance_after"::text FROM "{transactions}" WHERE "organization_id" = {alias}."id" '
                f"ORDER BY {order(BalanceTransaction, TRANSACTION_ORDER)} LIMIT 1), '0.00')"
            )
        if name == "currency":
            return text(CURRENCY)
        if name == "prepaidServices":
            row = c.alias()
            service = c.object(node_type(part_def), sub, row)
            return (
                f'COALESCE((SELECT json_agg({service} ORDER BY {order(PrepaidService, PREPAID_ORDER, row)}) '
                f'FROM "{PrepaidService._meta.db_table}" {row} WHERE {row}."organization_id" = {alias}."id"), \'[]\'::json)'
            )
        raise CannotCompile(f"Balance.{name}")

    return c.build(balance_type, c.subfields(balance_type, details), part)


def _remaining(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    return f'({alias}."total" - {alias}."used")::text'


@functools.lru_cache(maxsize=2)
def _zones_with_summer_time_named_alone(year: int) -> tuple[str, ...]:
    """Zones a schedule may be set to (`validation.timezone`: zoneinfo's) named without an area ("CET",
    "EET", "MET", "WET", "EST5EDT"…) whose offset changes within the year and the next: summer time."""
    moments = [dt.datetime(y, m, 15, tzinfo=dt.timezone.utc) for y in (year, year + 1) for m in range(1, 13)]

    def offsets(name: str) -> int:
        return len({moment.astimezone(ZoneInfo(name)).utcoffset() for moment in moments})

    return tuple(sorted(name for name in available_timezones() if "/" not in name and offsets(name) > 1))


def _zone_as_zoneinfo_reads_it(zone: str) -> str:
    """The schedule's zone for AT TIME ZONE: PostgreSQL looks a name up among its abbreviations before
    the zone names, and reads "CET", "EET", "MET" or "WET" as a fixed offset where zoneinfo (the
    executor) reads the IANA zone with its summer time. Such a zone fails the statement on purpose (a
    failed cast), and the executor answers (schema/sql_json `answer`); a fixed zone ("UTC", "EST")
    means the same to both and is kept."""
    named_alone = _zones_with_summer_time_named_alone(clock.today().year)
    if not named_alone:
        return zone
    return (
        f"(CASE WHEN {zone} IN ({', '.join(text(name) for name in named_alone)}) "
        f"AND lower({zone}) IN (SELECT lower(abbrev) FROM pg_timezone_abbrevs) "
        f"THEN ('executor: an abbreviation to PostgreSQL: ' || {zone})::int::text ELSE {zone} END)"
    )


def _update_schedule(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    """resolvers/updates/schedules.py schedule_of: the schedule row, or DISABLED in the default zone."""
    schedule_type = node_type(field_def)
    s = c.alias()
    mode = f'{s}."mode"'

    def part(name: str, part_def: Any, sub: list) -> str:
        if name == "mode":
            return f"COALESCE({enum_name(UpdateMode)(mode)}, {text(UpdateMode.DISABLED.name)})"
        if name == "runAt":
            return datetime(f'{s}."run_at"')
        if name == "dayOfMonth":
            return f'{s}."day_of_month"'
        if name == "timeOfDay":
            return f'{s}."time_of_day"'
        if name == "timezone":
            return f'COALESCE({s}."timezone", {text(DEFAULT_TIMEZONE)})'
        if name == "hasCredentials":
            return f'({s}."credentials_encrypted" IS NOT NULL)'
        if name == "nextRunAt":
            return datetime(next_run(s))
        raise CannotCompile(f"UpdateSchedule.{name}")

    def next_run(s: str) -> str:
        """next_run_of: the earliest planned run, else ONCE's time still ahead, else MONTHLY's next."""
        statuses = ", ".join(text(status.value) for status in PLANNED_RUN_STATUSES)
        planned = f'(SELECT min("scheduled_for") FROM "{UpdateRun._meta.db_table}" WHERE "database_id" = {alias}."id" AND "status" IN ({statuses}))'
        now = c.now()
        zone = _zone_as_zoneinfo_reads_it(f'{s}."timezone"')
        monthly = next_monthly_run_sql(f'{s}."day_of_month"', f'{s}."time_of_day"', zone, now)
        by_rule = (
            f"CASE WHEN {mode} = {text(UpdateMode.ONCE.value)} THEN CASE WHEN {s}.\"run_at\" > {now} THEN {s}.\"run_at\" END "
            f"WHEN {mode} = {text(UpdateMode.MONTHLY.value)} AND {s}.\"day_of_month\" <> 0 AND {s}.\"time_of_day\" <> '' "
            f"THEN {monthly} END"
        )
        return f"COALESCE({planned}, {by_rule})"

    built = c.build(schedule_type, c.subfields(schedule_type, details), part)
    return f'(SELECT {built} FROM (SELECT 1) one LEFT JOIN "{UpdateSchedule._meta.db_table}" {s} ON {s}."database_id" = {alias}."id")'


def _organization_by_id(c: Compiler, alias: str, field_def: Any, details: list) -> str:
    organization_id = pk_of(c.arguments(field_def, details).get("id"), "Organization")
    if organization_id not in c.organizations:
        raise CannotCompile("not one of the viewer's organizations")  # null, as the resolver answers it
    row = c.alias()
    table = OrganizationModel._meta.db_table
    c.sources[row] = f'(SELECT * FROM "{table}" WHERE "id" = {c.param(organization_id)}::uuid)'
    c.single_rows.add(row)
    node = c.object(node_type(field_def), details, row)
    return f"(SELECT {node} FROM {c.sources[row]} {row}{c.joined(row)})"


FIELDS: dict[str, dict[str, FieldSql]] = {
    "Query": {
        "organizations": connection(OrganizationModel, ORGANIZATION_ORDER, None),
        "organization": _organization_by_id,
    },
    "Organization": {
        "id": leaf(OrganizationModel, "id", global_id("Organization")),
        "name": leaf(OrganizationModel, "name"),
        "inn": leaf(OrganizationModel, "inn"),
        "code": leaf(OrganizationModel, "code"),
        "kind": leaf(OrganizationModel, "kind", enum_name(OrganizationKind)),
        "moderationStatus": leaf(OrganizationModel, "moderation_status", enum_name(ModerationStatus)),
        "viewerRole": _viewer_role,
        "legalName": _legal_name,
        "products": connection(ProductModel, PRODUCT_ORDER, "organization_id", product_filters),
        "documents": connection(DocumentModel, DOCUMENT_ORDER, "organization_id", document_filters),
        "databases": connection(DatabaseModel, DATABASE_ORDER, "organization_id"),
        "sessions": connection(SessionModel, SESSION_ORDER, "organization_id", session_filters, ids={"database_id": "Database"}),
        "balance": _balance,
    },
    "Product": {
        "id": leaf(ProductModel, "id", global_id("Product")),
        "name": leaf(ProductModel, "name"),
        "category": leaf(ProductModel, "category", enum_name(ProductCategory)),
        "registrationNumber": leaf(ProductModel, "registration_number"),
        "workplaces": leaf(ProductModel, "workplaces"),
        "updatesAvailableUntil": leaf(ProductModel, "updates_available_until", date),
        "contract": to_one(ContractModel, "contract_id", ProductModel),
    },
    "Contract": {
        "id": leaf(ContractModel, "id", global_id("Contract")),
        "kind": leaf(ContractModel, "kind", enum_name(ContractKind)),
        "number": leaf(ContractModel, "number"),
        "status": _contract_status,
        "startsOn": leaf(ContractModel, "starts_on", date),
        "endsOn": leaf(ContractModel, "ends_on", date),
    },
    "Document": {
        "id": leaf(DocumentModel, "id", global_id("Document")),
        "kind": leaf(DocumentModel, "kind", enum_name(DocumentKind)),
        "number": leaf(DocumentModel, "number"),
        "issuedOn": leaf(DocumentModel, "issued_on", date),
        "period": leaf(DocumentModel, "period"),
        "amount": leaf(DocumentModel, "amount", decimal),
        "currency": leaf(DocumentModel, "currency"),
    },
    "PrepaidService": {
        "name": leaf(PrepaidService, "name"),
        "unit": leaf(PrepaidService, "unit"),
        "total": leaf(PrepaidService, "total", decimal),
        "used": leaf(PrepaidService, "used", decimal),
        "remaining": _remaining,
        "validUntil": leaf(PrepaidService, "valid_until", date),
    },
    "Database": {
        "id": leaf(DatabaseModel, "id", global_id("Database")),
        "name": leaf(DatabaseModel, "name"),
        "configuration": leaf(DatabaseModel, "configuration"),
        "version": leaf(DatabaseModel, "version"),
        "isTypical": leaf(DatabaseModel, "is_typical"),
        "sizeMb": leaf(DatabaseModel, "size_mb"),
        "updateSchedule": _update_schedule,
    },
    "Session": {
        "id": leaf(SessionModel, "id", global_id("Session")),
        "userName": leaf(SessionModel, "user_name"),
        "clientKind": leaf(SessionModel, "client_kind", enum_name(ClientKind)),
        "host": leaf(SessionModel, "host"),
        "startedAt": leaf(SessionModel, "started_at", datetime),
        "endedAt": leaf(SessionModel, "ended_at", datetime),
        "status": leaf(SessionModel, "status", enum_name(SessionStatus)),
        "refusalReason": leaf(SessionModel, "refusal_reason"),
        "database": to_one(DatabaseModel, "database_id", SessionModel),
    },
}
