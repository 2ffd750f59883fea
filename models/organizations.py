"""Organizations (subscribers), who belongs to them, and invitations to join."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity
from models.provider import external_id
from models.requisites import RequisitesSource


class Role(str, Enum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    ACCOUNTANT = "ACCOUNTANT"
    USER = "USER"


class OrganizationKind(str, Enum):
    LEGAL_ENTITY = "LEGAL_ENTITY"
    SOLE_PROPRIETOR = "SOLE_PROPRIETOR"
    INDIVIDUAL = "INDIVIDUAL"


class ModerationStatus(str, Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class InviteStatus(str, Enum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Organization(Entity):
    """A subscriber. Per INN at most one APPROVED organization (the customer: the one the provider's
    records sent, or a claim staff or a known contact approved) and at most one claim awaiting
    moderation (PENDING): a tenant's claim of an INN the provider also sent stands beside the
    provider's organization until it is approved (it then folds into it) or rejected."""

    name = fields.CharField(max_length=300)
    inn = fields.CharField(max_length=12)
    kind = fields.CharEnumField(OrganizationKind, max_length=20)
    moderation_status = fields.CharEnumField(ModerationStatus, max_length=10, default=ModerationStatus.PENDING)
    code = fields.CharField(max_length=20, unique=True)
    moderation_note = fields.CharField(max_length=500, null=True)  # why it was rejected
    kpp = fields.CharField(max_length=9, null=True)  # requisites, from the provider's accounting
    ogrn = fields.CharField(max_length=15, null=True)
    legal_address = fields.CharField(max_length=500, null=True)
    # The rest of the requisites (resolvers/organizations/requisites.py): whose they are decides what a customer's change does.
    legal_name = fields.CharField(max_length=500, null=True)  # full name, e.g. Общество с ограниченной ответственностью «Ромашка»
    postal_address = fields.CharField(max_length=500, null=True)
    bank_name = fields.CharField(max_length=200, null=True)
    bic = fields.CharField(max_length=9, null=True)
    correspondent_account = fields.CharField(max_length=20, null=True)
    settlement_account = fields.CharField(max_length=20, null=True)
    requisites_source = fields.CharEnumField(RequisitesSource, max_length=10, null=True)  # None: nobody entered any
    requisites_confirmed_at = fields.DatetimeField(null=True)  # the provider's record last set or confirmed them
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "organization"
        unique_together = (("inn", "moderation_status"),)  # one customer, one open claim, one rejected claim


class Membership(Entity):
    user = fields.ForeignKeyField("models.User", related_name="memberships", on_delete=fields.CASCADE)
    organization = fields.ForeignKeyField("models.Organization", related_name="memberships", on_delete=fields.CASCADE)
    role = fields.CharEnumField(Role, max_length=12)
    position = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "membership"
        unique_together = (("user", "organization"),)
        indexes = (("organization_id", "created_at"),)


class DatabaseGrant(Entity):
    """A cloud database a USER member may open."""

    membership = fields.ForeignKeyField("models.Membership", related_name="grants", on_delete=fields.CASCADE)
    database = fields.ForeignKeyField("models.Database", related_name="grants", on_delete=fields.CASCADE)

    class Meta:
        table = "database_grant"
        unique_together = (("membership", "database"),)


class Invite(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="invites", on_delete=fields.CASCADE)
    email = fields.CharField(max_length=254, null=True)
    phone = fields.CharField(max_length=16, null=True)
    role = fields.CharEnumField(Role, max_length=12)
    status = fields.CharEnumField(InviteStatus, max_length=10, default=InviteStatus.PENDING)
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    invited_by = fields.ForeignKeyField("models.User", related_name="invites_sent", null=True, on_delete=fields.SET_NULL)
    accepted_at = fields.DatetimeField(null=True)
    # A member the owner created (resolvers/organizations/people.py create_member): the name the owner gave and the
    # hash of the generated password the letter carries; signing in with it accepts the invitation.
    full_name = fields.CharField(max_length=200, null=True)
    password_hash = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "invite"
        indexes = (("organization_id", "status", "created_at"),)


class InviteDatabase(Entity):
    """A database the invitee will be granted on accepting."""

    invite = fields.ForeignKeyField("models.Invite", related_name="invite_databases", on_delete=fields.CASCADE)
    database = fields.ForeignKeyField("models.Database", related_name="invite_databases", on_delete=fields.CASCADE)

    class Meta:
        table = "invite_database"
        unique_together = (("invite", "database"),)


class JoinRequestStatus(str, Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class JoinRequest(Entity):
    """A user asks to join an organization that already exists (they added its INN), an admin decides."""

    organization = fields.ForeignKeyField("models.Organization", related_name="join_requests", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="join_requests", on_delete=fields.CASCADE)
    position = fields.CharField(max_length=200, null=True)
    status = fields.CharEnumField(JoinRequestStatus, max_length=10, default=JoinRequestStatus.PENDING)
    decided_by = fields.ForeignKeyField("models.User", related_name="join_decisions", null=True, on_delete=fields.SET_NULL)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "join_request"
        indexes = (("organization_id", "status", "created_at"),)


class KnownContact(Entity):
    """A phone the provider knows as a contact of a taxpayer (from its own records): a user whose
    verified phone is one of these may add that organization without manual moderation."""

    inn = fields.CharField(max_length=12)
    phone = fields.CharField(max_length=16)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "known_contact"
        unique_together = (("inn", "phone"),)
