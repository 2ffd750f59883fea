"""Data versions: a counter per organization (and per user, and one for the whole catalogue) that
every committed change of what can be read moves on.

Triggers in the database move them, in the same transaction as the change, whatever wrote it (a
mutation, a worker, the cluster agent, a hand-written UPDATE): the response cache
(`kabinet/response_cache.py`) keeps an answer only while the versions it was computed under are
the current ones, so no code path can forget to invalidate it. `SCOPE_OF_TABLE` is the one place
that says which scope a table's rows belong to; `UNVERSIONED` lists what no query reads.
"""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

CATALOGUE = uuid.UUID(int=0)  # the scope of what every signed-in user reads alike (releases)

_ORGANIZATION = "{row}.organization_id"

# table -> SQL expressions of the scopes a row of it belongs to ({row} is NEW or OLD).
SCOPE_OF_TABLE: dict[str, tuple[str | tuple[str, str], ...]] = {
    "organization": ("{row}.id",),
    "membership": (_ORGANIZATION, "{row}.user_id"),
    "invite": (_ORGANIZATION,),
    "invite_database": ("(SELECT organization_id FROM invite WHERE id = {row}.invite_id)",),
    "join_request": (_ORGANIZATION, "{row}.user_id"),
    "audit_entry": (_ORGANIZATION,),
    "product": (_ORGANIZATION,),
    "contract": (_ORGANIZATION,),
    "balance_transaction": (_ORGANIZATION,),
    "prepaid_service": (_ORGANIZATION,),
    "charge": (_ORGANIZATION,),
    "document": (_ORGANIZATION,),
    "document_file": ("(SELECT organization_id FROM document WHERE id = {row}.document_id)",),
    "cloud_subscription": (_ORGANIZATION,),
    "subscription_extension": ("(SELECT organization_id FROM cloud_subscription WHERE id = {row}.subscription_id)",),
    "database": (_ORGANIZATION,),
    "database_grant": ("(SELECT organization_id FROM database WHERE id = {row}.database_id)",),
    "update_schedule": ("(SELECT organization_id FROM database WHERE id = {row}.database_id)",),
    "update_run": (_ORGANIZATION,),
    "session": (_ORGANIZATION,),
    "user": ("{row}.id",),
    "release": (f"'{CATALOGUE}'",),
    "prepaid_service_use": ("(SELECT organization_id FROM prepaid_service WHERE id = {row}.prepaid_service_id)",),
    # A cluster belongs to every organization with a database on it (its `connected` and last report
    # are read as Database.cluster and sessionsAsOf): a scope of many rows, `Through`.
    "cluster": (("database", "cluster_id"),),
    "notification_settings": ("{row}.user_id",),  # read by its user only (Organization.notificationSettings)
    "requisites_change": (_ORGANIZATION,),
    "manager": (_ORGANIZATION,),
    "support_ticket": (_ORGANIZATION,),
    "ticket_comment": (_ORGANIZATION,),
    "ticket_attachment": (_ORGANIZATION,),
}

# Tables no cacheable query reads: sign-in and delivery bookkeeping, the event log (written with
# the change it reports, which is versioned), and the versions themselves.
UNVERSIONED = frozenset({
    "data_version", "event_counter", "organization_event", "login_throttle", "client_throttle", "refresh_token",
    "verification_code", "known_contact", "outbox_message", "tortoise_migrations",
    "program_token", "program_token_organization", "program_token_cluster", "import_run", "provider_action",
    "refused_record",  # read by staff only, whose answers are never kept (kabinet/response_cache.py)
    "notification_reminder",  # the reminders' memory, read by the reminders worker only
    "ticket_attachment_file",  # an attachment's bytes: served by the download door, never by a query
    "supplier_requisites",  # read by staff only (waitingDocuments), and printed into documents when they are made
})


class DataVersion(Model):
    """How many committed changes an organization, a user or the catalogue has seen (moved by triggers)."""

    scope = fields.UUIDField(primary_key=True)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "data_version"


def _row_scopes(scope: str | tuple[str, str], row: str) -> str:
    """The SELECT of a row's scopes: one expression, or (table, column) — the organizations of that
    table's rows whose `column` names this row (many)."""
    if isinstance(scope, tuple):
        table, column = scope
        return f"SELECT organization_id AS s FROM \"{table}\" WHERE {column} = {row}.id"
    return f"SELECT {scope.format(row=row)} AS s"


def _row_upserts(scopes: tuple[str | tuple[str, str], ...], row: str) -> str:
    """SQLite: one upsert per scope of the row `row` (NEW or OLD)."""
    return "".join(
        f" INSERT INTO data_version (scope, version) SELECT s, 1 FROM ({_row_scopes(scope, row)}) AS x"
        f" WHERE s IS NOT NULL ON CONFLICT (scope) DO UPDATE SET version = version + 1;"
        for scope in scopes
    )


def _statement_scopes(scope: str | tuple[str, str], transition_table: str) -> str:
    if isinstance(scope, tuple):
        table, column = scope
        return f'SELECT t.organization_id::uuid AS s FROM {transition_table} AS r JOIN "{table}" AS t ON t.{column} = r.id'
    return f"SELECT {scope.format(row='r')}::uuid AS s FROM {transition_table} AS r"


def _statement_upsert(scopes: tuple[str, ...], transition_tables: tuple[str, ...]) -> str:
    """PostgreSQL: one upsert moving each scope the statement's rows belong to on once, however many
    rows it changed (GROUP BY: a scope twice in one upsert would be an error). In scope order, so that
    two transactions moving the same scopes lock their rows in the same order."""
    rows = " UNION ".join(_statement_scopes(scope, table) for table in transition_tables for scope in scopes)
    return (
        f" INSERT INTO data_version (scope, version) SELECT s, 1 FROM ({rows}) AS x WHERE s IS NOT NULL GROUP BY s ORDER BY s"
        f" ON CONFLICT (scope) DO UPDATE SET version = data_version.version + 1;"
    )


# PostgreSQL: a TRUNCATE has no rows to tell the scopes by: every scope moves on.
_TRUNCATED_FUNCTION = (
    "CREATE OR REPLACE FUNCTION data_version_truncated() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
    "  UPDATE data_version SET version = version + 1;\n  RETURN NULL;\nEND $$"
)


def _trigger_statements(dialect: str, table: str, scopes: tuple[str, ...]) -> list[str]:
    """The statements (re)creating `table`'s version triggers. PostgreSQL: statement triggers that
    read the changed rows from transition tables (one each for INSERT, UPDATE and DELETE: a trigger
    with transition tables takes one event) and move each scope on once per statement; an import
    batch of 1,000 rows is one upsert, not 1,000. SQLite has row triggers only: one upsert per row.
    An UPDATE moves the old and the new rows' scopes (a row that changed hands invalidates both owners)."""
    name = f"data_version_{table}"
    if dialect == "postgres":
        return [
            f'DROP TRIGGER IF EXISTS {name} ON "{table}"',  # the row trigger of before migration 0007
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
            f"  IF TG_OP = 'INSERT' THEN{_statement_upsert(scopes, ('new_rows',))}\n"
            f"  ELSIF TG_OP = 'UPDATE' THEN{_statement_upsert(scopes, ('new_rows', 'old_rows'))}\n"
            f"  ELSE{_statement_upsert(scopes, ('old_rows',))}\n"
            f"  END IF;\n  RETURN NULL;\nEND $$",
            *(
                statement
                for event, referencing in (
                    ("INSERT", "NEW TABLE AS new_rows"),
                    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                    ("DELETE", "OLD TABLE AS old_rows"),
                )
                for statement in (
                    f'DROP TRIGGER IF EXISTS {name}_{event.lower()} ON "{table}"',
                    f'CREATE TRIGGER {name}_{event.lower()} AFTER {event} ON "{table}" REFERENCING {referencing}'
                    f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
                )
            ),
            f'DROP TRIGGER IF EXISTS {name}_truncate ON "{table}"',
            f'CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION data_version_truncated()',
        ]
    statements = []
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("NEW", "OLD")), ("DELETE", ("OLD",))):
        body = "".join(_row_upserts(scopes, row) for row in rows)
        trigger = f"{name}_{event.lower()}"
        statements.append(f"DROP TRIGGER IF EXISTS {trigger}")
        statements.append(f'CREATE TRIGGER {trigger} AFTER {event} ON "{table}" FOR EACH ROW BEGIN{body} END')
    return statements


def trigger_statements(dialect: str, tables: set[str] | None = None) -> list[str]:
    """The statements that (re)create the version trigger of every table (of `tables`, when given),
    for "postgres" or "sqlite"."""
    shared = [_TRUNCATED_FUNCTION] if dialect == "postgres" else []
    return shared + [
        s for table, scopes in SCOPE_OF_TABLE.items() if tables is None or table in tables
        for s in _trigger_statements(dialect, table, scopes)
    ]


async def install_triggers(apps, schema_editor) -> None:  # noqa: ANN001 — Tortoise's RunPython signature
    """RunPython step of a migration that brings versioned tables in: (re)creates the trigger of
    every versioned table that exists by then, so each migration that adds one runs it again."""
    client = schema_editor.client
    dialect = "postgres" if client.capabilities.dialect == "postgres" else "sqlite"
    existing_sql = (
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()" if dialect == "postgres"
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    existing = {row["name"] for row in await client.execute_query_dict(existing_sql)}
    for statement in trigger_statements(dialect, existing):
        await client.execute_script(statement)
