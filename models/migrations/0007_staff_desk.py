from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0006_session_admission')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RefusedRecord',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('actor_kind', fields.CharField(max_length=10)),
                ('actor', fields.CharField(max_length=200)),
                ('source', fields.CharField(max_length=300)),
                ('import_run', fields.ForeignKeyField('models.ImportRun', source_field='import_run_id', null=True, db_constraint=True, to_field='id', related_name='refusals', on_delete=OnDelete.SET_NULL)),
                ('entity', fields.CharField(max_length=40)),
                ('line', fields.IntField()),
                ('external_id', fields.CharField(null=True, max_length=100)),
                ('field', fields.CharField(null=True, max_length=100)),
                ('reason', fields.CharField(max_length=1000)),
            ],
            options={'table': 'refused_record', 'app': 'models', 'indexes': [Index(fields=['created_at']), Index(fields=['entity', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A record the provider sent that was refused (`created_at`: when), kept for staff to see and'},
            bases=['Entity'],
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='failed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='template',
            field=fields.CharField(null=True, max_length=60),
        ),
        ops.AddIndex(
            model_name='OutboxMessage',
            index=Index(fields=['status', 'failed_at']),
        ),
        # A table rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
