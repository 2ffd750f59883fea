"""An organization's requisites beyond its columns (models/organizations.py holds the values
themselves): whose they are, a customer's change waiting for the provider, and the provider's
personal managers of the organization."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity
from models.provider import external_id


class RequisitesSource(str, Enum):
    PROVIDER = "PROVIDER"  # the provider's records sent them: a customer's change is a request
    CUSTOMER = "CUSTOMER"  # entered by the customer for an organization the provider never sent


class RequisitesChangeStatus(str, Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SUPERSEDED = "SUPERSEDED"


class RequisitesChange(Entity):
    """A customer's change of provider-owned requisites, not applied: the provider's next record
    carrying the same values confirms it, one carrying others supersedes it (so does a newer request)."""

    organization = fields.ForeignKeyField("models.Organization", related_name="requisites_changes", on_delete=fields.CASCADE)
    proposed = fields.JSONField()  # every requisite as it would be (resolvers/organizations/requisites.py FIELDS)
    requested_by = fields.ForeignKeyField("models.User", related_name="requisites_changes", null=True, on_delete=fields.SET_NULL)
    status = fields.CharEnumField(RequisitesChangeStatus, max_length=10, default=RequisitesChangeStatus.PENDING)
    decided_at = fields.DatetimeField(null=True)
    # The ticket that asks the provider for it (resolvers/support/tickets.py), closed once decided.
    ticket = fields.ForeignKeyField("models.SupportTicket", related_name="requisites_changes", null=True, on_delete=fields.SET_NULL)

    class Meta:
        table = "requisites_change"
        indexes = (("organization_id", "status"),)


class Manager(Entity):
    """A personal manager the provider assigned to an organization (provider records, entity `manager`)."""

    organization = fields.ForeignKeyField("models.Organization", related_name="managers", on_delete=fields.CASCADE)
    full_name = fields.CharField(max_length=200)
    title = fields.CharField(max_length=200, null=True)  # «Персональный менеджер», «Менеджер по сопровождению»
    phone = fields.CharField(max_length=16, null=True)
    email = fields.CharField(max_length=254, null=True)
    external_id = external_id()

    class Meta:
        table = "manager"
        indexes = (("organization_id", "full_name"),)
