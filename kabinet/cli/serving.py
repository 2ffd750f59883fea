"""Running kabinet: serve, the workers alone, migrations, the demo data, the deployment's checks,
the schema, one housekeeping pass."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from foundation.settings import Settings
from foundation.logs import logging_config
from kabinet.cli.base import _cli_actor, _on_the_database, main


@main.command(help="Serve the API (with nothing configured: SQLite, in-process broker and workers, demo data).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="API processes (needs PostgreSQL and Redis beyond 1).")
def serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    from kabinet.transport import LeanWebSocketProtocol

    settings = Settings()
    if workers > 1 and settings.is_sqlite:
        raise click.UsageError("Several processes need a shared database and broker: set KABINET_DATABASE_URL and KABINET_BROKER_URL.")
    if workers > 1 and settings.should_migrate_on_start:
        raise click.UsageError("Run `kabinet migrate` once instead of migrating in each of several processes.")
    click.echo(f"kabinet: GraphiQL at http://{host}:{port}/graphql")
    # uvicorn shuts down gracefully on SIGTERM (WebSockets closed with 1001 first: kabinet.app
    # GracefulShutdown), then raises the signal again with the handler it found: this one, so that
    # a requested stop is a clean exit (status 0) rather than death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "kabinet.app:create_app", factory=True, host=host, port=port, workers=workers,
        timeout_graceful_shutdown=5, proxy_headers=True,
        # each worker process logs as this one (its own request lines replace uvicorn's access log)
        log_config=logging_config(settings.log_format, settings.log_level), access_log=False,
        ws=LeanWebSocketProtocol,  # uvicorn's own WebSocket protocol, minus the handshake it keeps (kabinet/transport.py)
        ws_per_message_deflate=settings.ws_compression,
        ws_max_size=settings.ws_max_message_bytes,  # a longer message closes the socket (1009) before it is buffered
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@main.command(help="Run the background workers alone (session cluster, update runs, documents, mail).")
def worker() -> None:
    from kabinet import db
    from events.broker import create_broadcast
    from resolvers.cloud import cluster_mode
    from workers.runner import Workers

    async def run() -> None:
        settings = Settings()
        await db.connect(settings)
        logging.getLogger("kabinet.cluster").info((await cluster_mode.read(settings)).line())
        broadcast = create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
        await broadcast.connect()
        workers = Workers(settings, broadcast)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        workers.start()
        await stopping.wait()
        click.echo("kabinet: stopping workers (finishing or releasing their jobs)")
        await workers.stop()
        await broadcast.disconnect()
        await db.disconnect()

    asyncio.run(run())


@main.command(help=(
    "Delete what is surely dead, once (the `housekeeping` worker does it hourly): expired or revoked refresh "
    "tokens, expired codes, idle login limits, delivered messages and refused provider records past their "
    "retention (KABINET_*_RETENTION_DAYS). Prints the rows deleted per kind."))
def housekeeping() -> None:
    from resolvers.common.housekeeping import PRUNERS
    from workers.housekeeping import housekeeping_pass

    settings = Settings()
    counts = _on_the_database(lambda: housekeeping_pass(settings), transaction=False)
    for kind, deleted in counts.items():
        click.echo(f"{kind}\t{deleted}")
    failed = [kind for kind in PRUNERS if kind not in counts]
    if failed:
        raise click.ClickException(f"pruning {', '.join(failed)} failed (see the log above)")


@main.command(help="Apply database migrations (idempotent).")
def migrate() -> None:
    from kabinet.db import apply_migrations

    settings = Settings()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(apply_migrations(settings.resolved_database_url))
    click.echo("kabinet: database is up to date")


@main.command(help="Create the demo data set in an empty database (a laptop's or a throwaway one: never a deployment's).")
@click.option("--demo", is_flag=True, required=True, help="The demo data set of the contract README.")
def seed(demo: bool) -> None:
    from kabinet import db
    from kabinet.demo import seed_demo

    async def run() -> bool:
        settings = Settings()
        await db.connect(settings)
        try:
            return await seed_demo()
        finally:
            await db.disconnect()

    if not asyncio.run(run()):
        click.echo("kabinet: database already has data; nothing done")
        return
    click.echo("kabinet: demo data created")
    click.echo(
        "kabinet: its accounts share the published password and its releases become real databases' update target: "
        "a laptop's or a throwaway database only (`kabinet doctor` blocks a deployment holding it)", err=True,
    )


@main.command(help=(
    "Check this deployment before customers use it: prints what is missing or unsafe, each BLOCKS or WARNS with "
    "its fix, and the cluster mode; reads the settings and the database, changes nothing. Exit 1 when anything blocks."))
def doctor() -> None:
    from kabinet.doctor import BLOCKS, WARNS, examine

    settings = Settings()
    examination = asyncio.run(examine(settings, _cli_actor(settings)))
    for level in (BLOCKS, WARNS):
        for finding in examination.of(level):
            click.echo(f"{level:<7}{finding.what}")
            click.echo(f"{'':<7}fix: {finding.fix}")
    if examination.cluster_mode is not None:
        click.echo(examination.cluster_mode.line())
    blocks, warns = len(examination.of(BLOCKS)), len(examination.of(WARNS))
    verdict = "not ready for production" if examination.blocked else "nothing blocks"
    click.echo(f"kabinet doctor: {verdict} ({blocks} blocking, {warns} warning)")
    sys.exit(1 if examination.blocked else 0)


@main.command("export-schema", help="Print the served schema in SDL.")
def export_schema() -> None:
    from schema.build import build_schema

    sys.stdout.write(build_schema(Settings()).as_str() + "\n")


@main.command(help="Write a new migration from model changes (for developers).")
@click.option("--name", default=None, help="Name of the migration file.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the models have changes no migration holds.")
def makemigrations(name: str | None, check: bool) -> None:
    from tortoise.cli.cli import run_cli_async

    if check:
        from kabinet.db import pending_migration_operations

        pending = asyncio.run(pending_migration_operations())
        for operation in pending:
            click.echo(f"pending: {operation}")
        sys.exit(1 if pending else 0)
    argv = ["-c", "kabinet.db.CLI_CONFIG", "makemigrations"] + (["--name", name] if name else [])
    sys.exit(asyncio.run(run_cli_async(argv)))
