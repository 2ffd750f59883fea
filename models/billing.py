"""The deposit ledger, prepaid services, charges and accounting documents."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity, money
from models.provider import external_id


class TransactionKind(str, Enum):
    TOP_UP = "TOP_UP"
    CHARGE = "CHARGE"
    REFUND = "REFUND"
    ADJUSTMENT = "ADJUSTMENT"


class ChargeKind(str, Enum):
    CLOUD_RENTAL = "CLOUD_RENTAL"
    SUPPORT_SERVICE = "SUPPORT_SERVICE"


class DocumentKind(str, Enum):
    INVOICE = "INVOICE"
    ACT = "ACT"
    CONTRACT = "CONTRACT"


class BalanceTransaction(Entity):
    """One ledger entry: `seq` orders an organization's entries, the last one holds the balance."""

    organization = fields.ForeignKeyField("models.Organization", related_name="balance_transactions", on_delete=fields.CASCADE)
    seq = fields.BigIntField()
    kind = fields.CharEnumField(TransactionKind, max_length=12)
    amount = money()
    balance_after = money()
    description = fields.CharField(max_length=500)
    occurred_at = fields.DatetimeField()
    document = fields.ForeignKeyField("models.Document", related_name="transactions", null=True, on_delete=fields.SET_NULL)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "balance_transaction"
        unique_together = (("organization", "seq"),)
        indexes = (("organization_id", "occurred_at"),)


class PrepaidService(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="prepaid_services", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=300)
    unit = fields.CharField(max_length=30)
    total = money()
    used = money()
    valid_until = fields.DateField(null=True)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "prepaid_service"
        indexes = (("organization_id", "name"),)


class Charge(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="charges", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(ChargeKind, max_length=20)
    period = fields.CharField(max_length=7)  # YYYY-MM
    description = fields.CharField(max_length=500)
    quantity = fields.DecimalField(max_digits=14, decimal_places=3)
    unit_price = money()
    amount = money()
    database = fields.ForeignKeyField("models.Database", related_name="charges", null=True, on_delete=fields.SET_NULL)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "charge"
        indexes = (("organization_id", "period", "kind"),)


class Document(Entity):
    """An invoice, act or contract, not visible to the organization before `visible_from`.

    Nor once the provider withdrew it (`withdrawn_at`): the row is kept, so that its number stays
    taken and the monthly publisher does not issue it again."""

    organization = fields.ForeignKeyField("models.Organization", related_name="documents", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(DocumentKind, max_length=10)
    number = fields.CharField(max_length=50)
    issued_on = fields.DateField()
    period = fields.CharField(max_length=7, null=True)
    amount = money()
    currency = fields.CharField(max_length=3, default="RUB")
    visible_from = fields.DateField()
    withdrawn_at = fields.DatetimeField(null=True)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "document"
        unique_together = (("organization", "kind", "number"),)
        indexes = (("organization_id", "visible_from", "issued_on"), ("organization_id", "issued_on"))


class DocumentFile(Entity):
    """The stored file of a document, apart so that listing documents never reads the bytes."""

    document = fields.OneToOneField("models.Document", related_name="file", on_delete=fields.CASCADE)
    filename = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=100, default="application/pdf")
    content = fields.BinaryField()

    class Meta:
        table = "document_file"


class SupplierRequisites(Entity):
    """The provider's own requisites as configured (resolvers/billing/supplier.py), one row per change: the
    newest is in force, the older ones say what documents printed when."""

    requisites = fields.JSONField()
    configured_by = fields.CharField(max_length=200)  # the operator (or "demo")

    class Meta:
        table = "supplier_requisites"
        indexes = (("created_at",),)
