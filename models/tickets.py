"""Support tickets: a customer's question to the provider's support or to their personal manager,
its comments and status changes (the history), and the files attached to it."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity


class TicketStatus(str, Enum):
    OPEN = "OPEN"  # waits for the provider
    ANSWERED = "ANSWERED"  # the provider answered: the customer's turn
    WAITING = "WAITING"  # the provider works on it (or waits for a third party)
    CLOSED = "CLOSED"


class TicketAddressee(str, Enum):
    SUPPORT = "SUPPORT"  # the provider's support line
    MANAGER = "MANAGER"  # «Написать менеджеру»: the organization's personal manager


class TicketKind(str, Enum):
    QUESTION = "QUESTION"
    REQUISITES_CHANGE = "REQUISITES_CHANGE"  # made by the requisites domain for the provider
    TARIFF_CHANGE = "TARIFF_CHANGE"  # made by the cloud domain for the provider


class SupportTicket(Entity):
    """A ticket of an organization, written by one of its members (the author)."""

    organization = fields.ForeignKeyField("models.Organization", related_name="tickets", on_delete=fields.CASCADE)
    author = fields.ForeignKeyField("models.User", related_name="tickets", null=True, on_delete=fields.SET_NULL)
    author_name = fields.CharField(max_length=200)  # kept: the author may leave or be deleted
    subject = fields.CharField(max_length=200)
    status = fields.CharEnumField(TicketStatus, max_length=10, default=TicketStatus.OPEN)
    addressee = fields.CharEnumField(TicketAddressee, max_length=10, default=TicketAddressee.SUPPORT)
    kind = fields.CharEnumField(TicketKind, max_length=20, default=TicketKind.QUESTION)
    database = fields.ForeignKeyField("models.Database", related_name="tickets", null=True, on_delete=fields.SET_NULL)
    product = fields.ForeignKeyField("models.Product", related_name="tickets", null=True, on_delete=fields.SET_NULL)
    updated_at = fields.DatetimeField()  # the last comment or status change
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "support_ticket"
        indexes = (("organization_id", "updated_at"), ("status", "updated_at"), ("author_id", "updated_at"))


class TicketComment(Entity):
    """One entry of a ticket's history: a comment (`text`), a status change (`status_to`), or both
    (a staff answer). `organization` is the ticket's, kept here for the per-day limits."""

    ticket = fields.ForeignKeyField("models.SupportTicket", related_name="comments", on_delete=fields.CASCADE)
    organization = fields.ForeignKeyField("models.Organization", related_name="ticket_comments", on_delete=fields.CASCADE)
    author = fields.ForeignKeyField("models.User", related_name="ticket_comments", null=True, on_delete=fields.SET_NULL)
    author_name = fields.CharField(max_length=200)  # the member's full name, or the staff member's name
    from_staff = fields.BooleanField(default=False)
    text = fields.TextField(null=True)
    status_to = fields.CharEnumField(TicketStatus, max_length=10, null=True)

    class Meta:
        table = "ticket_comment"
        indexes = (("ticket_id", "created_at"), ("organization_id", "created_at"))


class TicketAttachment(Entity):
    """A file attached to a ticket (by whoever may write in it), its bytes apart, so that listing
    attachments never reads them."""

    ticket = fields.ForeignKeyField("models.SupportTicket", related_name="attachments", on_delete=fields.CASCADE)
    organization = fields.ForeignKeyField("models.Organization", related_name="ticket_attachments", on_delete=fields.CASCADE)
    uploaded_by = fields.ForeignKeyField("models.User", related_name="ticket_attachments", null=True, on_delete=fields.SET_NULL)
    from_staff = fields.BooleanField(default=False)
    filename = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=100)
    size = fields.IntField()

    class Meta:
        table = "ticket_attachment"
        indexes = (("ticket_id", "created_at"), ("organization_id", "created_at"))


class TicketAttachmentFile(Entity):
    """The stored bytes of an attachment (as DocumentFile keeps a document's)."""

    attachment = fields.OneToOneField("models.TicketAttachment", related_name="file", on_delete=fields.CASCADE)
    content = fields.BinaryField()

    class Meta:
        table = "ticket_attachment_file"
