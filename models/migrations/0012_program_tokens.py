from tortoise import migrations
from tortoise.migrations import operations as ops
from models.program_tokens import TokenKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from models.versions import install_triggers


async def move_service_accounts(apps, schema_editor) -> None:  # noqa: ANN001 — Tortoise's RunPython signature
    """Every service account becomes a SERVICE token of the one store, for every organization, with
    its name, token hash, scopes, creation, last use and revocation: its token keeps working."""
    await schema_editor.client.execute_script(
        "INSERT INTO program_token (id, created_at, kind, name, token_hash, scopes, all_organizations, last_used_at, "
        "revoked_at, expires_at) SELECT id, created_at, 'SERVICE', name, token_hash, scopes, TRUE, last_used_at, "
        "revoked_at, NULL FROM service_account"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0011_organization_claims_beside_customers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ProgramToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('kind', fields.CharEnumField(description='SERVICE: SERVICE\nAGENT: AGENT', enum_type=TokenKind, max_length=20)),
                ('name', fields.CharField(max_length=100)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('all_organizations', fields.BooleanField(default=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'program_token', 'app': 'models', 'unique_together': (('kind', 'name'),), 'pk_attr': 'id', 'table_description': "A program's bearer token: kind, name (unique per kind, kept after a revocation), the sha256 of"},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='ProgramTokenOrganization',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('token', fields.ForeignKeyField('models.ProgramToken', source_field='token_id', db_constraint=True, to_field='id', related_name='organization_scope', on_delete=OnDelete.CASCADE)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='program_tokens', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'program_token_organization', 'app': 'models', 'unique_together': (('token', 'organization'),), 'pk_attr': 'id', 'table_description': 'One organization a token acts for (a token without `all_organizations` acts for these only).'},
            bases=['Entity'],
        ),
        ops.RunPython(move_service_accounts),
        ops.DeleteModel(name='ServiceAccount'),
        ops.AddField(
            model_name='UpdateRun',
            name='lease_fence',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.RunPython(install_triggers),
    ]
