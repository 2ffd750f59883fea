from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DataVersion',
            fields=[
                ('scope', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('version', fields.BigIntField(default=0)),
            ],
            options={'table': 'data_version', 'app': 'models', 'pk_attr': 'scope', 'table_description': 'How many committed changes an organization, a user or the catalogue has seen (moved by triggers).'},
            bases=['Model'],
        ),
        # Every versioned table's trigger (models/versions.py SCOPE_OF_TABLE).
        ops.RunPython(install_triggers),
    ]
