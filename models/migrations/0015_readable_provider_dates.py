from tortoise import migrations
from tortoise.migrations import operations as ops

from models.provider import readable_provider_dates


async def _readable_provider_dates(apps, schema_editor) -> None:  # noqa: ANN001 — Tortoise's RunPython signature
    await readable_provider_dates(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [('models', '0014_supplier_requisites')]

    initial = False

    operations = [
        # Values the provider's records wrote before they were checked (issue 17) that cannot be read
        # back (a ledger entry of year 1 at +14:00 took every organization of its viewer down).
        ops.RunPython(_readable_provider_dates),
    ]
