from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from models.identity import CodePurpose
from models.versions import install_triggers


class Migration(migrations.Migration):
    dependencies = [('models', '0017_supplier_description')]

    initial = False

    operations = [
        # A member the owner created: signs in with a generated password, then must replace it.
        ops.AddField(
            model_name='User',
            name='must_change_password',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Invite',
            name='full_name',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='Invite',
            name='password_hash',
            field=fields.CharField(null=True, max_length=200),
        ),
        # A member's new phone is proven by a code sent to it (resolvers/people.py).
        ops.AlterField(
            model_name='VerificationCode',
            name='purpose',
            field=fields.CharEnumField(description='SIGN_UP: SIGN_UP\nPASSWORD_RESET: PASSWORD_RESET\nEMAIL_CHANGE: EMAIL_CHANGE\nMEMBER_REMOVAL: MEMBER_REMOVAL\nPHONE_CHANGE: PHONE_CHANGE', enum_type=CodePurpose, max_length=20),
        ),
        ops.RunPython(install_triggers),
    ]
