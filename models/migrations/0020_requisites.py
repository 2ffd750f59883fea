from tortoise import migrations
from tortoise.migrations import operations as ops
from models.requisites import RequisitesChangeStatus, RequisitesSource
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0019_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Manager',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='managers', on_delete=OnDelete.CASCADE)),
                ('full_name', fields.CharField(max_length=200)),
                ('title', fields.CharField(null=True, max_length=200)),
                ('phone', fields.CharField(null=True, max_length=16)),
                ('email', fields.CharField(null=True, max_length=254)),
                ('external_id', fields.CharField(null=True, unique=True, max_length=100)),
            ],
            options={'table': 'manager', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'full_name'])], 'pk_attr': 'id', 'table_description': 'A personal manager the provider assigned to an organization (provider records, entity `manager`).'},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='RequisitesChange',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='requisites_changes', on_delete=OnDelete.CASCADE)),
                ('proposed', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('requested_by', fields.ForeignKeyField('models.User', source_field='requested_by_id', null=True, db_constraint=True, to_field='id', related_name='requisites_changes', on_delete=OnDelete.SET_NULL)),
                ('status', fields.CharEnumField(default=RequisitesChangeStatus.PENDING, description='PENDING: PENDING\nCONFIRMED: CONFIRMED\nSUPERSEDED: SUPERSEDED', enum_type=RequisitesChangeStatus, max_length=10)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'requisites_change', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'status'])], 'pk_attr': 'id', 'table_description': "A customer's change of provider-owned requisites, not applied: the provider's next record"},
            bases=['Entity'],
        ),
        ops.AddField(
            model_name='Organization',
            name='bank_name',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='Organization',
            name='bic',
            field=fields.CharField(null=True, max_length=9),
        ),
        ops.AddField(
            model_name='Organization',
            name='correspondent_account',
            field=fields.CharField(null=True, max_length=20),
        ),
        ops.AddField(
            model_name='Organization',
            name='legal_name',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Organization',
            name='postal_address',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Organization',
            name='requisites_confirmed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Organization',
            name='requisites_source',
            field=fields.CharEnumField(null=True, description='PROVIDER: PROVIDER\nCUSTOMER: CUSTOMER', enum_type=RequisitesSource, max_length=10),
        ),
        ops.AddField(
            model_name='Organization',
            name='settlement_account',
            field=fields.CharField(null=True, max_length=20),
        ),
        # What the provider sent before requisites had a source is the provider's.
        ops.RunSQL(
            "UPDATE organization SET requisites_source = 'PROVIDER' WHERE external_id IS NOT NULL",
            reverse_sql=ops.RunSQL.noop,
        ),
        # The new tables move their organization's data version (the response cache); a table rebuilt by
        # SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
