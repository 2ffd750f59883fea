from tortoise import migrations
from tortoise.migrations import operations as ops
from models.program_tokens import TokenKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0023_requisites_change_ticket')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='ProgramToken',
            name='kind',
            field=fields.CharEnumField(description='SERVICE: SERVICE\nAGENT: AGENT\nINTEGRATOR: INTEGRATOR', enum_type=TokenKind, max_length=20),
        ),
        ops.AddField(
            model_name='ProgramToken',
            name='created_by',
            field=fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='program_tokens', on_delete=OnDelete.SET_NULL),
        ),
    ]
