"""`kabinet import`: files as 1C exports them, a report line per input line, safe to run twice, and
an import stopped midway resumes after the last batch that committed."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from models.billing import BalanceTransaction, Document, DocumentFile
from models.provider import ImportRun
from resolvers.provider.imports import ImportRefused, entity_of_file, import_file
from resolvers.provider.records import ENTITIES, SCOPES, ProviderActor
from tests.test_provider_billing import provider_org, uid

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _database(app):
    """Every test here writes through the models: the app's database is connected."""


def actor() -> ProviderActor:
    return ProviderActor(kind="CLI", name="test", scopes=frozenset(SCOPES))


def csv_bytes(*rows: str) -> bytes:
    """As 1C writes it: a BOM, `;` between fields, CRLF."""
    return "\ufeff".encode() + "\r\n".join(rows).encode() + b"\r\n"


def report_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def balances(org) -> list[Decimal]:
    return [r.balance_after for r in await BalanceTransaction.filter(organization_id=org.id).order_by("seq")]


def test_the_entity_comes_from_the_file_name():
    assert entity_of_file(Path("ledger_entries.csv")) == "ledger_entry"
    assert entity_of_file(Path("ledger_entry.ndjson")) == "ledger_entry"
    assert entity_of_file(Path("prepaid_service_uses.jsonl")) == "prepaid_service_use"
    assert entity_of_file(Path("charges.ndjson")) == "charge"
    with pytest.raises(ImportRefused):
        entity_of_file(Path("export.csv"))


async def test_a_1c_csv_with_bom_semicolons_and_decimal_commas(tmp_path):
    org, _ = await provider_org()
    a, b = uid("le"), uid("le")
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(csv_bytes(
        "external_id;organization;kind;amount;description;occurred_at",
        f"{a};{org.external_id};TOP_UP;1 500,25;Оплата по счёту № 12;05.01.2026",
        f'{b};{org.external_id};CHARGE;-300,00;"Аренда; январь";2026-01-31T23:00:00',
    ))
    summary = await import_file(path, actor())
    assert (summary.entity, summary.lines, summary.created, summary.refused) == ("ledger_entry", 2, 2, 0)
    assert await balances(org) == [Decimal("1500.25"), Decimal("1200.25")]
    assert (await BalanceTransaction.get(external_id=b)).description == "Аренда; январь"
    assert [r["result"] for r in report_of(tmp_path / "ledger_entries.csv.report.ndjson")] == ["created", "created"]


async def test_the_report_has_a_line_per_input_line_with_the_field_of_each_refusal(tmp_path):
    org, _ = await provider_org()
    lines = [
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": 10, "occurred_at": "2026-01-01"},
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "ten", "occurred_at": "2026-01-02"},
        "not json",
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": 1.5, "occurred_at": "2026-01-03"},
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    report = tmp_path / "out" / "report.ndjson"
    report.parent.mkdir()
    summary = await import_file(path, actor(), entity="ledger_entry", report=report, batch=2)
    assert (summary.created, summary.refused) == (2, 2)
    rows = report_of(report)
    assert [(r["line"], r["result"], r.get("field")) for r in rows] == [
        (1, "created", None), (2, "refused", "amount"), (3, "refused", None), (4, "created", None),
    ]
    assert rows[1]["externalId"] == lines[1]["external_id"] and "Not a number" in rows[1]["reason"]
    assert all(r["entity"] == "ledger_entry" for r in rows)
    assert await balances(org) == [Decimal("10.00"), Decimal("11.50")]


async def test_running_a_file_twice_is_safe(tmp_path):
    org, _ = await provider_org()
    path = tmp_path / "ledger_entries.ndjson"
    path.write_text("".join(json.dumps({"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP",
                                        "amount": "100", "occurred_at": f"2026-02-{d:02d}"}) + "\n" for d in range(1, 6)))
    first = await import_file(path, actor(), batch=2)
    assert (first.created, first.already_done) == (5, False)
    second = await import_file(path, actor(), batch=2)
    assert (second.already_done, second.created, second.lines) == (True, 5, 5)
    again = await import_file(path, actor(), batch=2, again=True)
    assert (again.created, again.unchanged, again.already_done) == (0, 5, False)
    assert await BalanceTransaction.filter(organization_id=org.id).count() == 5
    assert await ImportRun.filter(file_digest=hashlib.sha256(path.read_bytes()).hexdigest()).count() == 1


async def test_a_stopped_import_resumes_after_the_last_committed_batch(tmp_path, monkeypatch):
    org, _ = await provider_org()
    path = tmp_path / "ledger_entries.ndjson"
    path.write_text("".join(json.dumps({"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP",
                                        "amount": "1", "occurred_at": f"2026-03-01T00:{i // 60:02d}:{i % 60:02d}"}) + "\n"
                            for i in range(1000)))
    kind = ENTITIES["ledger_entry"]
    calls = []

    async def failing(actor, records):
        calls.append(len(records))
        if len(calls) == 4:
            raise ConnectionError("the database went away")
        return await kind.upsert(actor, records)

    monkeypatch.setitem(ENTITIES, "ledger_entry", dataclasses.replace(kind, upsert=failing))
    with pytest.raises(ConnectionError):
        await import_file(path, actor(), batch=100)
    run = await ImportRun.get(file_digest=hashlib.sha256(path.read_bytes()).hexdigest())
    assert (run.lines_done, run.created, run.finished_at) == (300, 300, None)
    assert await BalanceTransaction.filter(organization_id=org.id).count() == 300
    monkeypatch.setitem(ENTITIES, "ledger_entry", kind)
    seen = []
    summary = await import_file(path, actor(), batch=100, progress=lambda n, total: seen.append(n))
    assert (summary.resumed_at, summary.created, summary.refused) == (300, 1000, 0)
    assert seen[0] == 300 and sum(seen) == 1000
    assert await balances(org) == [Decimal(n) for n in range(1, 1001)]
    assert len(report_of(path.with_name(path.name + ".report.ndjson"))) == 1000


async def test_a_ledger_for_organizations_kabinet_lacks_is_refused_line_by_line(tmp_path):
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(csv_bytes(
        "external_id;organization;organization_inn;kind;amount;occurred_at",
        *(f"{uid('le')};{uid('org')};;TOP_UP;10,00;01.04.2026" for _ in range(3)),
        f"{uid('le')};;9999999999;TOP_UP;10,00;01.04.2026",
    ))
    summary = await import_file(path, actor())
    assert (summary.refused, summary.created) == (4, 0)
    rows = report_of(path.with_name(path.name + ".report.ndjson"))
    assert [(r["line"], r["field"]) for r in rows] == [
        (1, "organization"), (2, "organization"), (3, "organization"), (4, "organization_inn")]
    assert rows[0]["reason"].startswith("No organization with external_id") and "send the organization first" in rows[0]["reason"]
    assert "No organization with INN 9999999999" in rows[3]["reason"]


async def test_a_document_file_path_is_read_beside_the_import_file(tmp_path):
    org, _ = await provider_org()
    (tmp_path / "pdf").mkdir()
    pdf = b"%PDF-1.7\n% from 1C\n%%EOF\n"
    (tmp_path / "pdf" / "act-1.pdf").write_bytes(pdf)
    path = tmp_path / "documents.ndjson"
    path.write_text(json.dumps({"external_id": uid("doc"), "organization": org.external_id, "kind": "ACT", "number": "А-1",
                                "issued_on": "2026-01-31", "period": "2026-01", "amount": "100.00", "file_path": "pdf/act-1.pdf"}) + "\n")
    summary = await import_file(path, actor())
    assert summary.created == 1
    document = await Document.get(organization_id=org.id, number="А-1")
    assert bytes((await DocumentFile.get(document_id=document.id)).content) == pdf


async def test_the_bench_data_imports(tmp_path):
    """The bench's generator (bench/import_rate.py), 1,000 entries on the test database."""
    from bench.import_rate import write_ledger

    orgs = [await provider_org() for _ in range(2)]
    path = tmp_path / "ledger_entries.ndjson"
    write_ledger(path, [o.external_id for o, _ in orgs], 1000)
    summary = await import_file(path, actor(), batch=250)
    assert (summary.created, summary.refused) == (1000, 0)
    for org, _ in orgs:
        rows = await BalanceTransaction.filter(organization_id=org.id).order_by("seq")
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert rows[-1].balance_after == sum(r.amount for r in rows)


async def test_the_cli_imports_a_file_with_a_report_and_a_summary(tmp_path, settings):
    org, _ = await provider_org()
    path = tmp_path / "ledger_entries.csv"
    path.write_bytes(csv_bytes("external_id;organization;kind;amount;occurred_at",
                               f"{uid('le')};{org.external_id};TOP_UP;42,00;01.05.2026",
                               f"{uid('le')};nobody;TOP_UP;42,00;01.05.2026"))
    env = {**os.environ, "KABINET_DATABASE_URL": settings.database_url, "KABINET_BROKER_URL": "memory://",
           "KABINET_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "kabinet.cli", "import", str(path), "--batch", "1"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # a line was refused
    assert "ledger_entry from ledger_entries.csv: 2 lines: 1 created, 0 updated, 0 unchanged, 1 refused" in done.stdout
    assert [r["result"] for r in report_of(path.with_name(path.name + ".report.ndjson"))] == ["created", "refused"]
    assert await BalanceTransaction.filter(organization_id=org.id).count() == 1


async def test_the_example_billing_files_import(tmp_path):
    """examples/provider/ as the provider's 1C exports them: the billing files import without a
    refusal once their organizations and databases are there (made directly here: the catalog and
    cloud entities have tests of their own)."""
    import shutil

    from models.billing import PrepaidService
    from models.cloud import Database
    from models.organizations import ModerationStatus, Organization, OrganizationKind

    folder = tmp_path / "provider"
    shutil.copytree(ROOT / "examples" / "provider", folder)
    organizations = {}
    for row in csv.DictReader((folder / "organizations.csv").read_text(encoding="utf-8-sig").splitlines(), delimiter=";"):
        organizations[row["external_id"]] = await Organization.create(
            external_id=row["external_id"], inn=row["inn"], name=row["name"], kind=OrganizationKind(row["kind"]),
            moderation_status=ModerationStatus.APPROVED, code=f"X{row['inn']}",
        )
    for line in (folder / "databases.ndjson").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        await Database.create(external_id=row["external_id"], organization=organizations[row["organization"]], name=row["name"],
                              configuration=row["configuration"], version=row["version"], is_typical=row["is_typical"], size_mb=row["size_mb"])
    for name in ("ledger_entries.csv", "charges.ndjson", "documents.ndjson", "prepaid_services.ndjson", "prepaid_service_uses.ndjson"):
        summary = await import_file(folder / name, actor())
        assert summary.refused == 0 and summary.created == summary.lines, (summary.line(), report_of(summary.report))
    north, granite, sokolova = organizations.values()
    assert [(await balances(org))[-1] for org in (north, granite, sokolova)] == [Decimal("16470.00"), Decimal("38550.00"), Decimal("3350.00")]
    assert {p.name: p.used for p in await PrepaidService.filter(organization_id__in=[north.id, granite.id])} == {
        "Консультации по 1С": Decimal("4.00"), "Выезд специалиста": Decimal("1.00")}
    assert await Document.filter(organization_id=north.id).count() == 4
    generated = await Document.get(organization_id=north.id, number="АКТ-000544")
    assert generated.amount == Decimal("8940.00")


async def test_a_csv_deleted_column_reads_1c_flags_and_the_summary_counts_deletions(tmp_path):
    org, _ = await provider_org()
    ids = [uid("ch") for _ in range(4)]
    rows = [f"{i};{org.external_id};SUPPORT_SERVICE;2024-02;Консультации;1;1000" for i in ids]
    path = tmp_path / "charges.csv"
    path.write_bytes(csv_bytes("external_id;organization;kind;period;description;quantity;unit_price", *rows))
    await import_file(path, actor())
    flags = ["да", "Истина", "1", "ложь"]
    again = tmp_path / "charge.csv"
    again.write_bytes(csv_bytes("external_id;organization;kind;period;description;quantity;unit_price;deleted",
                                *[f"{row};{flag}" for row, flag in zip(rows, flags)], f"{ids[0]};;;;;;;true"))
    summary = await import_file(again, actor())
    assert (summary.deleted, summary.unchanged, summary.refused) == (3, 2, 0)
    assert "0 updated, 2 unchanged, 3 deleted, 0 refused" in summary.line()
    assert [r["result"] for r in report_of(again.with_name(again.name + ".report.ndjson"))] == [
        "deleted", "deleted", "deleted", "unchanged", "unchanged"]
    assert (await ImportRun.get(file_digest=hashlib.sha256(again.read_bytes()).hexdigest())).deleted == 3
