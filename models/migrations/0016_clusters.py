from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0015_readable_provider_dates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Cluster',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
                ('description', fields.CharField(null=True, max_length=500)),
                ('time_zone', fields.CharField(null=True, max_length=64)),
                ('last_report_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('connected', fields.BooleanField(default=False)),
            ],
            options={'table': 'cluster', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A 1C cluster kabinet knows by name: its agent reports its sessions (the snapshot door), its'},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='ProgramTokenCluster',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('token', fields.ForeignKeyField('models.ProgramToken', source_field='token_id', db_constraint=True, to_field='id', related_name='cluster_scope', on_delete=OnDelete.CASCADE)),
                ('cluster', fields.ForeignKeyField('models.Cluster', source_field='cluster_id', db_constraint=True, to_field='id', related_name='program_tokens', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'program_token_cluster', 'app': 'models', 'unique_together': (('token', 'cluster'),), 'pk_attr': 'id', 'table_description': 'One cluster a token acts for: the databases on it, their sessions and update runs (a token'},
            bases=['Entity'],
        ),
        ops.AddField(
            model_name='Database',
            name='cluster',
            field=fields.ForeignKeyField('models.Cluster', source_field='cluster_id', null=True, db_constraint=True, to_field='id', related_name='databases', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Database',
            name='infobase',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddConstraint(
            model_name='Database',
            constraint=UniqueConstraint(fields=('cluster', 'infobase'), name=None),
        ),
        ops.AddConstraint(
            model_name='Session',
            constraint=UniqueConstraint(fields=('database', 'cluster_session_id'), name=None),
        ),
        # The cluster's rows move the versions of the organizations with a database on it; a table
        # rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
