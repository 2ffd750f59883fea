"""An organization's requisites checked as a whole, the customer's and the provider's alike: each
refusal INVALID naming its field (resolvers/common/validation.py holds the check digits: INN, KPP, OGRN and
OGRNIP, the BIC, the accounts' control key with the BIC as the Bank of Russia defines it)."""

from __future__ import annotations

from collections.abc import Mapping

from models.organizations import OrganizationKind
from resolvers.common import validation

# Every requisite a customer may change (the INN is the organization itself: it does not change).
FIELDS = (
    "legal_name", "kpp", "ogrn", "legal_address", "postal_address",
    "bank_name", "bic", "correspondent_account", "settlement_account",
)
LENGTHS = {"legal_name": 500, "legal_address": 500, "postal_address": 500, "bank_name": 200}


def requisites(values: Mapping[str, str | None], kind: OrganizationKind) -> dict[str, str | None]:
    """Every field of FIELDS, checked and normalized (blank is none); INVALID on the first bad one."""
    raw = {name: ((values.get(name) or "").strip() or None) for name in FIELDS}
    out: dict[str, str | None] = {}
    for name, max_length in LENGTHS.items():
        out[name] = validation.non_empty(raw[name], name, name, max_length) if raw[name] else None
    out["kpp"] = _kpp(raw["kpp"], kind)
    out["ogrn"] = _ogrn(raw["ogrn"], kind)
    out.update(bank(raw["bic"], raw["correspondent_account"], raw["settlement_account"], raw["bank_name"]))
    return {name: out[name] for name in FIELDS}


def _kpp(value: str | None, kind: OrganizationKind) -> str | None:
    if value is None:
        return None
    if kind != OrganizationKind.LEGAL_ENTITY:
        raise validation.invalid("kpp", "Only a legal entity has a KPP.")
    return validation.kpp(value, "kpp")


def _ogrn(value: str | None, kind: OrganizationKind) -> str | None:
    if value is None:
        return None
    if kind == OrganizationKind.INDIVIDUAL:
        raise validation.invalid("ogrn", "An individual has no OGRN.")
    return validation.ogrn(value, "ogrn", sole_proprietor=kind == OrganizationKind.SOLE_PROPRIETOR)


def bank(bic: str | None, correspondent: str | None, settlement: str | None, bank_name: str | None) -> dict[str, str | None]:
    """The bank block: an account is checked against the BIC, so an account needs one."""
    if bic is None:
        for name, value in (("correspondent_account", correspondent), ("settlement_account", settlement)):
            if value is not None:
                raise validation.invalid("bic", "An account is checked against its bank's BIC: give the BIC too.")
        return {"bic": None, "correspondent_account": None, "settlement_account": None}
    bic = validation.bic(bic, "bic")
    if bank_name is None:
        raise validation.invalid("bank_name", "Name the bank of the BIC.")
    return {
        "bic": bic,
        "correspondent_account": (
            validation.bank_account(correspondent, "correspondent_account", bic, correspondent=True) if correspondent else None
        ),
        "settlement_account": (
            validation.bank_account(settlement, "settlement_account", bic, correspondent=False) if settlement else None
        ),
    }
