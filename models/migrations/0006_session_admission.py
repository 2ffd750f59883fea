from tortoise import migrations
from tortoise.migrations import operations as ops
from models.cloud import SessionStatus
from tortoise import fields
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0005_provider')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Database',
            name='lock_message',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Database',
            name='locked_from',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Database',
            name='locked_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AlterField(
            model_name='Session',
            name='status',
            field=fields.CharEnumField(default=SessionStatus.ACTIVE, description='ACTIVE: ACTIVE\nTERMINATING: TERMINATING\nENDED: ENDED\nTERMINATED: TERMINATED\nREFUSED: REFUSED', enum_type=SessionStatus, max_length=12),
        ),
        ops.AddField(
            model_name='Session',
            name='refusal_reason',
            field=fields.CharField(null=True, max_length=300),
        ),
        # A table rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
