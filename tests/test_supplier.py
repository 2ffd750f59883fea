"""Documents a customer can pay: the supplier's requisites, checked with their check digits and
configured once, printed on every invoice and act with the VAT, the amount in words and a payment QR
code (ГОСТ Р 56042-2014) that decodes to what a bank app reads; without them nothing is published and
the staff desk says why.

The valid examples are real, public requisites as the organizations publish them on their own sites
(ПАО Сбербанк, ООО «ЯНДЕКС», АО «ТБанк», АО «Альфа-Банк», Банк ВТБ (ПАО)); the invalid ones are those
with one digit changed or put with another bank's BIC.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from foundation.clock import utcnow
from models.billing import Document, DocumentFile, DocumentKind, SupplierRequisites
from models.provider import ProviderAction
from resolvers.billing import supplier as suppliers
from resolvers.common import validation
from resolvers.billing.publication import due_periods, publish_month
from resolvers.billing.documents import Party, amount_in_words, money_text, render_document_pdf
from resolvers.common.errors import UserFacingError
from resolvers.provider.records import Outcome
from tests.processes import kabinet_cli
from tests.test_add_organization import staff
from tests.test_document_publishing import CONSULTING, RENTAL, billed, pdf_text
from tests.test_provider_api import bearer, new_token
from tests.test_provider_billing import provider_org, send, uid

# ООО «ЯНДЕКС», as its site publishes its requisites: an account at ПАО Сбербанк.
YANDEX = {
    "name": "ООО «ЯНДЕКС»", "inn": "7736207543", "kpp": "770401001", "ogrn": "1027700229193",
    "address": "119021, г. Москва, ул. Льва Толстого, д. 16", "bank_name": "ПАО Сбербанк", "bic": "044525225",
    "correspondent_account": "30101810400000000225", "account": "40702810438000034726", "vat": "20 %",
    "director": "Иванов И. И.", "director_title": "Генеральный директор", "accountant": "Петрова А. А.",
}
# Banks' own BICs and correspondent accounts, as each publishes them.
BANKS = {
    "ПАО Сбербанк": ("044525225", "30101810400000000225"),
    "АО «ТБанк»": ("044525974", "30101810145250000974"),
    "АО «Альфа-Банк»": ("044525593", "30101810200000000593"),
    "Банк ВТБ (ПАО)": ("044525187", "30101810700000000187"),
}
WAITING = "{ waitingDocuments { supplierConfigured documents organizations periods reason } }"


@pytest.fixture
async def requisites(app):
    """The test may change the configured requisites (or remove them): they are put back afterwards."""
    before = await SupplierRequisites.all().values()
    yield
    await SupplierRequisites.all().delete()
    for row in before:
        await SupplierRequisites.create(**row)
        await SupplierRequisites.filter(id=row["id"]).update(created_at=row["created_at"])


def refusal(values: dict) -> tuple[str | None, str]:
    with pytest.raises(UserFacingError) as caught:
        suppliers.supplier_from(values)
    return caught.value.field, caught.value.message


# ---------------------------------------------------------------------------------------- check digits


def test_real_inns_ogrns_and_kpps_pass_and_a_changed_digit_does_not():
    for inn in ("7707083893", "7736207543", "7710140679"):  # Сбербанк, Яндекс, ТБанк
        assert validation.inn_is_valid(inn), inn
        assert not validation.inn_is_valid(inn[:-1] + str((int(inn[-1]) + 1) % 10)), inn
    for ogrn in ("1027700132195", "1027700229193", "1027739642281"):  # Сбербанк, Яндекс, ТБанк
        assert validation.ogrn(ogrn, "ogrn", sole_proprietor=False) == ogrn
        with pytest.raises(UserFacingError, match="not a valid OGRN"):
            validation.ogrn(ogrn[:-1] + str((int(ogrn[-1]) + 1) % 10), "ogrn", sole_proprietor=False)
    with pytest.raises(UserFacingError, match="OGRNIP has 15 digits"):
        validation.ogrn("1027700132195", "ogrn", sole_proprietor=True)
    assert validation.ogrn_is_valid("304500116000157")  # an OGRNIP: 14 digits mod 13 mod 10
    assert not validation.ogrn_is_valid("304500116000158")
    for kpp in ("773601001", "770401001", "7736AB001"):
        assert validation.kpp(kpp, "kpp") == kpp
    for kpp in ("77360100", "7736010011", "7736ab001", "77360100A"):
        with pytest.raises(UserFacingError, match="not a KPP"):
            validation.kpp(kpp, "kpp")


def test_a_banks_correspondent_account_matches_its_bic_and_no_other():
    for bic, correspondent in BANKS.values():
        assert validation.bic(bic, "bic") == bic
        assert validation.bank_account(correspondent, "correspondent_account", bic, correspondent=True) == correspondent
    sber_bic, sber_account = BANKS["ПАО Сбербанк"]
    alfa_bic, _ = BANKS["АО «Альфа-Банк»"]
    with pytest.raises(UserFacingError, match="ends with the BIC's last three digits"):
        validation.bank_account(sber_account, "correspondent_account", alfa_bic, correspondent=True)
    changed = sber_account[:10] + "9" + sber_account[11:]  # a digit of the middle: the key no longer agrees
    assert not validation.account_key_is_valid(changed, sber_bic, correspondent=True)
    with pytest.raises(UserFacingError, match="does not match the BIC"):
        validation.bank_account(changed, "correspondent_account", sber_bic, correspondent=True)
    for bad in ("04452522", "0445252250", "144525225", "04452522A"):
        with pytest.raises(UserFacingError, match="not a bank's BIC"):
            validation.bic(bad, "bic")


def test_a_settlement_account_is_checked_against_its_banks_bic():
    account, bic = YANDEX["account"], YANDEX["bic"]
    assert validation.bank_account(account, "account", bic, correspondent=False) == account
    assert validation.bank_account("4070 2810 4380 0003 4726", "account", bic, correspondent=False) == account
    for other_bic, _ in (BANKS["АО «ТБанк»"], BANKS["Банк ВТБ (ПАО)"]):
        assert not validation.account_key_is_valid(account, other_bic, correspondent=False)
    for position in (0, 9, 19):
        digit = str((int(account[position]) + 1) % 10)
        assert not validation.account_key_is_valid(account[:position] + digit + account[position + 1:], bic, correspondent=False)
    with pytest.raises(UserFacingError, match="has 20 digits"):
        validation.bank_account(account[:-1], "account", bic, correspondent=False)


# ---------------------------------------------------------------------------------------- the requisites


def test_requisites_are_read_whole_and_a_bad_one_is_refused_naming_its_field():
    supplier = suppliers.supplier_from(YANDEX)
    assert (supplier.vat, supplier.vat_rate, supplier.kpp, supplier.sole_proprietor) == ("20%", Decimal(20), "770401001", False)
    assert supplier.vat_of(Decimal("120.00")) == Decimal("20.00")
    assert suppliers.supplier_from({**YANDEX, "vat": "без ндс"}).vat_of(Decimal("120.00")) is None
    assert suppliers.supplier_from({**YANDEX, "vat": "22"}).vat == "22%"
    for changed, field in (
        ({"inn": "7736207544"}, "inn"), ({"kpp": "77040100"}, "kpp"), ({"kpp": None}, "kpp"),
        ({"ogrn": "1027700229194"}, "ogrn"), ({"bic": "44525225"}, "bic"),
        ({"correspondent_account": BANKS["АО «ТБанк»"][1]}, "correspondent_account"),
        ({"account": "40702810438000034727"}, "account"), ({"bic": BANKS["АО «ТБанк»"][0]}, "correspondent_account"),
        ({"vat": "18%"}, "vat"), ({"name": None}, "name"), ({"director": "  "}, "director"),
        ({"name": "ООО «Яндекс|Маркет»"}, "name"), ({"bank_name": "Б" * 46}, "bank_name"), ({"iban": "x"}, "iban"),
        ({"inn": 7736207543}, "inn"),
    ):
        field_named, message = refusal({**YANDEX, **changed})
        assert field_named == field, (changed, field_named, message)
    sole_proprietor = {**YANDEX, "inn": "500100732259", "kpp": None, "ogrn": "304500116000157", "accountant": None,
                       "director_title": None, "name": "ИП Петров Пётр Петрович"}
    supplier = suppliers.supplier_from(sole_proprietor)
    assert (supplier.sole_proprietor, supplier.director_title, supplier.accountant) == (True, "Индивидуальный предприниматель", None)
    assert refusal({**sole_proprietor, "kpp": "770401001"})[0] == "kpp"
    assert refusal({**sole_proprietor, "ogrn": "1027700229193"})[0] == "ogrn"


def test_the_amount_in_words_has_the_right_plural_forms():
    for amount, words in (
        ("1.00", "Один рубль 00 копеек"),
        ("2.01", "Два рубля 01 копейка"),
        ("5.11", "Пять рублей 11 копеек"),
        ("21.21", "Двадцать один рубль 21 копейка"),
        ("22.40", "Двадцать два рубля 40 копеек"),
        ("0.05", "Ноль рублей 05 копеек"),
        ("1234.56", "Одна тысяча двести тридцать четыре рубля 56 копеек"),
        ("101000.02", "Сто одна тысяча рублей 02 копейки"),
        ("2000000.00", "Два миллиона рублей 00 копеек"),
        ("20970.005", "Двадцать тысяч девятьсот семьдесят рублей 01 копейка"),
    ):
        assert amount_in_words(Decimal(amount)) == words
    assert money_text(Decimal("1234567.5")) == "1 234 567,50"


def test_the_payment_qr_text_is_the_gost_string_with_the_sum_in_kopecks():
    supplier = suppliers.supplier_from(YANDEX)
    payload = suppliers.payment_payload(supplier, Decimal("20970.00"), "Оплата по счёту № 1 | за октябрь\n2026")
    assert payload == (
        "ST00012|Name=ООО «ЯНДЕКС»|PersonalAcc=40702810438000034726|BankName=ПАО Сбербанк|BIC=044525225"
        "|CorrespAcc=30101810400000000225|Sum=2097000|PayeeINN=7736207543|KPP=770401001"
        "|Purpose=Оплата по счёту № 1 / за октябрь 2026"
    )
    long = suppliers.payment_payload(supplier, Decimal("1"), "x" * 500)
    assert long.endswith("|Purpose=" + "x" * suppliers.PURPOSE_MAX) and "|Sum=100|" in long


# ---------------------------------------------------------------------------------------- the documents


def one_line(text: str) -> str:
    """The PDF's text with its line breaks (where a long line wrapped) and runs of spaces as one space."""
    return " ".join(text.split())


def qr_texts(image: Image.Image) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(image) if found.format == zxingcpp.BarcodeFormat.QRCode]


async def test_a_published_invoice_prints_the_supplier_vat_words_and_a_qr_code_that_decodes_to_the_gost_string(requisites):
    await suppliers.store(suppliers.supplier_from(YANDEX), "test")
    org, _ = await billed("2022-01", RENTAL, CONSULTING)  # 4500 + 3750
    org.kpp, org.legal_address = "773601001", "117997, г. Москва, ул. Вавилова, д. 19"
    await org.save(update_fields=["kpp", "legal_address"])
    await publish_month("2022-01", dt.date(2022, 2, 10))
    invoice = await Document.get(organization_id=org.id, kind=DocumentKind.INVOICE, period="2022-01")
    content = bytes((await DocumentFile.get(document_id=invoice.id)).content)
    text = one_line(pdf_text(content))
    for expected in (
        "ПАО Сбербанк", "Банк получателя", "БИК 044525225", "Сч. № 30101810400000000225", "ИНН 7736207543",
        "КПП 770401001", "Сч. № 40702810438000034726", "Получатель",
        f"Счёт на оплату № {invoice.number} от 31 января 2022 г.",
        "ООО «ЯНДЕКС», ИНН 7736207543, КПП 770401001, ОГРН 1027700229193",
        f"{org.name}, ИНН {org.inn}, КПП 773601001, 117997, г. Москва",
        "Итого: 8 250,00", "В том числе НДС (20%): 1 375,00", "Всего к оплате: 8 250,00",
        "Всего наименований 2, на сумму 8 250,00 руб.", "Восемь тысяч двести пятьдесят рублей 00 копеек",
        "Генеральный директор", "/ Иванов И. И. /", "Главный бухгалтер", "/ Петрова А. А. /",
    ):
        assert expected in text, (expected, text)
    expected_qr = (
        "ST00012|Name=ООО «ЯНДЕКС»|PersonalAcc=40702810438000034726|BankName=ПАО Сбербанк|BIC=044525225"
        "|CorrespAcc=30101810400000000225|Sum=825000|PayeeINN=7736207543|KPP=770401001"
        f"|Purpose=Оплата по счёту № {invoice.number} от 31.01.2022 за январь 2022, в т.ч. НДС (20%) 1 375,00"
    )
    [embedded] = PdfReader(io.BytesIO(content)).pages[0].images  # the QR code is the page's one image
    assert qr_texts(embedded.image) == [expected_qr]

    act = await Document.get(organization_id=org.id, kind=DocumentKind.ACT, period="2022-01")
    act_text = one_line(pdf_text(bytes((await DocumentFile.get(document_id=act.id)).content)))
    for expected in ("Исполнитель:", "р/с 40702810438000034726, в банке ПАО Сбербанк, БИК 044525225, к/с 30101810400000000225",
                     "В том числе НДС (20%): 1 375,00", "Всего оказано услуг 2, на сумму 8 250,00 руб.",
                     "Восемь тысяч двести пятьдесят рублей 00 копеек", "ИСПОЛНИТЕЛЬ: ООО «ЯНДЕКС»", f"ЗАКАЗЧИК: {org.name}"):
        assert expected in act_text, (expected, act_text)


def test_an_invoice_in_another_currency_has_the_bank_block_and_no_ruble_qr_code():
    supplier = suppliers.supplier_from(YANDEX)
    customer = Party("ООО «Ромашка»", "7707083893")
    for currency, images in (("RUB", 1), ("USD", 0)):
        content = render_document_pdf(
            kind="INVOICE", number="1", supplier=supplier, customer=customer, issued_on=dt.date(2026, 1, 31),
            period="2026-01", lines=[("Услуга", Decimal(1), Decimal("100.00"))], total=Decimal("100.00"), currency=currency,
        )
        page = PdfReader(io.BytesIO(content)).pages[0]
        assert len(page.images) == images and "БИК 044525225" in page.extract_text()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian's poppler-utils) is not installed; .ci/run installs it")
async def test_the_printed_invoice_page_scans_as_a_payment_qr_code_and_says_without_vat(requisites, tmp_path):
    """The page as a printer or a screen shows it (poppler at 150 dpi), not only the embedded image."""
    await suppliers.store(suppliers.supplier_from({**YANDEX, "vat": "Без НДС"}), "test")
    org, _ = await billed("2022-02", RENTAL)
    await publish_month("2022-02", dt.date(2022, 3, 10))
    invoice = await Document.get(organization_id=org.id, kind=DocumentKind.INVOICE, period="2022-02")
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(bytes((await DocumentFile.get(document_id=invoice.id)).content))
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    [page] = list(tmp_path.glob("page*.png"))
    [scanned] = qr_texts(Image.open(page))
    assert scanned.startswith("ST00012|Name=ООО «ЯНДЕКС»|PersonalAcc=40702810438000034726|") and "|Sum=450000|" in scanned
    assert scanned.endswith(", Без НДС")
    text = pdf_text(pdf.read_bytes())
    assert "Без НДС" in text and "В том числе НДС" not in text


async def test_without_requisites_nothing_is_published_and_staff_see_why(requisites, gql, client):
    await SupplierRequisites.all().delete()
    period = due_periods(utcnow().date())[0]  # due whatever today is
    org, _ = await billed(period, RENTAL)
    assert await publish_month(period, utcnow().date()) == []
    assert not await Document.exists(organization_id=org.id)

    as_staff = await staff(gql)
    waiting = (await gql.execute(WAITING, as_user=as_staff))["data"]["waitingDocuments"]
    assert waiting["supplierConfigured"] is False and period in waiting["periods"]
    assert waiting["documents"] >= 2 and waiting["organizations"] >= 1 and "kabinet supplier set" in waiting["reason"]
    token = await new_token("staff")
    over_http = (await client.get("/provider/v1/staff/waiting-documents", headers=bearer(token))).json()
    assert over_http["supplierConfigured"] is False and over_http["reason"] == waiting["reason"]

    # A document the provider sends without its PDF is refused alone, saying why, on the staff desk.
    provider, _ = await provider_org()
    await send("charge", {"external_id": uid("ch"), "organization": provider.external_id, "kind": "SUPPORT_SERVICE",
                          "period": "2021-05", "description": "Консультации по 1С", "quantity": "1", "unit_price": "900"})
    [refused] = await send("document", {"external_id": uid("doc"), "organization": provider.external_id, "kind": "INVOICE",
                                        "number": "П-9001", "issued_on": "2021-05-31", "period": "2021-05"})
    assert (refused.outcome, refused.field) == (Outcome.REFUSED, "file_base64") and "requisites" in refused.reason

    await suppliers.store(suppliers.supplier_from(YANDEX), "test")
    created = await publish_month(period, utcnow().date())
    assert {d.kind for d in created if d.organization_id == org.id} == {DocumentKind.INVOICE, DocumentKind.ACT}
    after = (await gql.execute(WAITING, as_user=as_staff))["data"]["waitingDocuments"]
    assert after["supplierConfigured"] is True
    assert after["reason"] is None or after["reason"].startswith("Due")


async def test_waiting_documents_are_for_staff_only(app, gql):
    from tests.test_staff_desk import owner, refused_code

    assert refused_code(await gql.execute(WAITING, as_user=await owner(gql))) == "FORBIDDEN"


async def test_the_operator_configures_the_requisites_from_a_file_checked_first(requisites, settings, tmp_path: Path):
    good = tmp_path / "supplier.toml"
    good.write_text("\n".join(f'{key} = "{value}"' for key, value in YANDEX.items()), encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text(encoding="utf-8").replace("40702810438000034726", "40702810438000034727"), encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "ООО «Без кавычки}', encoding="utf-8")

    assert "account = 40702810438000034726" in await kabinet_cli(settings, "supplier", "check", str(good))
    for file, named in ((bad, "account: «40702810438000034727» does not match the BIC 044525225"), (broken, "is not TOML")):
        process = subprocess.run(
            [sys.executable, "-m", "kabinet.cli", "supplier", "set", str(file)], capture_output=True, text=True, timeout=60,
            env={**os.environ, "KABINET_DATABASE_URL": settings.resolved_database_url, "KABINET_DATA_DIR": str(settings.data_dir)},
        )
        assert process.returncode == 1 and named in process.stderr, process.stderr
    assert (await suppliers.current()) != suppliers.supplier_from(YANDEX)

    assert "configured" in await kabinet_cli(settings, "supplier", "set", str(good))
    assert await suppliers.current() == suppliers.supplier_from(YANDEX)
    assert "configured already" in await kabinet_cli(settings, "supplier", "set", str(good))
    shown = await kabinet_cli(settings, "supplier", "show")
    assert "bic = 044525225" in shown and "vat = 20%" in shown
    action = await ProviderAction.filter(action="supplier.configure").order_by("-created_at").first()
    assert action is not None and action.actor_kind == "CLI" and "ИНН 7736207543" in action.target

    await SupplierRequisites.all().delete()
    await kabinet_cli(settings, "supplier", "show", status=1)

