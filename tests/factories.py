"""Data of a test's own, so that tests which change things never disturb the demo data set.

Each function creates rows with the models and returns them; logins are unique per call.
"""

from __future__ import annotations

import datetime as dt
import uuid

from resolvers.identity.passwords import hash_password
from models.cloud import ClientKind, Database, Session, SessionStatus
from models.identity import User
from models.organizations import Membership, ModerationStatus, Organization, OrganizationKind, Role  # noqa: F401 (Role re-exported for tests)
from models.updates import UpdateMode, UpdateSchedule

PASSWORD = "factory-password"
_PASSWORD_HASH = hash_password(PASSWORD)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def unique_phone() -> str:
    return "+79" + str(uuid.uuid4().int)[:9]


async def create_user(email: str | None = None, *, full_name: str = "Тестовый Пользователь", phone: str | None = None) -> User:
    """An account whose addresses are proven (both logins)."""
    return await User.create(
        email=email or unique_email(), phone=phone, full_name=full_name, password_hash=_PASSWORD_HASH,
        email_verified=True, phone_verified=phone is not None,
    )


async def create_pending_sign_up(email: str | None = None, phone: str | None = None) -> User:
    """A sign-up waiting for its code: its addresses given, none proven (resolvers/identity/addresses.py)."""
    return await User.create(
        unproven_email=email, unproven_phone=phone, full_name="Незавершённая Регистрация",
        password_hash=_PASSWORD_HASH, is_active=False,
    )


async def create_organization(name: str | None = None, *, inn: str | None = None) -> Organization:
    return await Organization.create(
        name=name or f"ООО «Тест {uuid.uuid4().hex[:6]}»", inn=inn or str(uuid.uuid4().int)[:10],
        kind=OrganizationKind.LEGAL_ENTITY, moderation_status=ModerationStatus.APPROVED,
        code=f"T{uuid.uuid4().hex[:10]}",
    )


async def add_member(organization: Organization, user: User, role: Role) -> Membership:
    return await Membership.create(organization=organization, user=user, role=role)


async def create_team(*roles: Role) -> tuple[Organization, dict[Role, User]]:
    """An organization with one member per role given (an OWNER always)."""
    organization = await create_organization()
    users = {}
    for role in (Role.OWNER, *[r for r in roles if r != Role.OWNER]):
        users[role] = await create_user(unique_email(role.value.lower()))
        await add_member(organization, users[role], role)
    return organization, users


async def create_database(organization: Organization, *, typical: bool = True, name: str = "База") -> Database:
    database = await Database.create(
        organization=organization, name=name, configuration="Бухгалтерия предприятия" if typical else "Своя конфигурация",
        version="3.0.150.20", is_typical=typical, size_mb=512,
    )
    await UpdateSchedule.create(database=database, mode=UpdateMode.DISABLED)
    return database


async def create_session(database: Database, *, user: User | None = None, user_name: str = "Бухгалтер") -> Session:
    return await Session.create(
        organization_id=database.organization_id, database=database, user=user, user_name=user_name,
        client_kind=ClientKind.THIN_CLIENT, host="PC-01",
        started_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5), status=SessionStatus.ACTIVE,
    )
