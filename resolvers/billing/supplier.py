"""The supplier: the provider's own requisites, which every invoice and act prints and a payment
QR code carries.

Configured once by the provider's operator at the server (`kabinet supplier set FILE`, a TOML file,
validated field by field: INN, KPP and OGRN check digits, the BIC, the accounts' control keys
against it), kept in the database so that every API and worker process prints the same, each
change a new row (the old ones stay: what was printed when) and an entry in the provider's audit.
No GraphQL or HTTP door changes them: whoever could would redirect every customer's payments.

Without requisites nothing is published (resolvers/billing/publication.py leaves due documents
waiting and the staff desk says why); the demo data set configures a supplier that says it is one.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from models.billing import SupplierRequisites
from resolvers.common import validation
from resolvers.common.staff_rights import Caller, staff_for_change

# ГОСТ Р 56042-2014's payment QR code: the UTF-8 variant (ST0001 + "2"), fields separated by "|".
QR_HEADER = "ST00012"
QR_SEPARATOR = "|"
NAME_MAX = 160  # the QR code's Name
BANK_NAME_MAX = 45  # the QR code's BankName
PURPOSE_MAX = 210  # the QR code's Purpose
VAT_RATES = frozenset({0, 5, 7, 10, 20, 22})  # percent; 22 % from 2026, 5 % and 7 % for the simplified tax system
NO_VAT = "Без НДС"
NOT_CONFIGURED = (
    "The supplier's requisites are not configured: documents wait unpublished until the operator runs "
    "`kabinet supplier set FILE` (docs/documents.md)."
)
STAFF_ONLY = "Only the provider's operator configures the supplier's requisites."


@dataclass(frozen=True)
class Supplier:
    """The requisites as the documents print them (strings as configured, checked)."""

    name: str  # full name, e.g. ООО «Облачный Партнёр»
    inn: str
    kpp: str | None  # a legal entity's; a sole proprietor has none
    ogrn: str  # OGRN (13) or a sole proprietor's OGRNIP (15)
    address: str  # legal address
    bank_name: str
    bic: str
    correspondent_account: str
    account: str  # the settlement account
    vat: str  # "20%" … or "Без НДС"
    director: str  # who signs: the head (a sole proprietor himself)
    director_title: str
    accountant: str | None  # the chief accountant; a sole proprietor may sign alone
    accountant_title: str

    @property
    def sole_proprietor(self) -> bool:
        return len(self.inn) == 12

    @property
    def vat_rate(self) -> Decimal | None:
        """The rate in percent; None without VAT."""
        return None if self.vat == NO_VAT else Decimal(self.vat.rstrip("%"))

    def vat_of(self, total: Decimal) -> Decimal | None:
        """The VAT a total that includes it holds (total × rate / (100 + rate), to the kopeck)."""
        rate = self.vat_rate
        if rate is None:
            return None
        return (Decimal(total) * rate / (100 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def as_values(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(Supplier))
REQUIRED = frozenset(FIELDS) - {"kpp", "accountant", "director_title", "accountant_title"}


def supplier_from(values: dict[str, Any]) -> Supplier:
    """Requisites checked field by field; a bad or missing one is INVALID naming its field."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise validation.invalid(unknown[0], f"«{unknown[0]}» is not a requisite; known are: {', '.join(FIELDS)}.")
    raw = {}
    for name in FIELDS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise validation.invalid(name, f"{name} is text (in quotes in the file).")
        raw[name] = (value or "").strip() or None
    for name in sorted(REQUIRED):
        if raw[name] is None:
            raise validation.invalid(name, f"{name} is required.")

    inn = validation.inn(raw["inn"], "inn")
    sole_proprietor = len(inn) == 12
    if sole_proprietor and raw["kpp"]:
        raise validation.invalid("kpp", "A sole proprietor has no KPP: leave kpp out.")
    if not sole_proprietor and not raw["kpp"]:
        raise validation.invalid("kpp", "kpp is required for a legal entity (INN of 10 digits).")
    bic = validation.bic(raw["bic"], "bic")
    for name in FIELDS:
        if raw[name] and (QR_SEPARATOR in raw[name] or "\x00" in raw[name] or "\n" in raw[name]):
            raise validation.invalid(name, f"{name} may hold no «|», line break or NUL (the payment QR code's separators).")
    return Supplier(
        name=_text(raw["name"], "name", NAME_MAX),
        inn=inn,
        kpp=validation.kpp(raw["kpp"], "kpp") if raw["kpp"] else None,
        ogrn=validation.ogrn(raw["ogrn"], "ogrn", sole_proprietor=sole_proprietor),
        address=_text(raw["address"], "address", 500),
        bank_name=_text(raw["bank_name"], "bank_name", BANK_NAME_MAX),
        bic=bic,
        correspondent_account=validation.bank_account(raw["correspondent_account"], "correspondent_account", bic, correspondent=True),
        account=validation.bank_account(raw["account"], "account", bic, correspondent=False),
        vat=_vat(raw["vat"]),
        director=_text(raw["director"], "director", 100),
        director_title=_text(
            raw["director_title"] or ("Индивидуальный предприниматель" if sole_proprietor else "Руководитель"),
            "director_title", 100,
        ),
        accountant=_text(raw["accountant"], "accountant", 100) if raw["accountant"] else None,
        accountant_title=_text(raw["accountant_title"] or "Главный бухгалтер", "accountant_title", 100),
    )


def read_file(path: Path) -> Supplier:
    """Requisites from a TOML file (UTF-8), checked; INVALID naming the field, or the file's fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise validation.invalid("file", f"{path}: cannot be read ({error.strerror}).") from None
    except UnicodeDecodeError:
        raise validation.invalid("file", f"{path}: is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as error:
        raise validation.invalid("file", f"{path}: is not TOML ({error}).") from None
    return supplier_from(data)


async def current() -> Supplier | None:
    """The requisites configured last, or None when none are."""
    row = await SupplierRequisites.all().order_by("-created_at").first()
    return None if row is None else Supplier(**row.requisites)


async def configure(caller: Caller, supplier: Supplier) -> bool:
    """The operator's requisites from now on (documents published earlier keep theirs); in the
    provider's audit with what changed. False when they are the ones configured already."""
    staff = await staff_for_change(caller, STAFF_ONLY)
    before = await current()
    if before == supplier:
        return False
    await store(supplier, staff.name)
    changed = [name for name in FIELDS if before is None or getattr(before, name) != getattr(supplier, name)]
    await staff.audit("supplier.configure", f"{supplier.name} ИНН {supplier.inn}", {"changed": changed})
    return True


async def store(supplier: Supplier, by: str) -> None:
    """The one writer of the requisites (the operator's `configure`, the demo data set's own)."""
    await SupplierRequisites.create(requisites=supplier.as_values(), configured_by=by)


def payment_payload(supplier: Supplier, amount: Decimal, purpose: str) -> str:
    """The payment QR code's text (ГОСТ Р 56042-2014, UTF-8): the five required fields, then the
    sum in kopecks, the payee's INN and KPP and the purpose."""
    kopecks = int((Decimal(amount) * 100).quantize(Decimal("1"), ROUND_HALF_UP))
    fields_ = [
        ("Name", supplier.name), ("PersonalAcc", supplier.account), ("BankName", supplier.bank_name),
        ("BIC", supplier.bic), ("CorrespAcc", supplier.correspondent_account), ("Sum", str(kopecks)),
        ("PayeeINN", supplier.inn), ("KPP", supplier.kpp), ("Purpose", _qr_value(purpose)[:PURPOSE_MAX]),
    ]
    return QR_SEPARATOR.join([QR_HEADER, *(f"{key}={value}" for key, value in fields_ if value)])


def _qr_value(text: str) -> str:
    """Text a QR field may hold: no separator, no line break."""
    return re.sub(r"\s+", " ", text.replace(QR_SEPARATOR, "/")).strip()


def _text(value: str, field: str, max_length: int) -> str:
    return validation.non_empty(value, field, field, max_length)


def _vat(value: str) -> str:
    """ "20%", "20 %", "20" → "20%"; «Без НДС» (any case) → NO_VAT."""
    if value.strip().lower() in ("без ндс", "без налога (ндс)", "ндс не облагается"):
        return NO_VAT
    match = re.fullmatch(r"(\d{1,2})\s*%?", value.strip())
    if not match or int(match.group(1)) not in VAT_RATES:
        rates = ", ".join(f"{r}%" for r in sorted(VAT_RATES))
        raise validation.invalid("vat", f"«{value}» is not a VAT rate: one of {rates}, or «{NO_VAT}».")
    return f"{int(match.group(1))}%"

