"""A line of provider data: the record read from it (an NDJSON line, a CSV row) and the answer it gets.

Every door reads a line into a `Record` or refuses it unread (`record_of_line`), and answers each
line with a `LineResult`; an entity's upsert refuses a record by raising `RecordRefused`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson


class Outcome(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    REFUSED = "refused"


@dataclass
class LineResult:
    line: int
    entity: str
    external_id: str | None
    outcome: Outcome
    field: str | None = None  # the record's field at fault (REFUSED)
    reason: str | None = None
    kept: bool = True  # a REFUSED line past its request's RefusalBudget is answered, not kept for the staff desk

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "entity": self.entity, "externalId": self.external_id, "result": self.outcome.value}
        if self.outcome is Outcome.REFUSED:
            out.update(field=self.field, reason=self.reason)
            if not self.kept:
                out["kept"] = False
        return out


class RecordRefused(Exception):
    """A record that cannot be applied: its `field` and the reason, for the sender to correct."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class Record:
    line: int  # 1-based line (NDJSON) or data row (CSV, the header not counted) of the source
    values: Mapping[str, Any]

    @property
    def external_id(self) -> str | None:
        value = self.values.get("external_id")
        return str(value).strip() if value not in (None, "") else None


# JSON punctuation (`,` `:` `{` `[`, inside strings too) a line may hold to be read at all: far above a real
# record (a flat object of a few dozen fields, texts of at most a few hundred characters, a PDF in base64 has
# none), and what bounds the memory parsing one line takes (nested arrays cost ~30 times their bytes).
RECORD_PUNCTUATION = 2_000


def punctuation(raw: bytes | str) -> int:
    if isinstance(raw, str):
        return raw.count(",") + raw.count(":") + raw.count("{") + raw.count("[")
    return raw.count(b",") + raw.count(b":") + raw.count(b"{") + raw.count(b"[")


def record_of_line(line: int, raw: bytes | str) -> Mapping[str, Any] | LineResult:
    """The values of one NDJSON line (the API's body or an imported file), or its refusal: not JSON,
    not in UTF-8, not an object, or more punctuation than any record has (refused unread)."""
    if punctuation(raw) > RECORD_PUNCTUATION:
        return LineResult(line, "", None, Outcome.REFUSED, None, (
            f"Not read: more than {RECORD_PUNCTUATION} commas, colons and brackets, which no record has "
            "(a record is one flat JSON object)."))
    try:
        values = orjson.loads(raw)  # a number's float prints back as written (1234.56): decimal() reads str(value)
    except orjson.JSONDecodeError as error:
        reason = f"Not valid JSON: {error}." if _is_utf8(raw) else "Not UTF-8 (windows-1251?): send the text in UTF-8."
        return LineResult(line, "", None, Outcome.REFUSED, None, reason)
    if not isinstance(values, dict):
        return LineResult(line, "", None, Outcome.REFUSED, None, "Not a JSON object: each line is one record, {\"external_id\": …, …}.")
    return binary_refused(line, values) or values


def binary_refused(line: int, values: Mapping[str, Any]) -> LineResult | None:
    """A record holding a NUL character (binary data, not text), refused naming its field: no text
    column holds one (PostgreSQL refuses it outright, and with it the whole batch)."""
    for name, value in values.items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            return LineResult(line, "", None, Outcome.REFUSED, name.replace("\x00", "") or None,
                              "A NUL character: binary data, not text.")
    return None


def _is_utf8(raw: bytes | str) -> bool:
    if isinstance(raw, str):
        return True
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
