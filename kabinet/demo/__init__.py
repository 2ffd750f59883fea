"""The demo data set that a fresh start and the tests share (`../shared/api/README.md`).

Two organizations: ООО «Ромашка» with four members and a busy cloud, ИП Васильев with one owner.
Every date is derived from `today`, so whatever day it is seeded the set looks the same: three
published months of invoices and acts (and the next month's, not yet visible), a subscription
for the current month, contracts that run for months yet, sessions of the working day.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from tortoise.transactions import in_transaction

from foundation import clock
from resolvers.identity.passwords import hash_password
from models.billing import ChargeKind, DocumentKind, PrepaidService, TransactionKind
from models.identity import User
from models.notifications import NotificationKind, NotificationSettings
from models.organizations import DatabaseGrant, ModerationStatus, Organization, OrganizationKind
from models.products import Contract, ContractKind, Product, ProductCategory
from models.requisites import Manager, RequisitesSource
from models.updates import Release, UpdateMode, UpdateRunStatus
from resolvers.cloud import subscriptions as cloud_subscriptions
from resolvers.common import demo_mark
from resolvers.updates import runs as update_runs
from resolvers.billing import supplier as suppliers
from resolvers.organizations import requisites
from resolvers.common.context import SystemActor
from resolvers.support import tickets
from models.tickets import TicketAddressee, TicketStatus
from models.updates import UpdateRunOrigin
from kabinet.demo.blocks import (  # the data set's facts and building blocks
    ACCOUNTING, CONSULTING_HOUR_PRICE, ChargeLine, DEMO_PASSWORD, DEMO_SUPPLIER, INSTALLED_VERSION, Ledger, Month, NEWER_VERSION, ROMASHKA_HISTORY, ROMASHKA_PEOPLE, ROMASHKA_SESSIONS, TRADE, VASILEK_PEOPLE, VASILEK_SESSIONS, WORKPLACE_PRICE, add_database, add_document, add_past_sessions, add_people, add_sessions, at, bill_month, billing_months, money, next_day_of_month,
)

# ---------------------------------------------------------------------------------------- the data set


SUPPORT_STAFF = "Ольга Сергеевна, линия консультаций"


async def add_tickets(organization: Organization, users: dict[str, User], today: date) -> None:
    """Two tickets of the accountant (one answered, one waiting for the provider), a closed one of the
    user, and the owner's letter to the personal manager."""
    buh, user, owner = users["buh@romashka.example"], users["user@romashka.example"], users["owner@romashka.example"]
    await tickets.seed(organization.id, buh, "Не формируется отчёт 6-НДФЛ за квартал", [
        (buh.full_name, "При формировании 6-НДФЛ программа пишет «Не заполнен код по ОКТМО». В карточке организации он указан.",
         False, TicketStatus.OPEN, at(today - timedelta(days=3), 10, 5)),
        (SUPPORT_STAFF, "Код по ОКТМО нужно указать и в разделе «Регистрации в налоговом органе»: Организации → "
         "Налоговые органы. После этого перезаполните отчёт.", True, TicketStatus.ANSWERED, at(today - timedelta(days=3), 11, 40)),
    ])
    await tickets.seed(organization.id, buh, "Не загружается выписка из банка", [
        (buh.full_name, "Файл kl_to_1c.txt из клиент-банка не загружается: «Неверный формат файла».",
         False, TicketStatus.OPEN, at(today - timedelta(days=1), 9, 20)),
        (SUPPORT_STAFF, None, True, TicketStatus.WAITING, at(today - timedelta(days=1), 9, 50)),
    ])
    await tickets.seed(organization.id, user, "Как добавить принтер в облаке?", [
        (user.full_name, "Не печатаются счета из облачной базы на офисный принтер.", False, TicketStatus.OPEN,
         at(today - timedelta(days=12), 14, 0)),
        (SUPPORT_STAFF, "Включите перенаправление принтеров в настройках подключения к удалённому рабочему столу.",
         True, TicketStatus.ANSWERED, at(today - timedelta(days=12), 15, 30)),
        (user.full_name, "Заработало, спасибо!", False, TicketStatus.OPEN, at(today - timedelta(days=12), 16, 10)),
        (user.full_name, None, False, TicketStatus.CLOSED, at(today - timedelta(days=12), 16, 11)),
    ])
    await tickets.seed(organization.id, owner, "Продление договора ИТС", [
        (owner.full_name, "Подготовьте, пожалуйста, счёт на продление ИТС ПРОФ на год.", False, TicketStatus.OPEN,
         at(today - timedelta(days=1), 12, 0)),
    ], addressee=TicketAddressee.MANAGER)


async def seed_demo(today: date | None = None) -> bool:
    """Seed the demo data set into an empty database; False (and nothing done) when any organization exists."""
    today = today or clock.today()
    async with in_transaction(Organization._meta.default_connection):
        if await Organization.exists():
            return False
        password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
        if await suppliers.current() is None:  # the demo's documents, and the publisher's after them, name it
            await suppliers.store(DEMO_SUPPLIER, demo_mark.DEMO_BY)
        # the mark that this database is the demo's (the cluster mode and `kabinet doctor` read it)
        await demo_mark.mark_seeded("demo data set")
        # Releases belong to no organization: a release watcher may have recorded these already.
        old_release, _ = await Release.get_or_create(
            configuration=ACCOUNTING, version=INSTALLED_VERSION,
            defaults={"published_at": at(today - timedelta(days=40), 9)},
        )
        await Release.get_or_create(
            configuration=ACCOUNTING, version=NEWER_VERSION, defaults={"published_at": at(today - timedelta(days=3), 9)},
        )
        await seed_romashka(today, password_hash, old_release)
        await seed_vasilek(today, password_hash)
    return True


# Requisites (docs/flows.md: Requisites and managers): Romashka's as the provider's accounting sent them (a
# change is a request), Vasilev's entered by himself (his own); Sberbank's real bank block, the
# accounts' control keys right.
ROMASHKA_REQUISITES = {
    "legal_name": "Общество с ограниченной ответственностью «Ромашка»", "kpp": "773601001", "ogrn": "1027700132195",
    "legal_address": "117312, г. Москва, ул. Вавилова, д. 19", "postal_address": "117312, г. Москва, а/я 42",
    "bank_name": "ПАО Сбербанк", "bic": "044525225", "correspondent_account": "30101810400000000225",
    "settlement_account": "40702810938000000001",
    "requisites_source": RequisitesSource.PROVIDER, "requisites_confirmed_at": datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc),
}
VASILEK_REQUISITES = {
    "legal_name": "Индивидуальный предприниматель Васильев Игорь Николаевич", "ogrn": "304770000123453",
    "legal_address": "125009, г. Москва, ул. Тверская, д. 7, кв. 12",
    "bank_name": "ПАО Сбербанк", "bic": "044525225", "correspondent_account": "30101810400000000225",
    "settlement_account": "40802810138000000002", "requisites_source": RequisitesSource.CUSTOMER,
}
ROMASHKA_MANAGERS = (
    ("Орлова Анна Сергеевна", "Персональный менеджер", "+74951234567", "orlova@provider.example"),
    ("Белов Павел Игоревич", "Менеджер по сопровождению", "+74951234568", "belov@provider.example"),
)


async def seed_managers(org: Organization) -> None:
    for full_name, title, phone, email in ROMASHKA_MANAGERS:
        await Manager.create(organization=org, full_name=full_name, title=title, phone=phone, email=email)


async def seed_romashka(today: date, password_hash: str, installed_release: Release) -> None:
    org = await Organization.create(
        name="ООО «Ромашка»", inn="7707083893", kind=OrganizationKind.LEGAL_ENTITY,
        moderation_status=ModerationStatus.APPROVED, code="100501", **ROMASHKA_REQUISITES,
    )
    await seed_managers(org)
    users, memberships = await add_people(org, ROMASHKA_PEOPLE, password_hash)
    # The accountant's letters on working hours (09:00–18:00 Moscow), one digest a day; the owner's
    # without «update scheduled» (only its result). Everyone else: the defaults.
    await NotificationSettings.create(
        user=users["buh@romashka.example"], organization=org, time_zone="Europe/Moscow", window_start=9 * 60,
        window_end=18 * 60, digest_hours=24,
    )
    await NotificationSettings.create(
        user=users["owner@romashka.example"], organization=org, muted_kinds=NotificationKind.UPDATE_SCHEDULED.value,
    )
    # The accountant asked the provider to change the postal address: it waits for the provider's record.
    await requisites.request_requisites_change(
        SystemActor("demo data"), org, {**requisites.values_of(org), "postal_address": "117312, г. Москва, а/я 77"},
        requested_by=users["buh@romashka.example"].id,
    )

    its_start = today - timedelta(days=150)
    its = await Contract.create(
        organization=org, kind=ContractKind.ITS, number=f"ИТС-{org.code}/{its_start:%y}",
        starts_on=its_start, ends_on=its_start + timedelta(days=364),
    )
    cloud_start = Month.of(today).shift(-14).first_day
    cloud = await Contract.create(
        organization=org, kind=ContractKind.CLOUD_RENTAL, number=f"ОБЛ-{org.code}/{cloud_start:%y}",
        starts_on=cloud_start, ends_on=None,
    )
    service_start = today - timedelta(days=200)
    service = await Contract.create(
        organization=org, kind=ContractKind.SERVICE, number=f"КО-{org.code}/{service_start:%y}",
        starts_on=service_start, ends_on=service_start + timedelta(days=364),
    )
    for name, category, registration_number, workplaces, contract in (
        ("1С:Бухгалтерия предприятия ПРОФ", ProductCategory.LOCAL_1C, "8101234567", 5, its),
        ("1С:Зарплата и управление персоналом ПРОФ", ProductCategory.LOCAL_1C, "8101234568", 3, its),
        ("1С:Предприятие в облаке, тариф «Облако 1С: Стандарт»", ProductCategory.CLOUD_RENTAL, None, 10, cloud),
        ("Линия консультаций 1С", ProductCategory.SERVICE, None, None, service),
        ("1С-Отчетность", ProductCategory.PARTNER_PRODUCT, None, None, None),
    ):
        await Product.create(
            organization=org, name=name, category=category, registration_number=registration_number,
            workplaces=workplaces, contract=contract,
            updates_available_until=contract.ends_on if category == ProductCategory.LOCAL_1C else None,
        )
    await add_document(
        org, DocumentKind.CONTRACT, cloud.number, cloud.starts_on, None,
        [
            ("Аренда 1С:Предприятие в облаке, рабочее место в месяц", Decimal("10"), WORKPLACE_PRICE),
            ("Сопровождение доработанной конфигурации, в месяц", Decimal("1"), Decimal("4500.00")),
        ],
        money(10 * WORKPLACE_PRICE + Decimal("4500.00")),
    )

    month = Month.of(today)
    await cloud_subscriptions.open_subscription(
        org.id, tariff="Облако 1С: Стандарт", sessions_limit=10, databases_limit=5,
        starts_on=month.first_day, ends_on=month.last_day,
    )
    # A second tariff subscription (1cFresh «Подписки на тарифы»): extra sessions beside the main tariff.
    await cloud_subscriptions.open_subscription(
        org.id, tariff="Дополнительные сеансы", sessions_limit=2, databases_limit=0,
        starts_on=month.first_day, ends_on=month.last_day,
    )
    databases = {
        "accounting": await add_database(
            org, "Бухгалтерия", ACCOUNTING, INSTALLED_VERSION, True, 4820,
            {"mode": UpdateMode.MONTHLY, "day_of_month": 15, "time_of_day": "03:00", "timezone": "Europe/Moscow"},
        ),
        "trade": await add_database(org, "Управление торговлей (доработанная)", TRADE, "11.5.18.30", False, 12650),
    }
    await DatabaseGrant.create(membership=memberships["user@romashka.example"], database=databases["accounting"])
    update_day = next_day_of_month(installed_release.published_at.date(), 15)
    await update_runs.seed(
        organization=org, database=databases["accounting"], release=installed_release,
        target_version=INSTALLED_VERSION, status=UpdateRunStatus.SUCCEEDED, origin=UpdateRunOrigin.MONTHLY,
        scheduled_for=at(update_day, 0), started_at=at(update_day, 0, 1), finished_at=at(update_day, 0, 24),
        progress=100, attempts=1, message=f"Конфигурация обновлена до версии {INSTALLED_VERSION}",
    )
    await add_tickets(org, users, today)
    # A one-off update the owner asked for beside the monthly schedule (BIT.LK «разовое обновление»).
    await update_runs.seed(
        organization=org, database=databases["accounting"], target_version=NEWER_VERSION,
        status=UpdateRunStatus.SCHEDULED, origin=UpdateRunOrigin.ONE_OFF, scheduled_for=at(today + timedelta(days=3), 20),
    )
    await add_sessions(org, ROMASHKA_SESSIONS, databases, users, today)
    await add_past_sessions(org, ROMASHKA_HISTORY, databases, users, today)

    months = billing_months(today)
    invoices = {}
    for index, billed in enumerate(months):
        invoices[billed] = await bill_month(org, billed, [
            ChargeLine(ChargeKind.CLOUD_RENTAL, "Аренда 1С в облаке: база «Бухгалтерия», рабочие места",
                       Decimal((5, 5, 6, 6)[index]), WORKPLACE_PRICE, databases["accounting"]),
            ChargeLine(ChargeKind.CLOUD_RENTAL,
                       "Аренда 1С в облаке: база «Управление торговлей (доработанная)», рабочие места",
                       Decimal((4, 4, 4, 5)[index]), WORKPLACE_PRICE, databases["trade"]),
            ChargeLine(ChargeKind.CLOUD_RENTAL, "Дисковое пространство сверх тарифа, ГБ",
                       Decimal((3, 4, 4, 5)[index]), Decimal("95.00"), databases["trade"]),
            ChargeLine(ChargeKind.SUPPORT_SERVICE, "Сопровождение доработанной конфигурации «Управление торговлей»",
                       Decimal("1"), Decimal("4500.00")),
            ChargeLine(ChargeKind.SUPPORT_SERVICE, "Консультации по 1С сверх пакета, часы",
                       Decimal(("1.5", "2", "0.5", "1")[index]), CONSULTING_HOUR_PRICE),
        ])

    first = months[0].first_day
    consulting_bought = at(months[0].first_day + timedelta(days=6), 11, 40)
    visits_bought = at(months[1].first_day + timedelta(days=8), 10, 5)
    await PrepaidService.create(
        organization=org, name="Консультации по 1С", unit="час", total=Decimal("10.00"), used=Decimal("3.50"),
        valid_until=consulting_bought.date() + timedelta(days=365),
    )
    await PrepaidService.create(
        organization=org, name="Выезд специалиста", unit="выезд", total=Decimal("4.00"), used=Decimal("1.00"),
        valid_until=visits_bought.date() + timedelta(days=365),
    )
    ledger = Ledger()
    ledger.add(at(first + timedelta(days=2), 10, 15), TransactionKind.TOP_UP, "100000.00",
               f"Пополнение лицевого счёта: платёжное поручение № 318 от {first + timedelta(days=2):%d.%m.%Y}")
    ledger.add(consulting_bought, TransactionKind.CHARGE, "-18000.00", "Покупка пакета «Консультации по 1С», 10 часов")
    ledger.add(at(months[0].first_day + timedelta(days=18), 13, 20), TransactionKind.ADJUSTMENT, "-350.00",
               "Корректировка по акту сверки взаиморасчётов")
    ledger.add(visits_bought, TransactionKind.CHARGE, "-14000.00", "Покупка пакета «Выезд специалиста», 4 выезда")
    ledger.add(at(months[1].first_day + timedelta(days=12), 9, 30), TransactionKind.REFUND, "1650.00",
               f"Возврат: перерасчёт аренды за {months[0].label} (рабочее место отключено досрочно)")
    ledger.add(at(months[1].first_day + timedelta(days=18), 15, 10), TransactionKind.CHARGE, "-6200.00",
               "Подключение сервиса «1С-Отчетность» на 12 месяцев")
    for number, billed, amount in ((407, months[1], "30000.00"), (455, months[2], "25000.00"), (512, months[3], "30000.00")):
        paid_on = billed.first_day + timedelta(days=4)
        ledger.add(at(paid_on, 8, 45), TransactionKind.TOP_UP, amount,
                   f"Пополнение лицевого счёта: платёжное поручение № {number} от {paid_on:%d.%m.%Y}")
    ledger.add(at(months[2].first_day + timedelta(days=16), 12, 0), TransactionKind.TOP_UP, "5000.00",
               "Пополнение лицевого счёта через СБП")
    ledger.charge_invoices(invoices, today)
    await ledger.save(org)


async def seed_vasilek(today: date, password_hash: str) -> None:
    org = await Organization.create(
        name="ИП Васильев", inn="771234567859", kind=OrganizationKind.SOLE_PROPRIETOR,
        moderation_status=ModerationStatus.APPROVED, code="100502", **VASILEK_REQUISITES,
    )
    users, _ = await add_people(org, VASILEK_PEOPLE, password_hash)
    its_start = today - timedelta(days=60)
    its = await Contract.create(
        organization=org, kind=ContractKind.ITS, number=f"ИТС-{org.code}/{its_start:%y}",
        starts_on=its_start, ends_on=its_start + timedelta(days=364),
    )
    cloud_start = Month.of(today).shift(-8).first_day
    cloud = await Contract.create(
        organization=org, kind=ContractKind.CLOUD_RENTAL, number=f"ОБЛ-{org.code}/{cloud_start:%y}",
        starts_on=cloud_start, ends_on=None,
    )
    await Product.create(
        organization=org, name="1С:Бухгалтерия предприятия (базовая версия)", category=ProductCategory.LOCAL_1C,
        registration_number="8102345671", workplaces=1, updates_available_until=its.ends_on, contract=its,
    )
    await Product.create(
        organization=org, name="1С:Предприятие в облаке, тариф «Облако 1С: Старт»",
        category=ProductCategory.CLOUD_RENTAL, workplaces=3, contract=cloud,
    )

    month = Month.of(today)
    await cloud_subscriptions.open_subscription(
        org.id, tariff="Облако 1С: Старт", sessions_limit=3, databases_limit=1,
        starts_on=month.first_day, ends_on=month.last_day,
    )
    databases = {"accounting": await add_database(org, "Бухгалтерия ИП", ACCOUNTING, INSTALLED_VERSION, True, 1340)}
    await add_sessions(org, VASILEK_SESSIONS, databases, users, today)

    months = billing_months(today)
    invoices = {}
    for index, billed in enumerate(months):
        invoices[billed] = await bill_month(org, billed, [
            ChargeLine(ChargeKind.CLOUD_RENTAL, "Аренда 1С в облаке: база «Бухгалтерия ИП», рабочие места",
                       Decimal("2"), WORKPLACE_PRICE, databases["accounting"]),
            ChargeLine(ChargeKind.SUPPORT_SERVICE, "Линия консультаций: консультации по 1С, часы",
                       Decimal(("1", "0.5", "1.5", "1")[index]), CONSULTING_HOUR_PRICE),
        ])
    ledger = Ledger()
    first_paid = months[0].first_day + timedelta(days=3)
    second_paid = months[2].first_day + timedelta(days=5)
    ledger.add(at(first_paid, 7, 30), TransactionKind.TOP_UP, "15000.00",
               f"Пополнение лицевого счёта: платёжное поручение № 27 от {first_paid:%d.%m.%Y}")
    ledger.add(at(second_paid, 7, 50), TransactionKind.TOP_UP, "10000.00",
               f"Пополнение лицевого счёта: платёжное поручение № 41 от {second_paid:%d.%m.%Y}")
    ledger.charge_invoices(invoices, today)
    await ledger.save(org)
