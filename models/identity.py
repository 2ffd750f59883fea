"""People who sign in, their refresh tokens and the login lockouts (per login, per client address)."""

from __future__ import annotations

from enum import Enum

from tortoise import fields
from tortoise.models import Model

from models.base import Entity


class User(Entity):
    # `email` and `phone` hold only addresses proven by a code: the logins, unique. An address given
    # but not yet proven waits in `unproven_email` / `unproven_phone`: it finds nobody and reserves
    # nothing (resolvers/identity/addresses.py).
    email = fields.CharField(max_length=254, null=True, unique=True)  # proven, stored lower-case
    phone = fields.CharField(max_length=16, null=True, unique=True)  # proven, +7XXXXXXXXXX
    unproven_email = fields.CharField(max_length=254, null=True, db_index=True)
    unproven_phone = fields.CharField(max_length=16, null=True, db_index=True)
    full_name = fields.CharField(max_length=200)
    password_hash = fields.CharField(max_length=200)
    is_staff = fields.BooleanField(default=False, db_default=False)
    # True exactly when `email` (`phone`) is set, since migration 0013 (kept: dropping a column
    # rebuilds SQLite's user table, which every other table references).
    email_verified = fields.BooleanField(default=False, db_default=False)
    phone_verified = fields.BooleanField(default=False, db_default=False)
    is_active = fields.BooleanField(default=True, db_default=True)  # False until a sign-up is confirmed
    # Signed in with a password someone else chose (a member the owner created, resolvers/organizations/people.py):
    # nothing but changing it is allowed until it is changed.
    must_change_password = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "user"


class RefreshToken(Entity):
    """One opaque refresh token: `login_id` groups the chain that rotation produces."""

    user = fields.ForeignKeyField("models.User", related_name="refresh_tokens", on_delete=fields.CASCADE)
    login_id = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"
        # every process reads the logins ended since its last read every few seconds (resolvers/identity/sign_ins.py)
        indexes = (("revoked_at",),)


class LoginThrottle(Model):
    """Wrong-password count per login string, known or not, so a lockout reveals nothing."""

    login = fields.CharField(max_length=254, primary_key=True)
    failures = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "login_throttle"


class ClientThrottle(Model):
    """Wrong passwords from one client address in the current window, whatever the logins tried."""

    address = fields.CharField(max_length=64, primary_key=True)
    failures = fields.IntField(default=0)
    window_ends = fields.DatetimeField(null=True)

    class Meta:
        table = "client_throttle"


class CodePurpose(str, Enum):
    SIGN_UP = "SIGN_UP"
    PASSWORD_RESET = "PASSWORD_RESET"
    EMAIL_CHANGE = "EMAIL_CHANGE"
    MEMBER_REMOVAL = "MEMBER_REMOVAL"
    PHONE_CHANGE = "PHONE_CHANGE"


class VerificationCode(Entity):
    """A short code sent by e-mail or SMS to confirm an action: stored hashed, expiring, attempts limited."""

    purpose = fields.CharEnumField(CodePurpose, max_length=20)
    user = fields.ForeignKeyField("models.User", related_name="verification_codes", null=True, on_delete=fields.CASCADE)
    target = fields.CharField(max_length=254)  # where the code was sent: an e-mail or a phone
    code_hash = fields.CharField(max_length=64)
    expires_at = fields.DatetimeField()
    attempts = fields.IntField(default=0, db_default=0)
    used_at = fields.DatetimeField(null=True)
    payload = fields.JSONField(default=dict)  # what the confirmed action needs (e.g. the membership to remove)
    client_address = fields.CharField(max_length=64, null=True)  # who asked for it: the per-client sending limit

    class Meta:
        table = "verification_code"
        indexes = (("purpose", "target", "created_at"), ("client_address", "created_at"))
