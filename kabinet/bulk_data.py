"""A scaled data set, made with the models: many organizations of one user, many rows each.

The benchmarks and the constant-SQL test use it to see that a query's cost in statements does
not grow with the data.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from tortoise.transactions import in_transaction

from resolvers.identity.passwords import hash_password
from foundation.clock import utcnow
from models.billing import BalanceTransaction, Document, DocumentKind, PrepaidService, TransactionKind
from models.cloud import ClientKind, Database, SessionStatus
from models.identity import User
from models.organizations import DatabaseGrant, Membership, Organization, OrganizationKind, ModerationStatus, Role
from models.products import Contract, ContractKind, Product, ProductCategory
from models.updates import UpdateMode, UpdateSchedule
from resolvers.cloud import subscriptions as cloud_subscriptions
from resolvers.cloud import sessions


async def seed_many_organizations(
    email: str, password: str, *, organizations: int, rows: int, seed: int = 1
) -> User:
    """`email` owns `organizations` organizations with `rows` products, contracts, ledger
    entries, documents and sessions each, and `max(1, rows // 5)` databases."""
    rng = random.Random(seed)
    now = utcnow()
    today = now.date()
    async with in_transaction():
        user = await User.create(
            email=email, full_name=f"Bulk owner {email}", password_hash=hash_password(password), email_verified=True
        )
        for n in range(organizations):
            org = await Organization.create(
                name=f"ООО «Тест {seed}-{n:04d}»", inn=str(uuid.uuid4().int)[-10:],
                kind=OrganizationKind.LEGAL_ENTITY, moderation_status=ModerationStatus.APPROVED,
                code=f"B{seed}{uuid.uuid4().hex[:10]}",
            )
            await Membership.create(user=user, organization=org, role=Role.OWNER)
            contracts = [
                Contract(id=uuid.uuid4(), organization=org, kind=ContractKind.ITS, number=f"ИТС-{n}-{i}",
                         starts_on=today - dt.timedelta(days=300), ends_on=today + dt.timedelta(days=65))
                for i in range(rows)
            ]
            await Contract.bulk_create(contracts)
            await Product.bulk_create([
                Product(organization=org, name=f"1С:Продукт {i:04d}", category=ProductCategory.LOCAL_1C,
                        workplaces=5, contract_id=contracts[i].id, updates_available_until=today + dt.timedelta(days=65))
                for i in range(rows)
            ])
            balance = Decimal("0.00")
            entries = []
            for i in range(rows):
                amount = Decimal(rng.randrange(-50000, 90000)) / 100
                balance += amount
                entries.append(BalanceTransaction(
                    organization=org, seq=i + 1, kind=TransactionKind.TOP_UP if amount > 0 else TransactionKind.CHARGE,
                    amount=amount, balance_after=balance, description=f"Операция {i}",
                    occurred_at=now - dt.timedelta(hours=rows - i),
                ))
            await BalanceTransaction.bulk_create(entries)
            await PrepaidService.bulk_create([
                PrepaidService(organization=org, name=f"Пакет {i}", unit="час", total=Decimal("10.00"),
                               used=Decimal("2.50"), valid_until=today + dt.timedelta(days=90))
                for i in range(2)
            ])
            await Document.bulk_create([
                Document(organization=org, kind=DocumentKind.INVOICE, number=f"СЧ-{n}-{i}",
                         issued_on=today - dt.timedelta(days=40 + i), period=None, amount=Decimal("1000.00"),
                         visible_from=today - dt.timedelta(days=40 + i))
                for i in range(rows)
            ])
            await cloud_subscriptions.open_subscription(
                org.id, tariff="Облако", sessions_limit=10, databases_limit=5,
                starts_on=today.replace(day=1), ends_on=today.replace(day=1) + dt.timedelta(days=27),
            )
            databases = [
                Database(id=uuid.uuid4(), organization=org, name=f"База {i}", configuration="Бухгалтерия предприятия",
                         version="3.0.150.20", is_typical=True, size_mb=1024)
                for i in range(max(1, rows // 5))
            ]
            await Database.bulk_create(databases)
            await UpdateSchedule.bulk_create([
                UpdateSchedule(database_id=d.id, mode=UpdateMode.MONTHLY, day_of_month=15, time_of_day="03:00")
                for d in databases
            ])
            await sessions.seed_many([
                dict(organization=org, database_id=databases[i % len(databases)].id, user=user if i == 0 else None,
                     user_name=f"Пользователь {i}", client_kind=ClientKind.THIN_CLIENT,
                     started_at=now - dt.timedelta(minutes=i + 1), status=SessionStatus.ACTIVE)
                for i in range(rows)
            ])
    return user


async def seed_organizations_with_people(
    count: int, password: str, *, users_per_organization: int = 2, live_sessions: int = 2, batch: int = 2_000,
    tag: str | None = None,
) -> list[dict]:
    """`count` organizations, each with its own OWNER, ADMIN and ACCOUNTANT and `users_per_organization`
    USERs (each with a grant of a database of their own, and an ACTIVE session there), two databases and
    `live_sessions` ACTIVE sessions of nobody in particular: many small tenants, made in bulk batches
    (a few statements per `batch` organizations; all people share one password hash).

    Per organization: {"organization", "owner", "admin", "accountant", "users": [(user, database)],
    "databases": [..]} (primary keys)."""
    password_hash = hash_password(password)
    tag = tag or uuid.uuid4().hex[:6]
    now = utcnow()
    roles = (Role.OWNER, Role.ADMIN, Role.ACCOUNTANT)
    made: list[dict] = []
    for start in range(0, count, batch):
        numbers = range(start, min(count, start + batch))
        orgs = [Organization(id=uuid.uuid4(), name=f"ООО «Арендатор {n:05d}»", inn=str(uuid.uuid4().int)[-10:],
                             kind=OrganizationKind.LEGAL_ENTITY, moderation_status=ModerationStatus.APPROVED,
                             code=f"S{tag}{n:06d}") for n in numbers]
        users: list[User] = []
        memberships: list[Membership] = []
        databases: list[Database] = []
        grants: list[DatabaseGrant] = []
        live: list[dict] = []
        for n, org in zip(numbers, orgs):
            entry = {"organization": org.id, "users": [], "databases": []}
            org_databases = [Database(id=uuid.uuid4(), organization_id=org.id, name=f"База {i}", configuration="Бухгалтерия предприятия",
                                      version="3.0.150.20", is_typical=True, size_mb=1024) for i in range(2)]
            databases += org_databases
            entry["databases"] = [d.id for d in org_databases]
            people = [*roles, *[Role.USER] * users_per_organization]
            for i, role in enumerate(people):
                user = User(id=uuid.uuid4(), email=f"t{n}-{role.value.lower()}-{i}-{tag}@bench.example.com",
                            full_name=f"Арендатор {n} {role.value} {i}", password_hash=password_hash, email_verified=True)
                membership = Membership(id=uuid.uuid4(), user_id=user.id, organization_id=org.id, role=role)
                users.append(user)
                memberships.append(membership)
                if role is Role.USER:
                    database = org_databases[len(entry["users"]) % len(org_databases)]
                    grants.append(DatabaseGrant(id=uuid.uuid4(), membership_id=membership.id, database_id=database.id))
                    entry["users"].append((user.id, database.id))
                    live.append(dict(id=uuid.uuid4(), organization_id=org.id, database_id=database.id, user_id=user.id,
                                     user_name=user.full_name, client_kind=ClientKind.THIN_CLIENT, host="PC-BENCH",
                                     started_at=now - dt.timedelta(minutes=5), status=SessionStatus.ACTIVE))
                else:
                    entry[role.value.lower()] = user.id
            live += [dict(id=uuid.uuid4(), organization_id=org.id, database_id=org_databases[i % 2].id,
                          user_name=f"Пользователь {i}", client_kind=ClientKind.RDP, host="PC-BENCH",
                          started_at=now - dt.timedelta(minutes=i + 10), status=SessionStatus.ACTIVE)
                     for i in range(live_sessions)]
            made.append(entry)
        async with in_transaction():
            await Organization.bulk_create(orgs)
            await User.bulk_create(users)
            await Membership.bulk_create(memberships)
            await Database.bulk_create(databases)
            await DatabaseGrant.bulk_create(grants)
            await sessions.seed_many(live)
    return made
