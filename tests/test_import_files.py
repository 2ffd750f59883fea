"""Issue 17, finding 9 (files): `kabinet import` reads a document's `file_path` only under the import
file's folder (or the folder `--files-root` names) — `..`, absolute paths, symbolic links leading
out, devices and pipes are refused lines naming `file_path` and why — and no import file, however
broken, ends in a traceback: an overlong CSV field, binary junk, a BOM, another encoding, an NDJSON
line that is not an object, an enormous line are each a refused line (the import going on with the
next) or a clear error."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.billing import Document, DocumentFile
from models.provider import RefusedRecord
from resolvers.provider.imports import ImportRefused, import_file
from tests.test_import import ROOT, actor, csv_bytes, report_of
from tests.test_provider_billing import provider_org, uid

PDF = b"%PDF-1.7\n% a secret of somebody else\n%%EOF\n"


@pytest.fixture(autouse=True)
def _database(app):
    """Every test here writes through the models: the app's database is connected."""


def document(org, number: str, file_path: str) -> dict:
    return {"external_id": uid("doc"), "organization": org.external_id, "kind": "ACT", "number": number,
            "issued_on": "2026-01-31", "period": "2026-01", "amount": "100.00", "file_path": file_path}


def write_ndjson(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


async def test_a_document_outside_the_import_folder_is_a_refused_line_naming_file_path(tmp_path):
    """The reproduction: `../`, an absolute path and a symbolic link each published a PDF from elsewhere."""
    org, _ = await provider_org()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.pdf").write_bytes(PDF)
    folder = tmp_path / "import"
    (folder / "pdf").mkdir(parents=True)
    (folder / "pdf" / "mine.pdf").write_bytes(PDF)
    (folder / "pdf" / "link.pdf").symlink_to(elsewhere / "secret.pdf")
    (folder / "pdf" / "out").symlink_to(elsewhere, target_is_directory=True)
    os.mkfifo(folder / "pdf" / "pipe.pdf")  # would block a reader forever
    path = write_ndjson(folder / "documents.ndjson", [
        document(org, "A-1", "../elsewhere/secret.pdf"),
        document(org, "A-2", str(elsewhere / "secret.pdf")),
        document(org, "A-3", "pdf/link.pdf"),
        document(org, "A-4", "pdf/out/secret.pdf"),
        document(org, "A-5", "pdf/../../elsewhere/secret.pdf"),
        document(org, "A-6", "/dev/zero"),
        document(org, "A-7", "pdf/pipe.pdf"),
        document(org, "A-8", "pdf/../pdf/mine.pdf"),  # `..` that stays inside is fine
    ])
    summary = await import_file(path, actor())
    rows = report_of(summary.report)
    assert [(r["line"], r["result"], r.get("field")) for r in rows] == [
        *[(n, "refused", "file_path") for n in range(1, 8)], (8, "created", None)]
    assert "(`..` leads out of it)" in rows[0]["reason"] and "the import file's folder" in rows[0]["reason"]
    assert "is an absolute path" in rows[1]["reason"] and "--files-root" in rows[1]["reason"]
    assert "(a symbolic link leads out of it)" in rows[2]["reason"] and "(a symbolic link leads out of it)" in rows[3]["reason"]
    assert "(`..` leads out of it)" in rows[4]["reason"] and "is an absolute path" in rows[5]["reason"]
    assert "not a regular file" in rows[6]["reason"]
    assert [d.number for d in await Document.filter(organization_id=org.id)] == ["A-8"]
    refused = await RefusedRecord.filter(import_run__file_name="documents.ndjson", field="file_path").count()
    assert refused >= 7  # on the staff desk too


async def test_files_root_allows_a_named_folder_and_nothing_beyond_it(tmp_path):
    org, _ = await provider_org()
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "act.pdf").write_bytes(PDF)
    (tmp_path / "outside.pdf").write_bytes(PDF)
    folder = tmp_path / "exports"
    folder.mkdir()
    path = write_ndjson(folder / "documents.ndjson", [
        document(org, "R-1", "../pdf/act.pdf"),
        document(org, "R-2", str(tmp_path / "pdf" / "act.pdf")),
        document(org, "R-3", "../outside.pdf"),
        document(org, "R-4", str(tmp_path / "outside.pdf")),
    ])
    summary = await import_file(path, actor(), files_root=tmp_path / "pdf")
    rows = report_of(summary.report)
    assert [r["result"] for r in rows] == ["created", "created", "refused", "refused"]
    assert f"not under the files' root {(tmp_path / 'pdf').resolve()}" in rows[2]["reason"]
    assert "(an absolute path outside it)" in rows[3]["reason"]
    document_row = await Document.get(organization_id=org.id, number="R-1")
    assert bytes((await DocumentFile.get(document_id=document_row.id)).content) == PDF


async def test_a_document_file_over_the_limit_is_refused(tmp_path, settings):
    org, _ = await provider_org()
    (tmp_path / "big.pdf").write_bytes(PDF + b"0" * 400)
    path = write_ndjson(tmp_path / "documents.ndjson", [document(org, "B-1", "big.pdf")])
    small = settings.model_copy(update={"provider_max_body_bytes": 400})
    (row,) = report_of((await import_file(path, actor(), settings=small)).report)
    assert (row["result"], row["field"]) == ("refused", "file_path") and "over 400 bytes" in row["reason"]


async def test_a_csv_field_over_the_csv_modules_limit_is_a_refused_line_and_the_import_goes_on(tmp_path):
    """The reproduction: a field over 131,072 characters raised _csv.Error out of the import."""
    org, _ = await provider_org()
    ok = uid("le")
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(csv_bytes(
        "external_id;organization;kind;amount;occurred_at;description",
        f"{uid('le')};{org.external_id};TOP_UP;1,00;01.05.2026;{'я' * 200_000}",
        f'{uid("le")};{org.external_id};TOP_UP;1,00;01.05.2026;"{"a;b" * 50_000}"',
        f"{ok};{org.external_id};TOP_UP;2,00;01.05.2026;fine",
    ))
    summary = await import_file(path, actor())
    rows = report_of(summary.report)
    assert [(r["line"], r["result"], r.get("field")) for r in rows] == [
        (1, "refused", "description"), (2, "refused", "description"), (3, "created", None)]


async def test_a_line_or_field_over_the_line_limit_is_refused_unread(tmp_path, settings):
    org, _ = await provider_org()
    small = settings.model_copy(update={"provider_max_body_bytes": 1000})
    csv_path = tmp_path / "ledger_entries.csv"
    csv_path.write_bytes(csv_bytes("external_id;organization;kind;amount;occurred_at;description",
                                   f"{uid('le')};{org.external_id};TOP_UP;1,00;01.05.2026;{'x' * 1001}",
                                   f"{uid('le')};{org.external_id};TOP_UP;1,00;01.05.2026;short"))
    rows = report_of((await import_file(csv_path, actor(), settings=small)).report)
    assert [(r["result"], r.get("field")) for r in rows] == [("refused", "description"), ("created", None)]
    assert rows[0]["reason"] == "Not read: a field over 1000 characters."
    ndjson = write_ndjson(tmp_path / "ledger_entries.ndjson", [
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "1", "occurred_at": "2026-05-01",
         "description": "x" * 1001},
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "1", "occurred_at": "2026-05-01"},
    ])
    rows = report_of((await import_file(ndjson, actor(), settings=small)).report)
    assert [r["result"] for r in rows] == ["refused", "created"] and rows[0]["reason"].startswith("Not read: a line over 1000")


async def test_broken_ndjson_lines_are_refused_lines_and_the_rest_imports(tmp_path):
    org, _ = await provider_org()
    good = {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "5", "occurred_at": "2026-05-01"}
    path = tmp_path / "ledger_entries.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join([
        b"[1, 2]",  # JSON, not an object
        b'"just a string"',
        b"\x00\x01\x02 binary junk \x7f",
        b'{"external_id": "x", "amount": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # deeper than any parser goes
        b'{"external_id": "big", "amount": 1' + b"0" * 5000 + b"}",  # a number no column holds
        b'{"a": [' + b"{}," * 3000 + b"{}]}",  # nested: refused unread
        json.dumps(good).encode(),
    ]) + b"\n")
    summary = await import_file(path, actor())
    rows = report_of(summary.report)
    assert [r["result"] for r in rows] == ["refused"] * 6 + ["created"]
    assert all(r["field"] is None for r in rows[:4] + rows[5:6])
    assert "Not a JSON object" in rows[0]["reason"] and "Not a JSON object" in rows[1]["reason"]
    assert rows[2]["reason"].startswith("Not valid JSON") and rows[5]["reason"].startswith("Not read: more than")


@pytest.mark.parametrize("content, message", [
    ("Лютик;Ромашка\n".encode("cp1251"), "Not UTF-8 (at byte 0)"),
    ("external_id;organization\n".encode("utf-16"), "UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "Not UTF-8"),
])
async def test_a_file_in_another_encoding_or_binary_is_a_clear_error_through_the_cli(tmp_path, settings, content, message):
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(content)
    with pytest.raises(ImportRefused) as refused:
        await import_file(path, actor())
    assert message in str(refused.value)
    done = run_cli(settings, tmp_path, "import", str(path))
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


async def test_csv_edge_cases_are_refused_lines_not_tracebacks(tmp_path, settings):
    """Through the CLI, as the operator runs it: binary junk in a UTF-8 CSV, NUL characters, a row of
    more fields than the header, a quote left open to the end of the file."""
    org, _ = await provider_org()
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(csv_bytes(
        "external_id;organization;kind;amount;occurred_at",
        f"{uid('le')};{org.external_id};TOP_UP;1,00;01.05.2026",
        "\x00\x01\x02;\x7f;junk;;",
        "a;b;c;d;e;f;g",
        f'{uid("le")};{org.external_id};TOP_UP;"1,00;01.05.2026',
    ))
    done = run_cli(settings, tmp_path, "import", str(path))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "4 lines: 1 created" in done.stdout
    rows = report_of(path.with_name(path.name + ".report.ndjson"))
    assert [r["result"] for r in rows] == ["created", "refused", "refused", "refused"]


async def test_the_cli_takes_files_root_and_refuses_paths_outside_it(tmp_path, settings):
    org, _ = await provider_org()
    (tmp_path / "secret.pdf").write_bytes(PDF)
    folder = tmp_path / "exports"
    folder.mkdir()
    path = write_ndjson(folder / "documents.ndjson", [document(org, "C-1", "../secret.pdf")])
    done = run_cli(settings, folder, "import", str(path))
    assert done.returncode == 1 and "1 refused" in done.stdout
    assert "`..` leads out of it" in report_of(path.with_name(path.name + ".report.ndjson"))[0]["reason"]
    allowed = run_cli(settings, folder, "import", str(path), "--again", "--files-root", str(tmp_path))
    assert allowed.returncode == 0 and "1 created" in allowed.stdout, allowed.stdout + allowed.stderr
    assert run_cli(settings, folder, "import", str(path), "--files-root", str(tmp_path / "none")).returncode == 2


def run_cli(settings, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KABINET_DATABASE_URL": settings.database_url, "KABINET_BROKER_URL": "memory://",
           "KABINET_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kabinet.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


async def test_an_import_keeps_a_bounded_number_of_refused_rows_also_when_resumed(tmp_path, settings, monkeypatch):
    """The refusals' budget holds per import run, across a stop and a resume: the report has every line."""
    from resolvers.provider import imports

    few = settings.model_copy(update={"provider_max_refusals_kept": 3})
    path = write_ndjson(tmp_path / "ledger_entries.ndjson", ["1"] * 10)
    real = imports._apply_batch
    calls = 0

    async def stop_after_two_batches(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return await real(*args, **kwargs)

    monkeypatch.setattr(imports, "_apply_batch", stop_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        await import_file(path, actor(), batch=2, settings=few)
    monkeypatch.setattr(imports, "_apply_batch", real)
    summary = await import_file(path, actor(), batch=2, settings=few)
    assert summary.refused == 10
    rows = await RefusedRecord.filter(import_run__file_digest=hashlib.sha256(path.read_bytes()).hexdigest()).order_by("line")
    assert [r.line for r in rows] == [1, 2, 3, 4]
    assert "More than 3 lines of this import run" in rows[-1].reason and "import's report" in rows[-1].reason
    report = report_of(summary.report)
    assert len(report) == 10 and [r.get("kept", True) for r in report] == [True] * 3 + [False] * 7
