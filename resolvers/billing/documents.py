"""What an accounting document is: its number, file name, the day it becomes visible, and its PDF.

Pure rules, no database: publishing (resolvers/billing/publication.py, which the monthly publisher
and the demo data call) numbers, dates and renders documents with them.

Clients download invoices, acts and contracts and open them in any viewer or pass them to their
accountant, who pays from them: the file is a genuine PDF with readable Cyrillic, laid out as Russian
accounting forms are, with the supplier's requisites (resolvers/billing/supplier.py), the VAT, the amount in
words and, on an invoice, the payment QR code bank apps scan. fpdf2 draws it with Roboto
embedded from the `font_roboto` package: nothing depends on the fonts of the host. Invoices and
acts are numbered `СЧ-YYYY-MM-<last 4 of the organization's code>` / `АКТ-…`, issued on the month's
last day, visible from the 10th of the next month.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.fonts import FontFace
from num2words import num2words

from resolvers.billing.supplier import NO_VAT, Supplier, payment_payload

FONT = "Roboto"
PUBLICATION_DAY = 10  # invoices and acts of month M appear on this day of month M+1
MONTHLY_KINDS = frozenset({"INVOICE", "ACT"})
TITLES = {
    "INVOICE": "Счёт на оплату",
    "ACT": "Акт оказанных услуг",
    "CONTRACT": "Договор",
}
NUMBER_PREFIXES = {"INVOICE": "СЧ", "ACT": "АКТ"}
FILE_PREFIXES = {"INVOICE": "invoice", "ACT": "act", "CONTRACT": "contract"}
PERIOD_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MONTH_NAMES = (
    "январь", "февраль", "март", "апрель", "май", "июнь",
    "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)
MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)
ACT_STATEMENT = (
    "Вышеперечисленные услуги оказаны полностью и в срок. "
    "Заказчик претензий по объёму, качеству и срокам оказания услуг не имеет."
)


def document_visible_from(kind: str, period: str | None, issued_on: date) -> date:
    """Invoices and acts of month M (`period` "YYYY-MM") appear on the 10th of M+1; the rest at once."""
    if _kind_code(kind) in MONTHLY_KINDS and period:
        year, month = (int(part) for part in period.split("-"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return date(year, month, PUBLICATION_DAY)
    return issued_on


def period_label(period: str) -> str:
    """ "2026-10" → "октябрь 2026"."""
    year, month = period.split("-")
    return f"{MONTH_NAMES[int(month) - 1]} {year}"


@dataclass(frozen=True)
class Party:
    """The customer as a document names it (Покупатель / Заказчик)."""

    name: str
    inn: str
    kpp: str | None = None
    address: str | None = None


def render_document_pdf(
    *,
    kind: str,
    number: str,
    supplier: Supplier,
    customer: Party,
    issued_on: date,
    period: str | None,
    lines: list[tuple[str, Decimal, Decimal]],
    total: Decimal,
    currency: str = "RUB",
) -> bytes:
    """An invoice or act as Russian accounting forms lay it out, on A4 (more pages if the lines need them).

    An invoice: the bank block with the payment QR code (ГОСТ Р 56042-2014), «Счёт на оплату № … от …»,
    the supplier and the buyer with their requisites; an act: the contractor and the customer. Then
    the lines (description, quantity, unit price), Итого, the VAT the total holds or «Без НДС», the
    count and sum of the lines, the amount in words, and the signatures. The same arguments give the
    same bytes.
    """
    code = _kind_code(kind)
    title = TITLES[code]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(issued_on, time(), timezone.utc))
    pdf.set_title(f"{title} № {number}")
    pdf.set_author(supplier.name)
    regular, bold = _font_files()
    pdf.add_font(FONT, "", regular)
    pdf.add_font(FONT, "B", bold)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(15, 12, 12)
    pdf.add_page()

    basis = f"за {period_label(period)}" if period else None
    if code == "INVOICE":
        purpose = f"Оплата по счёту № {number} от {issued_on:%d.%m.%Y}" + (f" {basis}" if basis else "") + ", " + _vat_phrase(supplier, total)
        # the ГОСТ code pays rubles: an invoice in another currency gets the bank block alone
        _bank_block(pdf, supplier, payment_payload(supplier, total, purpose) if currency == "RUB" else None)
    pdf.set_font(FONT, "B", 14)
    pdf.multi_cell(0, 8, f"{title} № {number} от {_long_date(issued_on)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.w - pdf.r_margin, pdf.get_y() + 1)
    pdf.set_line_width(0.2)
    pdf.ln(4)

    supplier_role, customer_role = ("Поставщик\n(Исполнитель):", "Покупатель\n(Заказчик):") if code == "INVOICE" else ("Исполнитель:", "Заказчик:")
    _party_line(pdf, supplier_role, _supplier_requisites(supplier, with_bank=code != "INVOICE"))
    _party_line(pdf, customer_role, _customer_requisites(customer))
    if basis:
        _party_line(pdf, "Основание:", f"Услуги {basis} ({period})")
    pdf.ln(2)

    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=(8, 100, 16, 24, 26),
        text_align=("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD"),
        line_height=5,
    ) as table:
        table.row(["№", "Товары (работы, услуги)", "Кол-во", "Цена", "Сумма"])
        for index, (description, quantity, unit_price) in enumerate(lines, start=1):
            amount = Decimal(quantity) * Decimal(unit_price)
            table.row([str(index), description, _quantity(quantity).replace(".", ","), money_text(unit_price), money_text(amount)])
    pdf.ln(2)

    if pdf.will_page_break(CLOSING_HEIGHT.get(code, CLOSING_HEIGHT["INVOICE"])):  # the totals, words and signatures stay on one page
        pdf.add_page()
    vat = supplier.vat_of(total)
    totals = [("Итого:", money_text(total))]
    totals.append((f"В том числе НДС ({supplier.vat}):", money_text(vat)) if vat is not None else (f"{NO_VAT}", ""))
    if code == "INVOICE":
        totals.append(("Всего к оплате:", money_text(total)))
    pdf.set_font(FONT, "B", 10)
    for label, value in totals:
        pdf.cell(pdf.epw - 30, 5, label, align="R")
        pdf.cell(30, 5, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FONT, "", 10)
    counted = "Всего наименований" if code == "INVOICE" else "Всего оказано услуг"
    pdf.multi_cell(0, 5, f"{counted} {len(lines)}, на сумму {money_text(total)} {CURRENCY_NAMES.get(currency, currency)}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "B", 10)
    words = amount_in_words(total) if currency == "RUB" else f"{money_text(total)} {currency}"
    pdf.multi_cell(0, 5, words, new_x="LMARGIN", new_y="NEXT")
    if code == "ACT":
        pdf.ln(3)
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(0, 5, ACT_STATEMENT, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y() + 2, pdf.w - pdf.r_margin, pdf.get_y() + 2)
    pdf.set_line_width(0.2)
    pdf.ln(8)
    _signatures(pdf, code, supplier, customer)
    return bytes(pdf.output())


CURRENCY_NAMES = {"RUB": "руб."}
CLOSING_HEIGHT = {"INVOICE": 75.0, "ACT": 95.0}  # mm from the totals to the last signature line, at most


def money_text(amount: Decimal) -> str:
    """Money as Russian documents print it: "1 234,50"."""
    return f"{Decimal(amount).quantize(Decimal('0.01'), ROUND_HALF_UP):,.2f}".replace(",", " ").replace(".", ",")


def amount_in_words(amount: Decimal) -> str:
    """ "Одна тысяча двести тридцать четыре рубля 56 копеек": rubles in words, kopecks in digits, each
    with its plural form (num2words' Russian currency, which gets тысяча/копейка feminine right)."""
    amount = Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
    words = num2words(amount, lang="ru", to="currency", currency="RUB", cents=False, separator="")
    return words[:1].upper() + words[1:]


def _vat_phrase(supplier: Supplier, total: Decimal) -> str:
    vat = supplier.vat_of(total)
    return NO_VAT if vat is None else f"в т.ч. НДС ({supplier.vat}) {money_text(vat)}"


def _long_date(day: date) -> str:
    """ "31 октября 2026 г."."""
    return f"{day.day} {MONTHS_GENITIVE[day.month - 1]} {day.year} г."


def _bank_block(pdf: FPDF, supplier: Supplier, payload: str | None) -> None:
    """The invoice's head: the payee's bank, BIC and accounts, INN, KPP and name, as a bank's payment
    order wants them; the payment QR code (`payload`) beside it."""
    x, y, h = pdf.l_margin, pdf.get_y(), 5.0
    qr_size = 36.0
    left, label, value = 82.0, 14.0, pdf.epw - qr_size - 4 - 82.0 - 14.0
    pdf.set_font(FONT, "", 9)
    name_lines = pdf.multi_cell(left - 2, 4.5, supplier.name, align="L", dry_run=True, output="LINES")
    name_height = 4.5 * len(name_lines) + 4
    pdf.rect(x, y, left, 2 * h)
    pdf.rect(x + left, y, label, h)
    pdf.rect(x + left + label, y, value, h)
    pdf.rect(x + left, y + h, label, h)
    pdf.rect(x + left + label, y + h, value, h)
    pdf.set_xy(x + 1, y)
    pdf.cell(left - 2, h, supplier.bank_name)
    _small(pdf, x + 1, y + h, left - 2, "Банк получателя")
    pdf.set_font(FONT, "", 9)
    for row, (name, text) in enumerate((("БИК", supplier.bic), ("Сч. №", supplier.correspondent_account))):
        pdf.set_xy(x + left + 1, y + row * h)
        pdf.cell(label - 2, h, name)
        pdf.set_xy(x + left + label + 1, y + row * h)
        pdf.cell(value - 2, h, text)
    y2 = y + 2 * h
    pdf.rect(x, y2, left / 2, h)
    pdf.rect(x + left / 2, y2, left / 2, h)
    pdf.rect(x, y2 + h, left, name_height)
    pdf.rect(x + left, y2, label, h + name_height)
    pdf.rect(x + left + label, y2, value, h + name_height)
    pdf.set_xy(x + 1, y2)
    pdf.cell(left / 2 - 2, h, f"ИНН {supplier.inn}")
    pdf.set_xy(x + left / 2 + 1, y2)
    pdf.cell(left / 2 - 2, h, f"КПП {supplier.kpp}" if supplier.kpp else "КПП")
    pdf.set_xy(x + left + 1, y2)
    pdf.cell(label - 2, h, "Сч. №")
    pdf.set_xy(x + left + label + 1, y2)
    pdf.cell(value - 2, h, supplier.account)
    pdf.set_xy(x + 1, y2 + h)
    pdf.multi_cell(left - 2, 4.5, supplier.name, align="L")
    _small(pdf, x + 1, y2 + h + name_height - 4, left - 2, "Получатель")
    if payload is None:
        pdf.set_xy(x, y2 + h + name_height + 5)
        return
    pdf.image(_qr_png(payload), x=pdf.w - pdf.r_margin - qr_size, y=y, w=qr_size, h=qr_size, alt_text="QR-код для оплаты")
    pdf.set_xy(x, max(y2 + h + name_height, y + qr_size) + 5)


def _small(pdf: FPDF, x: float, y: float, w: float, text: str) -> None:
    pdf.set_font(FONT, "", 7)
    pdf.set_xy(x, y)
    pdf.cell(w, 4, text)
    pdf.set_font(FONT, "", 9)


def _party_line(pdf: FPDF, role: str, requisites: str) -> None:
    """A role on the left (Поставщик, Покупатель…), the party's requisites bold on the right."""
    y = pdf.get_y()
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(30, 4.5, role, align="L", new_x="LMARGIN", new_y="NEXT")
    below_role = pdf.get_y()
    pdf.set_font(FONT, "B", 9)
    pdf.set_xy(pdf.l_margin + 32, y)
    pdf.multi_cell(pdf.epw - 32, 4.5, requisites, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), below_role) + 1.5)


def _supplier_requisites(supplier: Supplier, *, with_bank: bool) -> str:
    parts = [supplier.name, f"ИНН {supplier.inn}"]
    if supplier.kpp:
        parts.append(f"КПП {supplier.kpp}")
    parts.append(f"{'ОГРНИП' if supplier.sole_proprietor else 'ОГРН'} {supplier.ogrn}")
    parts.append(supplier.address)
    if with_bank:
        parts += [f"р/с {supplier.account}", f"в банке {supplier.bank_name}", f"БИК {supplier.bic}",
                  f"к/с {supplier.correspondent_account}"]
    return ", ".join(parts)


def _customer_requisites(customer: Party) -> str:
    parts = [customer.name, f"ИНН {customer.inn}"]
    if customer.kpp:
        parts.append(f"КПП {customer.kpp}")
    if customer.address:
        parts.append(customer.address)
    return ", ".join(parts)


def _signatures(pdf: FPDF, code: str, supplier: Supplier, customer: Party) -> None:
    """An invoice: the head's and the chief accountant's lines; an act: the contractor's and the customer's."""
    signers = [(supplier.director_title, supplier.director)]
    if supplier.accountant:
        signers.append((supplier.accountant_title, supplier.accountant))
    if code == "ACT":
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(0, 5, f"ИСПОЛНИТЕЛЬ: {supplier.name}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        signers = signers[:1]
    pdf.set_font(FONT, "", 9)
    for title, name in signers:
        pdf.cell(60, 6, title)
        pdf.cell(45, 6, "", border="B")
        pdf.cell(0, 6, f"  / {name} /", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    if code == "ACT":
        pdf.ln(2)
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(0, 5, f"ЗАКАЗЧИК: {customer.name}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font(FONT, "", 9)
        pdf.cell(60, 6, "Представитель")
        pdf.cell(45, 6, "", border="B")
        pdf.cell(0, 6, "  /                                   /", new_x="LMARGIN", new_y="NEXT")


def _qr_png(payload: str) -> io.BytesIO:
    """The payment QR code as a PNG (segno: byte mode, UTF-8, error correction M, the quiet zone of 4
    modules scanners need)."""
    out = io.BytesIO()
    segno.make_qr(payload, error="m", encoding="utf-8", boost_error=False).save(out, kind="png", scale=8, border=4)
    out.seek(0)
    return out


def _kind_code(kind: str) -> str:
    """Accepts "INVOICE" or a `DocumentKind` member alike."""
    code = str(getattr(kind, "value", kind))
    if code not in TITLES:
        raise ValueError(f"unknown document kind: {kind!r}")
    return code


def _quantity(value: Decimal) -> str:
    """2.500 → "2.5", 4.000 → "4"."""
    return f"{Decimal(value).normalize():f}"


@cache
def _font_files() -> tuple[Path, Path]:
    folder = files("font_roboto") / "files"
    return Path(str(folder / "Roboto-Regular.ttf")), Path(str(folder / "Roboto-Bold.ttf"))


# ---------------------------------------------------------------------------------------- numbers and dates


def document_number(kind: str, period: str, organization_code: str) -> str:
    """ "СЧ-2026-10-3893": the kind's prefix, the month, the last 4 characters of the organization's code."""
    return f"{NUMBER_PREFIXES[_kind_code(kind)]}-{period}-{organization_code[-4:]}"


def document_filename(kind: str, number: str) -> str:
    return f"{FILE_PREFIXES[_kind_code(kind)]}-{number}.pdf"


def last_day_of(period: str) -> date:
    match = PERIOD_PATTERN.match(period)
    if not match:
        raise ValueError(f"a period is YYYY-MM, not {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return following - timedelta(days=1)


def period_before(day: date, months: int = 1) -> str:
    """The month `months` before the month of `day`, as "YYYY-MM"."""
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
