"""A new organization (subscriber) and its subscriber code: 6 random digits, free, unique. Whoever
creates one — a customer adding an INN, the provider's accounting sending it — creates it here."""

from __future__ import annotations

import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.organizations import ModerationStatus, Organization, OrganizationKind


async def new_organization(
    name: str, inn: str, kind: OrganizationKind, status: ModerationStatus, **requisites: Any
) -> Organization | None:
    """Create it with a free 6-digit subscriber code; None if someone added this INN a moment ago
    (with this status: an INN has one customer and one claim, models/organizations.py).
    `requisites`: further columns (kpp, ogrn, legal_address, external_id)."""
    for _ in range(10):
        code = str(100000 + secrets.randbelow(900000))
        if await Organization.exists(code=code):
            continue
        try:
            async with in_transaction():  # a savepoint: a lost race leaves the outer transaction usable
                return await Organization.create(
                    name=name, inn=inn, kind=kind, moderation_status=status, code=code, **requisites
                )
        except IntegrityError:
            if await Organization.exists(inn=inn, moderation_status=status):
                return None
    raise RuntimeError("no free subscriber code found")
