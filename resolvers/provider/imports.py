"""`kabinet import FILE`: a file of one entity's records (NDJSON, or CSV as 1C exports it) applied in
batches through the entity's upsert, answered line by line, resumable and safe to run twice.

An import is an `ImportRun` keyed by the entity and the sha256 of the file's bytes. Each batch is
applied in one transaction that also advances the run's `lines_done`: an import stopped in the
middle (killed, a lost connection) resumes after the last batch that committed. A file imported to
the end is not applied again: running it again reports the earlier run's counts (`again=True`
applies every line anew; the upserts answer UNCHANGED for what is there already).

No file, however broken, ends in a traceback: what is wrong with a line (not JSON, not an object,
a CSV row the csv module cannot read, a line or field over the limit, a NUL character) is that
line refused, and the import goes on; a file not in UTF-8 is refused whole (ImportRefused). A
document's `file_path` is read only under the file's folder or `--files-root` (document_files.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from foundation.settings import Settings
from models.provider import ImportRun, ProviderAction
from resolvers.provider.document_files import DocumentFiles, ImportedRecord
from resolvers.provider.records import (
    ENTITIES, LineResult, Outcome, ProviderActor, Record, RefusalBudget, Source, apply, binary_refused, kind_of, record_of_line,
)

FORMATS = (".ndjson", ".jsonl", ".csv")
DEFAULTS = Settings.model_construct()  # the limits' defaults, for a caller that passes none (the CLI passes its settings')


@dataclass
class ImportSummary:
    entity: str
    file_name: str
    lines: int = 0  # records in the file
    resumed_at: int = 0  # records done by an earlier, stopped run of the same file
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    refused: int = 0
    already_done: bool = False  # the file was imported to the end before: nothing applied
    report: Path | None = None

    def line(self) -> str:
        head = f"{self.entity} from {self.file_name}: {self.lines} line{'' if self.lines == 1 else 's'}"
        if self.already_done:
            head += " already imported"
        elif self.resumed_at:
            head += f" (resumed after line {self.resumed_at})"
        deleted = f"{self.deleted} deleted, " if self.deleted else ""
        return (f"{head}: {self.created} created, {self.updated} updated, "
                f"{self.unchanged} unchanged, {deleted}{self.refused} refused")


class ImportRefused(Exception):
    """The file cannot be imported at all (unknown format or entity): nothing was applied."""


def entity_of_file(path: Path) -> str:
    """`ledger_entries.csv`, `ledger_entry.ndjson` → "ledger_entry"."""
    stem = path.name.lower().rsplit(".", 1)[0].replace("-", "_")
    candidates = [stem]
    if stem.endswith("ies"):
        candidates.append(stem[:-3] + "y")
    if stem.endswith("es"):
        candidates.append(stem[:-2])
    if stem.endswith("s"):
        candidates.append(stem[:-1])
    for candidate in candidates:
        if candidate in ENTITIES:
            return candidate
    raise ImportRefused(f"Cannot tell the entity from the file name {path.name!r}: name it with --entity "
                       f"({', '.join(sorted(ENTITIES))}).")


def read_records(
    path: Path, content: bytes | None = None, files: DocumentFiles | None = None,
    max_line_chars: int = DEFAULTS.provider_max_body_bytes,
) -> Iterator[Record | LineResult]:
    """The file's records in order; a line that is not a record at all is a refusal already (never an
    exception: a line or CSV field over `max_line_chars` is refused unread, naming the field). NDJSON:
    `line` is the line of the file; CSV: the data row (the header not counted)."""
    content = path.read_bytes() if content is None else content
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ImportRefused(f"Unknown format {path.suffix!r}: .ndjson, .jsonl or .csv.")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRefused("Not UTF-8 but UTF-16 (\"Unicode\" in Windows): export the file in UTF-8.")
    try:
        text = content.decode("utf-8-sig")  # a BOM, as 1C writes it, or none
    except UnicodeDecodeError as error:
        raise ImportRefused(f"Not UTF-8 (at byte {error.start}): export the file in UTF-8.") from None
    files = files or DocumentFiles.beside(path)
    if suffix == ".csv":
        yield from _csv_records(text, files, max_line_chars)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > max_line_chars:
            yield LineResult(number, "", None, Outcome.REFUSED, None, f"Not read: a line over {max_line_chars} characters.")
            continue
        values = record_of_line(number, line)
        yield values if isinstance(values, LineResult) else ImportedRecord(number, values, files)


def _csv_records(text: str, files: DocumentFiles, max_field_chars: int) -> Iterator[Record | LineResult]:
    """UTF-8 (a BOM allowed), `;` (as 1C writes it) or `,` between fields, the header row naming
    them; an empty cell is an absent field. Decimal commas are read by the field readers. A row the
    csv module cannot read is a refused line, and the rows after it are read on."""
    first = text[:text.find("\n")] if "\n" in text else text
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # the file is in memory already: fields are measured below, by name
    try:
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise ImportRefused(f"The header row is not CSV: {error}.") from None
        if header is None:
            return
        names = [name.strip().lower() for name in header]
        row_number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                row_number += 1
                yield LineResult(row_number, "", None, Outcome.REFUSED, None, f"Not CSV: {error}.")
                continue
            if not any(cell.strip() for cell in row):
                continue
            row_number += 1
            if len(row) > len(names):
                yield LineResult(row_number, "", None, Outcome.REFUSED, None,
                                 f"{len(row)} fields, the header names {len(names)}.")
                continue
            too_long = next((name for name, value in zip(names, row) if len(value) > max_field_chars), None)
            if too_long is not None:
                yield LineResult(row_number, "", None, Outcome.REFUSED, too_long or None,
                                 f"Not read: a field over {max_field_chars} characters.")
                continue
            values = {n: v for n, v in zip(names, row) if n and v.strip() != ""}
            yield binary_refused(row_number, values) or ImportedRecord(row_number, values, files)
    finally:
        csv.field_size_limit(limit)


async def import_file(
    path: Path, actor: ProviderActor, *, entity: str | None = None, batch: int = 1000,
    report: Path | None = None, progress: Callable[[int, int], None] | None = None, broadcast: Any = None,
    again: bool = False, files_root: Path | None = None, settings: Settings = DEFAULTS,
) -> ImportSummary:
    """Import `path` as records of `entity` (by default: the file's name says), `batch` records per
    transaction; every LineResult goes to `report` (NDJSON) and `progress(n, total)` hears of each n lines done.
    Documents are read under the file's folder or `files_root` (DocumentFiles); `settings` give the limits: a
    line (a CSV field) or document over `provider_max_body_bytes`, the refused lines kept one by one."""
    path = Path(path)
    name = entity or entity_of_file(path)
    kind_of(actor, name)  # unknown entity, or a scope the actor lacks: refused before anything
    if not path.is_file():
        raise ImportRefused(f"{path} is not a regular file.")
    if files_root is not None and not Path(files_root).is_dir():
        raise ImportRefused(f"--files-root {files_root} is not a folder.")
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    files = DocumentFiles.beside(path, files_root, settings.provider_max_body_bytes)
    items = list(read_records(path, content, files, settings.provider_max_body_bytes))
    run, _ = await ImportRun.get_or_create(entity=name, file_digest=digest, defaults={"file_name": path.name[:300]})
    summary = ImportSummary(name, path.name, len(items))
    if run.finished_at is not None and not again:
        summary.already_done = True
        _take_counts(summary, run)
        if progress:
            progress(len(items), len(items))
        return summary
    if run.finished_at is not None:  # again: a new pass over every line
        await ImportRun.filter(id=run.id).update(lines_done=0, finished_at=None, **{outcome.value: 0 for outcome in Outcome})
        run.lines_done = 0
    summary.resumed_at = run.lines_done
    if progress and run.lines_done:
        progress(run.lines_done, len(items))
    report = summary.report = Path(report) if report else path.with_name(path.name + ".report.ndjson")
    refusals = RefusalBudget(settings.provider_max_refusals_kept, run.refused)  # a resumed run's so far
    with open(report, "a" if run.lines_done else "w", encoding="utf-8") as out:
        for start in range(run.lines_done, len(items), max(1, batch)):
            chunk = items[start:start + max(1, batch)]
            results = await _apply_batch(actor, name, run, chunk, broadcast, refusals)
            for result in results:
                out.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
                setattr(summary, result.outcome.value, getattr(summary, result.outcome.value) + 1)
            out.flush()
            if progress:
                progress(len(chunk), len(items))
    totals = await ImportRun.get(id=run.id)
    _take_counts(summary, totals)
    async with in_transaction():
        await ImportRun.filter(id=run.id).update(finished_at=utcnow())
        await ProviderAction.create(
            actor_kind=actor.kind, actor=actor.name, action="import", target=f"{name}:{path.name}"[:200],
            details={"file_digest": digest, "lines": len(items), **{o.value: getattr(totals, o.value) for o in Outcome}},
        )
    return summary


def _take_counts(summary: ImportSummary, run: ImportRun) -> None:
    for outcome in Outcome:
        setattr(summary, outcome.value, getattr(run, outcome.value))


async def _apply_batch(
    actor: ProviderActor, name: str, run: ImportRun, chunk: list[Record | LineResult], broadcast: Any,
    refusals: RefusalBudget | None = None,
) -> list[LineResult]:
    """One batch in one transaction with the run's progress: both commit, or neither."""

    async def advance(results: list[LineResult]) -> None:
        counts = {outcome.value: sum(1 for r in results if r.outcome is outcome) for outcome in Outcome}
        await ImportRun.filter(id=run.id).update(
            lines_done=F("lines_done") + len(chunk), **{key: F(key) + value for key, value in counts.items()}
        )

    results = await apply(actor, name, chunk, broadcast, source=Source(run.file_name, run.id), within=advance, refusals=refusals)
    run.lines_done += len(chunk)
    return results
