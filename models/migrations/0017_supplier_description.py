from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_clusters')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='SupplierRequisites',
            options={'table': 'supplier_requisites', 'app': 'models', 'indexes': [Index(fields=['created_at'])], 'pk_attr': 'id', 'table_description': "The provider's own requisites as configured (resolvers/billing/supplier.py), one row per change: the"},
        ),
    ]
