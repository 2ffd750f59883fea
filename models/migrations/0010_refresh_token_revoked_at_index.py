from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0009_statement_triggers')]

    initial = False

    operations = [
        # Every process reads the refresh tokens revoked since its last read every few seconds
        # (kabinet/sign_ins.py): a range of revoked_at, not a scan of every token ever issued.
        ops.AddIndex(
            model_name='RefreshToken',
            index=Index(fields=['revoked_at']),
        ),
        ops.RunPython(install_triggers),
    ]
