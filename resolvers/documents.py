"""What an accounting document is: its number, file name, the day it becomes visible, and its PDF.

Pure rules, no database: publishing (resolvers/document_publication.py, which the monthly publisher
and the demo data call) numbers, dates and renders documents with them.

Clients download invoices, acts and contracts and open them in any viewer or pass them to their
accountant, so the file must be a genuine PDF with readable Cyrillic. fpdf2 draws it with Roboto
embedded from the `font_roboto` package: nothing depends on the fonts of the host. Invoices and
acts are numbered `СЧ-YYYY-MM-<last 4 of the organization's code>` / `АКТ-…`, issued on the month's
last day, visible from the 10th of the next month.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

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


def format_amount(amount: Decimal) -> str:
    """Money with 2 decimals, as the API writes it ("1234.50")."""
    return f"{Decimal(amount).quantize(Decimal('0.01'), ROUND_HALF_UP):f}"


def render_document_pdf(
    *,
    kind: str,
    number: str,
    organization_name: str,
    inn: str,
    issued_on: date,
    period: str | None,
    lines: list[tuple[str, Decimal, Decimal]],
    total: Decimal,
    currency: str = "RUB",
) -> bytes:
    """One A4 page (more if the lines need it): title, customer, period, lines and the total.

    `lines` are (description, quantity, unit price). The same arguments give the same bytes.
    """
    title = TITLES[_kind_code(kind)]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(issued_on, time(), timezone.utc))
    pdf.set_title(f"{title} № {number}")
    pdf.set_author("Личный кабинет абонента 1С")
    regular, bold = _font_files()
    pdf.add_font(FONT, "", regular)
    pdf.add_font(FONT, "B", bold)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    pdf.set_font(FONT, "B", 16)
    pdf.multi_cell(0, 9, f"{title} № {number} от {issued_on:%d.%m.%Y}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, "", 11)
    for label, value in (
        ("Заказчик", organization_name),
        ("ИНН", inn),
        ("Период", f"{period_label(period)} ({period})" if period else "—"),
        ("Валюта", currency),
    ):
        pdf.multi_cell(0, 6, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font(FONT, "", 10)
    with pdf.table(
        col_widths=(7, 51, 12, 15, 15),
        text_align=("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD"),
        line_height=6,
    ) as table:
        table.row(["№", "Наименование", "Кол-во", "Цена", "Сумма"])
        for index, (description, quantity, unit_price) in enumerate(lines, start=1):
            amount = Decimal(quantity) * Decimal(unit_price)
            table.row([
                str(index), description, _quantity(quantity), format_amount(unit_price), format_amount(amount),
            ])
    pdf.ln(4)

    pdf.set_font(FONT, "B", 12)
    pdf.cell(0, 7, f"Итого: {format_amount(total)} {currency}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.cell(0, 6, f"Всего наименований {len(lines)}", align="R", new_x="LMARGIN", new_y="NEXT")
    if _kind_code(kind) == "ACT":
        pdf.ln(4)
        pdf.multi_cell(0, 5, ACT_STATEMENT, align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


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
