from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0022_subscriptions_list_run_origin')]

    initial = False

    operations = [
        ops.AddField(
            model_name='RequisitesChange',
            name='ticket',
            field=fields.ForeignKeyField('models.SupportTicket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='requisites_changes', on_delete=OnDelete.SET_NULL),
        ),
    ]
