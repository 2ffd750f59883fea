from tortoise import migrations
from tortoise.migrations import operations as ops
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0008_record_deletes')]

    initial = False

    operations = [
        # PostgreSQL: the row triggers moving the data versions become statement triggers (one
        # upsert per statement, not per row; models/versions.py). SQLite keeps its row triggers.
        # Every migration runs today's install_triggers, so a fresh database has had them since 0002.
        ops.RunPython(install_triggers),
    ]
