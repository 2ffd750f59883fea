"""The demo data set's facts (its people, sessions, supplier, versions) and building blocks: months and
moments derived from `today`, the ledger kept in step with its balance, people, documents, databases and
sessions. kabinet/demo/__init__.py seeds the set from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal


from foundation import clock
from models.billing import BalanceTransaction, Charge, ChargeKind, Document, DocumentKind, TransactionKind
from models.cloud import ClientKind, Database, SessionStatus
from models.identity import User
from models.organizations import Membership, Organization, Role
from models.updates import UpdateMode, UpdateSchedule
from resolvers.billing import publication as document_publication
from resolvers.cloud import sessions
from resolvers.billing import supplier as suppliers
from resolvers.billing.documents import document_number, document_visible_from, period_label

DEMO_PASSWORD = "kabinet-demo"
UTC = timezone.utc
CURRENCY = "RUB"
MONEY = Decimal("0.01")
PUBLISHED_MONTHS = 3
ACCOUNTING = "Бухгалтерия предприятия"
TRADE = "Управление торговлей"
INSTALLED_VERSION = "3.0.150.20"
NEWER_VERSION = "3.0.152.15"
WORKPLACE_PRICE = Decimal("1650.00")
CONSULTING_HOUR_PRICE = Decimal("1800.00")

# The demo's supplier says it is one, on every document and in its QR code (whose Name a bank app
# shows); its bank does not exist (BIC region 00), so no payment can reach anyone. Check digits right.
DEMO_SUPPLIER = suppliers.supplier_from({
    "name": "ДЕМО: ООО «Облачный Партнёр» (демонстрационные реквизиты, не для оплаты)",
    "inn": "7701234560", "kpp": "770101001", "ogrn": "1027700123450",
    "address": "123456, г. Москва, ул. Примерная, д. 1 (демо)",
    "bank_name": "ДЕМО-БАНК (не существует)", "bic": "040000999",
    "correspondent_account": "30101810500000000999", "account": "40702810600000012345",
    "vat": "20%", "director": "Демонстрационный А. А.", "director_title": "Генеральный директор",
    "accountant": "Примерная Б. Б.",
})

# (e-mail, full name, phone, role, position)
ROMASHKA_PEOPLE = (
    ("owner@romashka.example", "Смирнов Андрей Петрович", "+79161234501", Role.OWNER, "Генеральный директор"),
    ("admin@romashka.example", "Кузнецов Дмитрий Сергеевич", "+79161234502", Role.ADMIN, "Системный администратор"),
    ("buh@romashka.example", "Иванова Марина Александровна", "+79161234503", Role.ACCOUNTANT, "Главный бухгалтер"),
    ("user@romashka.example", "Петрова Екатерина Игоревна", "+79161234504", Role.USER, "Менеджер по продажам"),
)
VASILEK_PEOPLE = (
    ("owner@vasilek.example", "Васильев Игорь Николаевич", "+79031234505", Role.OWNER, "Индивидуальный предприниматель"),
)

# Active sessions: (database key, member e-mail or None for a cluster-only user, user name, client, host,
# minutes before the moment of seeding)
ROMASHKA_SESSIONS = (
    ("accounting", "buh@romashka.example", None, ClientKind.THIN_CLIENT, "PC-BUH-01", 470),
    ("accounting", None, "Бухгалтер-кассир", ClientKind.THIN_CLIENT, "PC-BUH-02", 455),
    ("trade", None, "Оператор склада", ClientKind.THIN_CLIENT, "PC-SKLAD-01", 430),
    ("trade", "admin@romashka.example", None, ClientKind.RDP, "PC-IT-01", 395),
    ("trade", None, "Кладовщик", ClientKind.RDP, "PC-SKLAD-02", 320),
    ("accounting", "owner@romashka.example", None, ClientKind.WEB_CLIENT, "NB-DIRECTOR", 240),
    ("trade", None, "Менеджер по закупкам", ClientKind.WEB_CLIENT, "PC-ZAKUP-01", 185),
    ("accounting", "user@romashka.example", None, ClientKind.WEB_CLIENT, "PC-SALES-02", 75),
    ("accounting", None, "Кассир", ClientKind.THIN_CLIENT, "PC-KASSA-01", 20),
)
VASILEK_SESSIONS = (
    ("accounting", "owner@vasilek.example", None, ClientKind.WEB_CLIENT, "NB-VASILEV", 140),
    ("accounting", None, "Продавец", ClientKind.THIN_CLIENT, "PC-MAGAZIN-01", 35),
)
LONGEST_SESSION_MINUTES = max(spec[-1] for spec in ROMASHKA_SESSIONS + VASILEK_SESSIONS)
# Connection history: (days ago, database key, member e-mail or None, user name, client, host, how it ended)
ROMASHKA_HISTORY = (
    (1, "accounting", "buh@romashka.example", None, ClientKind.THIN_CLIENT, "PC-BUH-01", SessionStatus.ENDED),
    (1, "trade", None, "Оператор склада", ClientKind.THIN_CLIENT, "PC-SKLAD-01", SessionStatus.TERMINATED),
    (2, "accounting", "user@romashka.example", None, ClientKind.WEB_CLIENT, "PC-SALES-02", SessionStatus.ENDED),
    (3, "trade", "admin@romashka.example", None, ClientKind.RDP, "PC-IT-01", SessionStatus.ENDED),
)


# ---------------------------------------------------------------------------------------- time


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month: the unit of charges, invoices and acts."""

    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.shift(1).first_day - timedelta(days=1)

    @property
    def period(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return period_label(self.period)

    def is_published(self, today: date) -> bool:
        return document_visible_from(DocumentKind.INVOICE, self.period, self.last_day) <= today


def billing_months(today: date) -> list[Month]:
    """The 3 most recent published months, oldest first, then the one whose documents wait for the 10th.

    Before the 10th that last one is the previous month; from the 10th on it is the current one.
    """
    latest = Month.of(today).shift(-1)
    if not latest.is_published(today):
        latest = latest.shift(-1)
    return [latest.shift(offset) for offset in range(1 - PUBLISHED_MONTHS, 2)]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def session_start(today: date, minutes_ago: int) -> datetime:
    """When an active session began: `minutes_ago` before now, or before 17:30 Moscow time of `today`
    if that is earlier; in the small hours the offsets shrink so that every session is still of `today`."""
    midnight = at(today, 0)
    end = min(clock.utcnow(), at(today, 14, 30))
    if end <= midnight:  # `today` lies ahead of the clock: take its working day as it is
        end = at(today, 14, 30)
    offset = timedelta(minutes=minutes_ago)
    room = (end - midnight) / timedelta(minutes=LONGEST_SESSION_MINUTES + 1)
    return end - offset * min(1.0, room)


def money(value: Decimal | str | int) -> Decimal:
    return Decimal(value).quantize(MONEY, ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------- ledger


@dataclass
class Ledger:
    """Entries added in any order; `save` numbers them by time and keeps the running balance."""

    entries: list[tuple[datetime, TransactionKind, Decimal, str, Document | None]] = field(default_factory=list)

    def add(
        self, occurred_at: datetime, kind: TransactionKind, amount: Decimal | str, description: str,
        document: Document | None = None,
    ) -> None:
        self.entries.append((occurred_at, kind, money(amount), description, document))

    def charge_invoices(self, invoices: dict[Month, Document], today: date) -> None:
        """Each finished month is debited on its last evening; the entry names a published invoice."""
        for month, invoice in invoices.items():
            if month.last_day >= today:
                continue
            if invoice.visible_from <= today:
                self.add(at(month.last_day, 20), TransactionKind.CHARGE, -invoice.amount,
                         f"Списание за услуги за {month.label} по счёту № {invoice.number}", invoice)
            else:
                self.add(at(month.last_day, 20), TransactionKind.CHARGE, -invoice.amount,
                         f"Списание за услуги за {month.label}")

    async def save(self, organization: Organization) -> Decimal:
        entries = sorted(self.entries, key=lambda entry: entry[0])
        if len({entry[0] for entry in entries}) != len(entries):
            raise ValueError("two ledger entries at one moment would make their order ambiguous")
        balance = Decimal("0.00")
        rows = []
        for seq, (occurred_at, kind, amount, description, document) in enumerate(entries, start=1):
            balance = money(balance + amount)
            rows.append(BalanceTransaction(
                organization=organization, seq=seq, kind=kind, amount=amount, balance_after=balance,
                description=description, occurred_at=occurred_at, document=document,
            ))
        await BalanceTransaction.bulk_create(rows)
        return balance


# ---------------------------------------------------------------------------------------- building blocks


@dataclass(frozen=True)
class ChargeLine:
    kind: ChargeKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    database: Database | None = None


async def add_people(
    organization: Organization, people: tuple, password_hash: str,
) -> tuple[dict[str, User], dict[str, Membership]]:
    users: dict[str, User] = {}
    memberships: dict[str, Membership] = {}
    for email, full_name, phone, role, position in people:
        # the demo's people: their addresses taken as proven (resolvers/identity/addresses.py), so they are logins
        users[email] = await User.create(
            email=email, phone=phone, full_name=full_name, password_hash=password_hash,
            email_verified=True, phone_verified=phone is not None,
        )
        memberships[email] = await Membership.create(
            user=users[email], organization=organization, role=role, position=position,
        )
    return users, memberships


async def add_document(
    organization: Organization, kind: DocumentKind, number: str, issued_on: date, period: str | None,
    lines: list[tuple[str, Decimal, Decimal]], total: Decimal,
) -> Document:
    """The document published as the publisher does it: its row and its PDF, the demo supplier on it."""
    content = document_publication.render(DEMO_SUPPLIER, organization, kind, number, issued_on, period, lines, total, CURRENCY)
    return await document_publication.publish_document(
        organization.id, kind, number, issued_on, period, total, content, CURRENCY, announce=False,
    )


async def bill_month(organization: Organization, month: Month, lines: list[ChargeLine]) -> Document:
    """The month's charges, and the invoice and act that sum them; returns the invoice."""
    charges = [
        Charge(
            organization=organization, kind=line.kind, period=month.period, description=line.description,
            quantity=line.quantity, unit_price=line.unit_price, amount=money(line.quantity * line.unit_price),
            database=line.database,
        )
        for line in lines
    ]
    await Charge.bulk_create(charges)
    total = money(sum((charge.amount for charge in charges), Decimal("0")))
    document_lines = [(charge.description, charge.quantity, charge.unit_price) for charge in charges]
    documents = {
        kind: await add_document(
            organization, kind, document_number(kind.value, month.period, organization.code), month.last_day, month.period,
            document_lines, total,
        )
        for kind in (DocumentKind.INVOICE, DocumentKind.ACT)
    }
    return documents[DocumentKind.INVOICE]


async def add_database(
    organization: Organization, name: str, configuration: str, version: str, is_typical: bool, size_mb: int,
    schedule: dict | None = None,
) -> Database:
    database = await Database.create(
        organization=organization, name=name, configuration=configuration, version=version,
        is_typical=is_typical, size_mb=size_mb,
    )
    await UpdateSchedule.create(database=database, **(schedule or {"mode": UpdateMode.DISABLED}))
    return database


async def add_sessions(
    organization: Organization, specs: tuple, databases: dict[str, Database], users: dict[str, User], today: date,
) -> None:
    for database_key, email, user_name, client_kind, host, minutes_ago in specs:
        user = users[email] if email else None
        await sessions.seed(
            organization=organization, database=databases[database_key], user=user,
            user_name=user.full_name if user else user_name, client_kind=client_kind, host=host,
            started_at=session_start(today, minutes_ago), status=SessionStatus.ACTIVE,
        )


def next_day_of_month(after: date, day_of_month: int) -> date:
    """The first `day_of_month` strictly after `after`."""
    candidate = after.replace(day=day_of_month)
    return candidate if candidate > after else Month.of(after).shift(1).first_day.replace(day=day_of_month)


async def add_past_sessions(
    organization: Organization, specs: tuple, databases: dict[str, Database], users: dict[str, User], today: date,
) -> None:
    """The connection history: sessions of the last days, logged off (ENDED) or cut off (TERMINATED)."""
    for index, (days_ago, database_key, email, user_name, client_kind, host, status) in enumerate(specs):
        user = users[email] if email else None
        day = today - timedelta(days=days_ago)
        await sessions.seed(
            organization=organization, database=databases[database_key], user=user,
            user_name=user.full_name if user else user_name, client_kind=client_kind, host=host,
            started_at=at(day, 6, 5 + 7 * index),
            ended_at=at(day, 11 if status == SessionStatus.TERMINATED else 14, 48), status=status,
        )
