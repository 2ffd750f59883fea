from tortoise import migrations
from tortoise.migrations import operations as ops
from models.tickets import TicketAddressee, TicketKind, TicketStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from models.versions import install_triggers

class Migration(migrations.Migration):
    dependencies = [('models', '0020_requisites')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SupportTicket',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.SET_NULL)),
                ('author_name', fields.CharField(max_length=200)),
                ('subject', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(default=TicketStatus.OPEN, description='OPEN: OPEN\nANSWERED: ANSWERED\nWAITING: WAITING\nCLOSED: CLOSED', enum_type=TicketStatus, max_length=10)),
                ('addressee', fields.CharEnumField(default=TicketAddressee.SUPPORT, description='SUPPORT: SUPPORT\nMANAGER: MANAGER', enum_type=TicketAddressee, max_length=10)),
                ('kind', fields.CharEnumField(default=TicketKind.QUESTION, description='QUESTION: QUESTION\nREQUISITES_CHANGE: REQUISITES_CHANGE\nTARIFF_CHANGE: TARIFF_CHANGE', enum_type=TicketKind, max_length=20)),
                ('database', fields.ForeignKeyField('models.Database', source_field='database_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.SET_NULL)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'support_ticket', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'updated_at']), Index(fields=['status', 'updated_at']), Index(fields=['author_id', 'updated_at'])], 'pk_attr': 'id', 'table_description': 'A ticket of an organization, written by one of its members (the author).'},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='TicketAttachment',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ticket', fields.ForeignKeyField('models.SupportTicket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='ticket_attachments', on_delete=OnDelete.CASCADE)),
                ('uploaded_by', fields.ForeignKeyField('models.User', source_field='uploaded_by_id', null=True, db_constraint=True, to_field='id', related_name='ticket_attachments', on_delete=OnDelete.SET_NULL)),
                ('from_staff', fields.BooleanField(default=False)),
                ('filename', fields.CharField(max_length=200)),
                ('content_type', fields.CharField(max_length=100)),
                ('size', fields.IntField()),
            ],
            options={'table': 'ticket_attachment', 'app': 'models', 'indexes': [Index(fields=['ticket_id', 'created_at']), Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A file attached to a ticket (by whoever may write in it), its bytes apart, so that listing'},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='TicketAttachmentFile',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('attachment', fields.OneToOneField('models.TicketAttachment', source_field='attachment_id', db_constraint=True, to_field='id', related_name='file', on_delete=OnDelete.CASCADE)),
                ('content', fields.BinaryField()),
            ],
            options={'table': 'ticket_attachment_file', 'app': 'models', 'pk_attr': 'id', 'table_description': "The stored bytes of an attachment (as DocumentFile keeps a document's)."},
            bases=['Entity'],
        ),
        ops.CreateModel(
            name='TicketComment',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ticket', fields.ForeignKeyField('models.SupportTicket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='comments', on_delete=OnDelete.CASCADE)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='ticket_comments', on_delete=OnDelete.CASCADE)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name='ticket_comments', on_delete=OnDelete.SET_NULL)),
                ('author_name', fields.CharField(max_length=200)),
                ('from_staff', fields.BooleanField(default=False)),
                ('text', fields.TextField(null=True, unique=False)),
                ('status_to', fields.CharEnumField(null=True, description='OPEN: OPEN\nANSWERED: ANSWERED\nWAITING: WAITING\nCLOSED: CLOSED', enum_type=TicketStatus, max_length=10)),
            ],
            options={'table': 'ticket_comment', 'app': 'models', 'indexes': [Index(fields=['ticket_id', 'created_at']), Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': "One entry of a ticket's history: a comment (`text`), a status change (`status_to`), or both"},
            bases=['Entity'],
        ),
        # tickets, their comments and attachments move their organization's data version (the response cache)
        ops.RunPython(install_triggers),
    ]
