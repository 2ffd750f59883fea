"""What an organization bought and the contracts it holds."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity
from models.provider import external_id


class ProductCategory(str, Enum):
    LOCAL_1C = "LOCAL_1C"
    CLOUD_RENTAL = "CLOUD_RENTAL"
    PARTNER_PRODUCT = "PARTNER_PRODUCT"
    SERVICE = "SERVICE"
    LICENSE = "LICENSE"
    MODULE = "MODULE"


class ContractKind(str, Enum):
    ITS = "ITS"
    PTS = "PTS"
    CLOUD_RENTAL = "CLOUD_RENTAL"
    SERVICE = "SERVICE"


class Contract(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="contracts", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(ContractKind, max_length=20)
    number = fields.CharField(max_length=50)
    starts_on = fields.DateField()
    ends_on = fields.DateField(null=True)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "contract"
        indexes = (("organization_id", "starts_on"),)


class Product(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="products", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=300)
    category = fields.CharEnumField(ProductCategory, max_length=20)
    registration_number = fields.CharField(max_length=50, null=True)
    workplaces = fields.IntField(null=True)
    updates_available_until = fields.DateField(null=True)
    contract = fields.ForeignKeyField("models.Contract", related_name="products", null=True, on_delete=fields.SET_NULL)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "product"
        indexes = (("organization_id", "name"), ("organization_id", "category", "name"))
