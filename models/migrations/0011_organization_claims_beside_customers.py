from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0010_refresh_token_revoked_at_index')]

    initial = False

    operations = [
        # A tenant's claim of an INN no longer binds to the provider's organization of that INN: the
        # two stand side by side. The INN alone is no longer unique; (INN, moderation status) is: one
        # customer (APPROVED), one open claim (PENDING), one rejected claim per INN.
        ops.AlterModelOptions(
            name='Organization',
            options={'table': 'organization', 'app': 'models', 'unique_together': (('inn', 'moderation_status'),), 'pk_attr': 'id', 'table_description': "A subscriber. Per INN at most one APPROVED organization (the customer: the one the provider's"},
        ),
        ops.AlterField(
            model_name='Organization',
            name='inn',
            field=fields.CharField(max_length=12),
        ),
        ops.AddConstraint(
            model_name='Organization',
            constraint=UniqueConstraint(fields=('inn', 'moderation_status'), name=None),
        ),
        # A table rebuilt by SQLite loses its triggers: put every versioned table's back.
        ops.RunPython(install_triggers),
    ]
