"""The provider's data from files (`kabinet import`), the supplier's requisites (a TOML file) and the
documents that wait for them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from foundation.settings import Settings
from kabinet.cli.base import _cli_actor, _on_the_database, main


# ---------------------------------------------------------------- the provider's data from files

@main.command("import", help=(
    "Import the provider's records of one entity from FILE (.ndjson/.jsonl, or .csv as 1C exports it: UTF-8 "
    "with or without BOM, ';' or ',' between fields, decimal commas). The entity is --entity or the file's "
    "name (ledger_entries.csv → ledger_entry). Every line's result goes to the report (NDJSON); an import "
    "stopped midway resumes after the last batch committed; a file imported to the end is not applied again "
    "(--again applies it anew: what is there already comes out unchanged). A document's file_path is read only "
    "under the file's folder (--files-root DIR allows DIR instead). Exit 1 when a line was refused."))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--entity", default=None, help="The entity of the records (default: from the file name).")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Records per transaction.")
@click.option("--report", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Per-line report (default: FILE.report.ndjson).")
@click.option("--again", is_flag=True, help="Apply a file imported to the end before once more.")
@click.option("--files-root", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read documents' file_path anywhere under this folder (absolute paths too); default: only under FILE's folder.")
def import_(file: Path, entity: str | None, batch: int, report: Path | None, again: bool, files_root: Path | None) -> None:
    from kabinet import db
    from events.broker import create_broadcast
    from resolvers.provider.imports import ImportRefused, import_file
    from resolvers.provider.records import EntityRefused

    bar: list = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(click.progressbar(length=total, label=f"importing {file.name}", file=sys.stderr))
            bar[0].__enter__()
        bar[0].update(done)

    async def run():
        settings = Settings()
        await db.connect(settings)
        broadcast = None if settings.broker_url.startswith("memory") else create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
        try:
            if broadcast is not None:
                await broadcast.connect()
            return await import_file(file, _cli_actor(settings), entity=entity, batch=batch, report=report, progress=progress,
                                     broadcast=broadcast, again=again, files_root=files_root, settings=settings)
        finally:
            if bar:
                bar[0].__exit__(None, None, None)
            if broadcast is not None:
                await broadcast.disconnect()
            await db.disconnect()

    try:
        summary = asyncio.run(run())
    except (ImportRefused, EntityRefused) as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(summary.line())
    if summary.already_done:
        click.echo("kabinet: this file was imported to the end before; nothing applied (--again to apply it anew)", err=True)
    else:
        click.echo(f"kabinet: report in {summary.report}", err=True)
    sys.exit(1 if summary.refused else 0)


# ---------------------------------------------------------------- the supplier's requisites and the documents

@main.group(help=(
    "The provider's own requisites, printed on every invoice and act and carried by the invoice's payment QR "
    "code. Nothing is published until they are set (docs/documents.md)."))
def supplier() -> None:
    pass


def _supplier_file(file: Path):
    from resolvers.billing import supplier as suppliers
    from resolvers.common.errors import UserFacingError

    try:
        return suppliers.read_file(file)
    except UserFacingError as error:
        where = "" if error.field == "file" else f"{error.field}: "
        raise click.ClickException(f"{file}: {where}{error.message}") from None


def _echo_supplier(values) -> None:
    for name, value in values.as_values().items():
        click.echo(f"{name} = {value if value is not None else '-'}")


@supplier.command("check", help="Check FILE (TOML) as `set` would, storing nothing; exit 1 naming the first bad field.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def supplier_check(file: Path) -> None:
    _echo_supplier(_supplier_file(file))
    click.echo("kabinet: the requisites are valid", err=True)


@supplier.command("set", help=(
    "Configure the requisites from FILE (TOML; docs/documents.md): each field checked (INN, KPP, OGRN, BIC, the "
    "accounts' control keys against the BIC), exit 1 naming the first bad one. Documents published from now on "
    "print them (published ones keep theirs); in the provider's audit."))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def supplier_set(file: Path) -> None:
    from resolvers.billing import supplier as suppliers

    values = _supplier_file(file)
    settings = Settings()
    changed = _on_the_database(lambda: suppliers.configure(_cli_actor(settings), values))
    click.echo(f"kabinet: {values.name} (ИНН {values.inn}) " + ("configured" if changed else "was configured already"))


@supplier.command("show", help="Print the requisites in force; exit 1 when none are configured.")
def supplier_show() -> None:
    from resolvers.billing import supplier as suppliers

    values = _on_the_database(suppliers.current)
    if values is None:
        raise click.ClickException(suppliers.NOT_CONFIGURED)
    _echo_supplier(values)


@main.group(help="Invoices and acts: the monthly publisher's.")
def documents() -> None:
    pass


@documents.command("waiting", help=(
    "The monthly invoices and acts due and not published, and why (no supplier requisites, or the publisher's next "
    "hourly pass); exit 1 when they wait for the requisites."))
def documents_waiting() -> None:
    from resolvers.provider import staff_desk

    settings = Settings()
    waiting = _on_the_database(lambda: staff_desk.waiting_documents(_cli_actor(settings)))
    if not waiting.documents:
        click.echo("kabinet: no documents wait")
        return
    click.echo(f"{waiting.documents} documents of {waiting.organizations} organizations for {', '.join(waiting.periods)}: {waiting.reason}")
    if not waiting.supplier_configured:
        sys.exit(1)
