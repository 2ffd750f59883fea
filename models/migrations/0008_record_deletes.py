from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0007_staff_desk')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Document',
            name='withdrawn_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ImportRun',
            name='deleted',
            field=fields.IntField(default=0, db_default=0),
        ),
        # A table rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
