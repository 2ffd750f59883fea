from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from models.versions import install_triggers


async def move_unproven_addresses(apps, schema_editor) -> None:  # noqa: ANN001 — Tortoise's RunPython signature
    """An address never proven by a code leaves the login columns for the unproven ones: it stops
    being a login and stops reserving the address (resolvers/addresses.py)."""
    client = schema_editor.client
    false = "FALSE" if client.capabilities.dialect == "postgres" else "0"
    for column in ("email", "phone"):
        await client.execute_script(
            f'UPDATE "user" SET unproven_{column} = {column}, {column} = NULL '
            f"WHERE {column} IS NOT NULL AND {column}_verified = {false}"
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0012_program_tokens')]

    initial = False

    operations = [
        # Addresses are logins only once proven: User.email / User.phone keep the proven ones
        # (unique), an address given but not proven waits beside them and reserves nothing.
        ops.AddField(
            model_name='User',
            name='unproven_email',
            field=fields.CharField(null=True, db_index=True, max_length=254),
        ),
        ops.AddField(
            model_name='User',
            name='unproven_phone',
            field=fields.CharField(null=True, db_index=True, max_length=16),
        ),
        ops.RunPython(move_unproven_addresses),
        ops.RunPython(install_triggers),
    ]
