from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_data_versions')]

    initial = False

    operations = [
        ops.AddField(
            model_name='VerificationCode',
            name='client_address',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddIndex(
            model_name='VerificationCode',
            index=Index(fields=['client_address', 'created_at']),
        ),
    ]
