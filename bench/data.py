"""The bench's data set, made with the project's own models and kabinet/bulk_data.py.

One user per workload, each the OWNER of its organizations (all bulk users share one password):
W1 sees 50 organizations of 20 products/contracts/documents each; W2's organization is one of
20 rows; W3's has a 100,000-row ledger; W4's has 20 active sessions and, for the W4 subscribers
that are distinct people, many ADMINs and many USERs (each USER with a grant of one database and
sessions of their own), and 2,000 small organizations of 5 people each for W4's spread; W5's has many ACTIVE sessions to terminate (one per request) and 20
databases to schedule. "Small" twins of W1–W3 serve the SQL-statement counts at a tenth of the size.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from resolvers.identity.passwords import hash_password
from kabinet.bulk_data import seed_many_organizations, seed_organizations_with_people
from models.billing import BalanceTransaction, TransactionKind
from models.cloud import ClientKind, Database, Session, SessionStatus
from models.identity import User
from models.organizations import DatabaseGrant, Membership, Role
from resolvers.cloud import sessions as session_lifecycle
from foundation.ids import to_global_id

PASSWORD = "bench-password-1"


@dataclass(frozen=True)
class Scale:
    w1_organizations: int = 50
    w1_rows: int = 20
    w2_rows: int = 20
    ledger_rows: int = 100_000
    w4_rows: int = 20  # active sessions of the watched organization
    w4_people: int = 1_000  # ADMINs and as many USERs of the watched organization (bench/harness.py sets it)
    w5_rows: int = 100  # → 20 databases
    w5_sessions: int = 40_000  # ACTIVE sessions that terminateSession ends, one per request
    small_w1_organizations: int = 5
    small_w1_rows: int = 2
    small_rows: int = 2
    small_ledger_rows: int = 1_000
    # W4 spread: many small organizations, 5 people each (OWNER, ADMIN, ACCOUNTANT, 2 USERs with a
    # database grant each; bench/harness.py sets it from --w4-spread)
    spread_organizations: int = 2_000


SMOKE = Scale(w1_organizations=4, w1_rows=3, w2_rows=4, ledger_rows=1_000, w4_rows=3, w4_people=20, w5_rows=10, w5_sessions=3_000,
              small_w1_organizations=2, small_w1_rows=2, small_rows=2, small_ledger_rows=300, spread_organizations=10)


@dataclass
class Tenant:
    email: str
    user_pk: str = ""
    organization_pks: list[str] = field(default_factory=list)  # PostGraphile's rowId
    organization_ids: list[str] = field(default_factory=list)  # global ids
    database_ids: list[str] = field(default_factory=list)  # global ids, of the first organization

    @property
    def organization_id(self) -> str:
        return self.organization_ids[0]


@dataclass
class People:
    """The W4 organization's members besides its owner: user pks, and each USER's granted database."""

    admins: list[uuid.UUID] = field(default_factory=list)
    users: list[uuid.UUID] = field(default_factory=list)
    user_databases: list[uuid.UUID] = field(default_factory=list)  # users[i]'s one granted database


@dataclass
class Dataset:
    password: str
    w1: Tenant
    w2: Tenant
    w3: Tenant
    w4: Tenant
    w5: Tenant
    w1_small: Tenant
    w2_small: Tenant
    w3_small: Tenant
    w5_session_ids: list[str] = field(default_factory=list)
    w4_people: People = field(default_factory=People)
    # W4 spread: per organization its pk and its people's (kabinet/bulk_data.py seed_organizations_with_people)
    spread: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("w5_session_ids")
        d.pop("w4_people")
        d.pop("spread")
        return d


async def _tenant(name: str, *, organizations: int, rows: int, seed: int) -> tuple[Tenant, list[uuid.UUID]]:
    email = f"{name}-{uuid.uuid4().hex[:6]}@bench.example.com"
    user = await seed_many_organizations(email, PASSWORD, organizations=organizations, rows=rows, seed=seed)
    org_pks = [m["organization_id"] for m in await Membership.filter(user_id=user.id).order_by("created_at").values("organization_id")]
    databases = await Database.filter(organization_id=org_pks[0]).order_by("name").values_list("id", flat=True)
    tenant = Tenant(
        email, str(user.id), [str(pk) for pk in org_pks], [to_global_id("Organization", pk) for pk in org_pks], [to_global_id("Database", pk) for pk in databases]
    )
    return tenant, org_pks


async def add_ledger(organization_id: uuid.UUID, total: int, batch: int = 5_000) -> None:
    """Grow the organization's ledger to `total` entries, oldest first, in bulk batches."""
    rng = random.Random(7)
    last = await BalanceTransaction.filter(organization_id=organization_id).order_by("-seq").first()
    seq = last.seq if last else 0
    balance = last.balance_after if last else Decimal("0.00")
    now = dt.datetime.now(dt.timezone.utc)
    start = last.occurred_at if last else now - dt.timedelta(days=365)
    step = (now - start) / (total - seq + 1)  # the added entries follow the existing ones, up to now
    first_new = seq
    while seq < total:
        entries = []
        for _ in range(min(batch, total - seq)):
            seq += 1
            amount = Decimal(rng.randrange(-50000, 90000)) / 100
            balance += amount
            entries.append(BalanceTransaction(
                organization_id=organization_id, seq=seq, kind=TransactionKind.TOP_UP if amount > 0 else TransactionKind.CHARGE,
                amount=amount, balance_after=balance, description=f"Операция {seq}",
                occurred_at=start + step * (seq - first_new),
            ))
        await BalanceTransaction.bulk_create(entries)


async def add_sessions(organization_id: uuid.UUID, count: int, batch: int = 5_000) -> list[str]:
    """`count` ACTIVE sessions spread over the organization's databases: their global ids."""
    databases = await Database.filter(organization_id=organization_id).values_list("id", flat=True)
    now = dt.datetime.now(dt.timezone.utc)
    ids: list[str] = []
    for start in range(0, count, batch):
        sessions = await session_lifecycle.seed_many([
            dict(id=uuid.uuid4(), organization_id=organization_id, database_id=databases[i % len(databases)],
                 user_name=f"Бенч {i}", client_kind=ClientKind.RDP, host="PC-BENCH",
                 started_at=now - dt.timedelta(seconds=i + 60), status=SessionStatus.ACTIVE)
            for i in range(start, min(count, start + batch))
        ])
        ids.extend(to_global_id("Session", s.id) for s in sessions)
    return ids


async def add_people(organization_id: uuid.UUID, count: int, batch: int = 5_000) -> People:
    """`count` ADMINs and `count` USERs of the organization, in bulk (one password hash for all):
    each USER has a grant of one of its databases (in turn) and an ENDED session of their own there,
    and the organization's live sessions become the first USERs' own (the live list keeps its size)."""
    databases = await Database.filter(organization_id=organization_id).order_by("name").values_list("id", flat=True)
    password_hash = hash_password(PASSWORD)
    tag = uuid.uuid4().hex[:6]
    now = dt.datetime.now(dt.timezone.utc)
    people = People()
    for role, pks in ((Role.ADMIN, people.admins), (Role.USER, people.users)):
        for start in range(0, count, batch):
            users = [User(id=uuid.uuid4(), email=f"w4-{role.value.lower()}-{i}-{tag}@bench.example.com",
                          full_name=f"Бенч {role.value} {i}", password_hash=password_hash, email_verified=True)
                     for i in range(start, min(count, start + batch))]
            await User.bulk_create(users)
            memberships = [Membership(id=uuid.uuid4(), user_id=u.id, organization_id=organization_id, role=role) for u in users]
            await Membership.bulk_create(memberships)
            pks.extend(u.id for u in users)
            if role is Role.USER:
                granted = [databases[(start + j) % len(databases)] for j in range(len(users))]
                await DatabaseGrant.bulk_create([DatabaseGrant(id=uuid.uuid4(), membership_id=m.id, database_id=d)
                                                 for m, d in zip(memberships, granted)])
                await session_lifecycle.seed_many([
                    dict(id=uuid.uuid4(), organization_id=organization_id, database_id=d, user_id=u.id,
                         user_name=u.full_name, client_kind=ClientKind.THIN_CLIENT, host="PC-BENCH", started_at=now - dt.timedelta(days=1),
                         ended_at=now - dt.timedelta(hours=20), status=SessionStatus.ENDED)
                    for u, d in zip(users, granted)
                ])
                people.user_databases.extend(granted)
    live = await Session.filter(organization_id=organization_id, status=SessionStatus.ACTIVE).order_by("started_at").values_list("id", flat=True)
    for i, session_pk in enumerate(live[:count]):
        await Session.filter(id=session_pk).update(user_id=people.users[i], database_id=people.user_databases[i])
    return people


async def seed(scale: Scale, log) -> Dataset:
    """Every workload's data in the connected database (Tortoise already initialised)."""
    w1, _ = await _tenant("w1", organizations=scale.w1_organizations, rows=scale.w1_rows, seed=1)
    log(f"  W1: {scale.w1_organizations} organizations × {scale.w1_rows} products, contracts, documents")
    w2, _ = await _tenant("w2", organizations=1, rows=scale.w2_rows, seed=2)
    w3, (w3_org,) = await _tenant("w3", organizations=1, rows=scale.w2_rows, seed=3)
    await add_ledger(w3_org, scale.ledger_rows)
    log(f"  W3: a ledger of {scale.ledger_rows:,} entries")
    w4, (w4_org,) = await _tenant("w4", organizations=1, rows=scale.w4_rows, seed=4)
    w4_people = await add_people(w4_org, scale.w4_people)
    log(f"  W4: {scale.w4_people:,} ADMINs and {scale.w4_people:,} USERs of the watched organization")
    spread: list[dict] = []
    if scale.spread_organizations:
        spread = await seed_organizations_with_people(scale.spread_organizations, PASSWORD)
        log(f"  W4 spread: {scale.spread_organizations:,} organizations of 5 people each (OWNER, ADMIN, ACCOUNTANT, 2 USERs)")
    w5, (w5_org,) = await _tenant("w5", organizations=1, rows=scale.w5_rows, seed=5)
    w5_sessions = await add_sessions(w5_org, scale.w5_sessions)
    log(f"  W5: {scale.w5_sessions:,} active sessions to terminate, {len(w5.database_ids)} databases")
    w1_small, _ = await _tenant("w1s", organizations=scale.small_w1_organizations, rows=scale.small_w1_rows, seed=11)
    w2_small, _ = await _tenant("w2s", organizations=1, rows=scale.small_rows, seed=12)
    w3_small, (w3s_org,) = await _tenant("w3s", organizations=1, rows=scale.small_rows, seed=13)
    await add_ledger(w3s_org, scale.small_ledger_rows)
    return Dataset(PASSWORD, w1, w2, w3, w4, w5, w1_small, w2_small, w3_small, w5_sessions, w4_people, spread)
