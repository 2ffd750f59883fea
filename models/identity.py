"""People who sign in, their refresh tokens and the login lockout."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.base import Entity


class User(Entity):
    email = fields.CharField(max_length=254, null=True, unique=True)  # stored lower-case
    phone = fields.CharField(max_length=16, null=True, unique=True)  # +7XXXXXXXXXX
    full_name = fields.CharField(max_length=200)
    password_hash = fields.CharField(max_length=200)
    is_staff = fields.BooleanField(default=False, db_default=False)

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


class LoginThrottle(Model):
    """Wrong-password count per login string, known or not, so a lockout reveals nothing."""

    login = fields.CharField(max_length=254, primary_key=True)
    failures = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "login_throttle"
