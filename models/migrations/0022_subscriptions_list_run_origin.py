from tortoise import migrations
from tortoise.migrations import operations as ops
from models.updates import UpdateRunOrigin
from models.versions import install_triggers
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


async def _origin_of_planned_runs(apps, schema_editor) -> None:  # noqa: ANN001 — Tortoise's RunPython signature
    """A run planned before kabinet kept its origin was planned by its database's schedule as it is
    now (a change of mode cancels the runs the old one planned): that mode. Runs already done stay
    without one."""
    await schema_editor.client.execute_script(
        "UPDATE update_run SET origin = (SELECT s.mode FROM update_schedule s WHERE s.database_id = update_run.database_id) "
        "WHERE origin IS NULL AND status IN ('QUARANTINE', 'SCHEDULED') "
        "AND EXISTS (SELECT 1 FROM update_schedule s WHERE s.database_id = update_run.database_id "
        "AND s.mode IN ('ONCE', 'MONTHLY', 'ON_RELEASE'))"
    )


async def _before_sqlite_rebuild(apps, schema_editor) -> None:  # noqa: ANN001
    """SQLite rebuilds cloud_subscription to alter its column: dropping the old table deletes the rows
    that hang on it (subscription_extension, ON DELETE CASCADE), and it refuses to rename a table that
    another table's trigger names. So the extensions are kept aside (`_after_sqlite_rebuild` puts them
    back) and those triggers go (`install_triggers` puts them back)."""
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        return
    await client.execute_script("DROP TABLE IF EXISTS _kept_subscription_extension")
    await client.execute_script("CREATE TABLE _kept_subscription_extension AS SELECT * FROM subscription_extension")
    for row in await client.execute_query_dict(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%cloud_subscription%'"
    ):
        await client.execute_script(f"DROP TRIGGER IF EXISTS {row['name']}")


async def _after_sqlite_rebuild(apps, schema_editor) -> None:  # noqa: ANN001
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        return
    await client.execute_script(
        "INSERT INTO subscription_extension SELECT * FROM _kept_subscription_extension "
        "WHERE id NOT IN (SELECT id FROM subscription_extension)"
    )
    await client.execute_script("DROP TABLE _kept_subscription_extension")


class Migration(migrations.Migration):
    dependencies = [('models', '0021_tickets')]

    initial = False

    operations = [
        # An organization may have several tariff subscriptions (issue 20): one-to-one becomes a foreign
        # key; the rows stay as they are.
        ops.RunPython(_before_sqlite_rebuild),
        ops.AlterModelOptions(
            name='CloudSubscription',
            options={'table': 'cloud_subscription', 'app': 'models', 'pk_attr': 'id', 'table_description': "One tariff subscription of an organization's cloud rental: an organization may have several"},
        ),
        ops.AlterField(
            model_name='CloudSubscription',
            name='organization',
            field=fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='cloud_subscriptions', on_delete=OnDelete.CASCADE),
        ),
        ops.RunPython(_after_sqlite_rebuild),
        ops.AddIndex(
            model_name='CloudSubscription',
            index=Index(fields=['organization_id', 'created_at']),
        ),
        # What planned a run: a one-off run beside the schedule is not the schedule's.
        ops.AddField(
            model_name='UpdateRun',
            name='origin',
            field=fields.CharEnumField(null=True, description='ONCE: ONCE\nMONTHLY: MONTHLY\nON_RELEASE: ON_RELEASE\nONE_OFF: ONE_OFF', enum_type=UpdateRunOrigin, max_length=12),
        ),
        ops.RunPython(_origin_of_planned_runs),
        # A table rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
