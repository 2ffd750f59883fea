"""The provider's side: import runs, and what staff and service accounts (models/program_tokens.py)
did (the provider's own audit, apart from the organizations' audit log)."""

from __future__ import annotations

from tortoise import fields

from models.base import Entity


EXTERNAL_ID_LENGTH = 100


def external_id() -> fields.CharField:
    """The provider's own id of a row (its accounting's reference): upserts find the row by it.
    Never shown to customers."""
    return fields.CharField(max_length=EXTERNAL_ID_LENGTH, null=True, unique=True)


class ImportRun(Entity):
    """One import of one file: the lines done so far, so that a stopped import resumes after them."""

    entity = fields.CharField(max_length=40)
    file_digest = fields.CharField(max_length=64)  # sha256 of the file's bytes
    file_name = fields.CharField(max_length=300)
    lines_done = fields.IntField(default=0)
    created = fields.IntField(default=0)
    updated = fields.IntField(default=0)
    unchanged = fields.IntField(default=0)
    deleted = fields.IntField(default=0, db_default=0)
    refused = fields.IntField(default=0)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "import_run"
        unique_together = (("entity", "file_digest"),)


class RefusedRecord(Entity):
    """A record the provider sent that was refused (`created_at`: when), kept for staff to see and
    the provider to correct, whatever the door: a file `kabinet import` read (`source` its name,
    `import_run` the run) or the HTTP API (`source` "api")."""

    actor_kind = fields.CharField(max_length=10)  # SERVICE, STAFF, CLI (resolvers/provider/audit.py ActorKind)
    actor = fields.CharField(max_length=200)  # the service account's name, the operator's
    source = fields.CharField(max_length=300)  # "api", or the imported file's name
    import_run = fields.ForeignKeyField("models.ImportRun", related_name="refusals", null=True, on_delete=fields.SET_NULL)
    entity = fields.CharField(max_length=40)
    line = fields.IntField()  # of the file (NDJSON), its data row (CSV), or the request body's line
    external_id = fields.CharField(max_length=100, null=True)
    field = fields.CharField(max_length=100, null=True)  # the record's field at fault, when one is
    reason = fields.CharField(max_length=1000)

    class Meta:
        table = "refused_record"
        indexes = (("created_at",), ("entity", "created_at"))


class ProviderAction(Entity):
    """What a staff member or a service account did on the provider's side, for the provider's audit."""

    actor_kind = fields.CharField(max_length=10)  # STAFF, SERVICE, CLI
    actor = fields.CharField(max_length=200)  # the staff member's e-mail, the service account's name
    action = fields.CharField(max_length=60)
    target = fields.CharField(max_length=200, null=True)
    details = fields.JSONField(default=dict)

    class Meta:
        table = "provider_action"
        indexes = (("created_at",),)


class PrepaidServiceUse(Entity):
    """One use of a prepaid service package (a consultation, a migration hour), as the provider's
    accounting records it. The package's `used` is their sum."""

    prepaid_service = fields.ForeignKeyField("models.PrepaidService", related_name="uses", on_delete=fields.CASCADE)
    external_id = external_id()
    quantity = fields.DecimalField(max_digits=14, decimal_places=3)
    used_on = fields.DateField()
    description = fields.CharField(max_length=500, default="")

    class Meta:
        table = "prepaid_service_use"


# Moments the provider's records wrote before they were checked (issue 17), that a driver cannot read
# back: year 1 at +14:00 is year 0 in UTC. Only SQLite could keep one (it stores the text as written;
# asyncpg refuses to send such a moment), but the same statements fix either store.
UNREADABLE_MOMENTS = (("balance_transaction", "occurred_at"), ("release", "published_at"))
# Optional dates 1C left empty (`01.01.0001`), which the records now read as no date.
EMPTY_1C_DATES = (("contract", "ends_on"), ("product", "updates_available_until"), ("prepaid_service", "valid_until"))


async def readable_provider_dates(client) -> None:  # noqa: ANN001 — a Tortoise client
    """Bring what an earlier kabinet accepted within what the records accept now: a moment before
    1900 or after 2999 becomes that edge (a ledger keeps its order: such entries were first, or
    last, already), 1C's empty date in an optional date none. A migration's step (0014)."""
    for table, column in UNREADABLE_MOMENTS:
        await client.execute_script(
            f"UPDATE {table} SET {column} = '1900-01-01 00:00:00+00:00' WHERE {column} < '1900-01-01 00:00:00+00:00'"
        )
        await client.execute_script(
            f"UPDATE {table} SET {column} = '2999-12-31 00:00:00+00:00' WHERE {column} >= '3000-01-01 00:00:00+00:00'"
        )
    for table, column in EMPTY_1C_DATES:
        await client.execute_script(f"UPDATE {table} SET {column} = NULL WHERE {column} = '0001-01-01'")
