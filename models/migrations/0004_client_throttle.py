from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_verification_code_client_address')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ClientThrottle',
            fields=[
                ('address', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('failures', fields.IntField(default=0)),
                ('window_ends', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'client_throttle', 'app': 'models', 'pk_attr': 'address', 'table_description': 'Wrong passwords from one client address in the current window, whatever the logins tried.'},
            bases=['Model'],
        ),
    ]
