"""What every model shares."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Entity(Model):
    """A row with a UUID primary key and its creation time."""

    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        abstract = True


def money(**kwargs):
    """A Decimal amount with 2 places (roubles and kopecks)."""
    return fields.DecimalField(max_digits=14, decimal_places=2, **kwargs)
