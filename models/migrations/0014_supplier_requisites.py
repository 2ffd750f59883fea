from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_proven_addresses')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SupplierRequisites',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('requisites', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('configured_by', fields.CharField(max_length=200)),
            ],
            options={'table': 'supplier_requisites', 'app': 'models', 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': "The provider's own requisites as configured (resolvers/supplier.py), one row per change: the"},
            bases=['Entity'],
        ),
    ]
