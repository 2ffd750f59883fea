from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0004_client_throttle')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ImportRun',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('entity', fields.CharField(max_length=40)),
                ('file_digest', fields.CharField(max_length=64)),
                ('file_name', fields.CharField(max_length=300)),
                ('lines_done', fields.IntField(default=0)),
                ('created', fields.IntField(default=0)),
                ('updated', fields.IntField(default=0)),
                ('unchanged', fields.IntField(default=0)),
                ('refused', fields.IntField(default=0)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'import_run', 'app': 'models', 'unique_together': (('entity', 'file_digest'),), 'pk_attr': 'id', 'table_description': 'One import of one file: the lines done so far, so that a stopped import resumes after them.'},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='PrepaidServiceUse',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('prepaid_service', fields.ForeignKeyField('models.PrepaidService', source_field='prepaid_service_id', db_constraint=True, to_field='id', related_name='uses', on_delete=OnDelete.CASCADE)),
                ('external_id', fields.CharField(null=True, unique=True, max_length=100)),
                ('quantity', fields.DecimalField(max_digits=14, decimal_places=3)),
                ('used_on', fields.DateField()),
                ('description', fields.CharField(default='', max_length=500)),
            ],
            options={'table': 'prepaid_service_use', 'app': 'models', 'pk_attr': 'id', 'table_description': "One use of a prepaid service package (a consultation, a migration hour), as the provider's"},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='ProviderAction',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('actor_kind', fields.CharField(max_length=10)),
                ('actor', fields.CharField(max_length=200)),
                ('action', fields.CharField(max_length=60)),
                ('target', fields.CharField(null=True, max_length=200)),
                ('details', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'provider_action', 'app': 'models', 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': "What a staff member or a service account did on the provider's side, for the provider's audit."},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='ServiceAccount',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'service_account', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A program of the provider (its accounting, its service manager) writing through the provider'},
            bases=['Entity'],
        ),
        ops.AddField(
            model_name='BalanceTransaction',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Charge',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='CloudSubscription',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Contract',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Database',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Document',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='KnownContact',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Organization',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Organization',
            name='kpp',
            field=fields.CharField(null=True, max_length=9),
        ),
        ops.AddField(
            model_name='Organization',
            name='legal_address',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Organization',
            name='ogrn',
            field=fields.CharField(null=True, max_length=15),
        ),
        ops.AddField(
            model_name='PrepaidService',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Product',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        ops.AddField(
            model_name='Release',
            name='external_id',
            field=fields.CharField(null=True, unique=True, max_length=100),
        ),
        # The new versioned table's trigger (models/versions.py SCOPE_OF_TABLE).
        ops.RunPython(install_triggers),
    ]
