from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0018_people')]

    initial = False

    operations = [
        ops.CreateModel(
            name='NotificationReminder',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='notification_reminders', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notification_reminders', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=40)),
                ('subject', fields.CharField(max_length=100)),
                ('threshold', fields.IntField()),
            ],
            options={'table': 'notification_reminder', 'app': 'models', 'unique_together': (('organization', 'user', 'kind', 'subject', 'threshold'),), 'pk_attr': 'id', 'table_description': "One reminder sent: a threshold (30, 7, 1 days) of a subject (a contract's end on a date, the"},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='NotificationSettings',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notification_settings', on_delete=OnDelete.CASCADE)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', null=True, db_constraint=True, to_field='id', related_name='notification_settings', on_delete=OnDelete.CASCADE)),
                ('muted_kinds', fields.CharField(default='', max_length=500)),
                ('time_zone', fields.CharField(default='Europe/Moscow', max_length=64)),
                ('window_start', fields.IntField(null=True)),
                ('window_end', fields.IntField(null=True)),
                ('digest_hours', fields.IntField(null=True)),
                ('reminders', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification_settings', 'app': 'models', 'unique_together': (('user', 'organization'),), 'pk_attr': 'id', 'table_description': "What mails one user about one organization, and when. `organization` NULL: a staff member's"},
            bases=['Entity'],
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='digest_key',
            field=fields.CharField(null=True, db_index=True, max_length=100),
        ),
        # notification_settings moves its user's data version (the response cache).
        ops.RunPython(install_triggers),
    ]
