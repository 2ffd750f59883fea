"""`kabinet`: serve the API, migrate the database, seed the demo data, print the schema."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from foundation.settings import Settings


@click.group(help="kabinet: the GraphQL API of the client cabinet. Configured by KABINET_* variables or .env.")
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # embedding the PDF font is not news
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # its connect and shutdown notes are not news at a prompt


@main.command(help="Serve the API (with nothing configured: SQLite, in-process broker and workers, demo data).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="API processes (needs PostgreSQL and Redis beyond 1).")
def serve(host: str, port: int, workers: int) -> None:
    import uvicorn

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
        timeout_graceful_shutdown=5, log_level="info", proxy_headers=True,
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


@main.group(help="The 1C cluster agent: it reports sessions and carries out terminations over /cluster/….")
def agent() -> None:
    pass


@agent.group("token", invoke_without_command=True, help=(
    "Agent tokens: each issued for named organizations (or, explicitly, every one), listed with its last use, "
    "revocable by name."))
@click.pass_context
def agent_token(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:
        raise click.UsageError(
            "`kabinet agent token` no longer makes an unscoped token for KABINET_CLUSTER_AGENT_TOKENS: "
            "`kabinet agent token create --name NAME --organizations CODE,CODE` (or `--all-organizations` for a "
            "deployment with one cluster) issues a scoped one; `list` and `revoke NAME` manage them.", ctx=ctx,
        )


@agent_token.command("create", help=(
    "Issue an agent token for the organizations named (their codes, as the provider knows them), for the clusters "
    "named (the databases on them: `kabinet cluster add`), or for every organization with --all-organizations; "
    "prints ONLY the token (shown this once; kabinet keeps its hash)."))
@click.option("--name", required=True, help="The agent it is for, e.g. cluster-msk-1: letters, digits, '.', '_', '-'.")
@click.option("--organizations", default=None, metavar="CODE,CODE", help="Comma-separated organization codes.")
@click.option("--clusters", default=None, metavar="NAME,NAME", help="Comma-separated cluster names: their databases only.")
@click.option("--all-organizations", is_flag=True, help="For every organization (a deployment with one cluster).")
def agent_token_create(name: str, organizations: str | None, clusters: str | None, all_organizations: bool) -> None:
    from resolvers.cloud import agent_tokens

    codes = [code.strip() for code in organizations.split(",") if code.strip()] if organizations is not None else None
    names = [n.strip() for n in clusters.split(",") if n.strip()] if clusters is not None else None
    _, secret = _on_the_database(lambda: agent_tokens.create(
        name, codes, all_organizations=all_organizations, cluster_names=names, by=_operator(),
    ))
    click.echo(secret)
    click.echo(
        "kabinet: give the token to the cluster agent (Authorization: Bearer <token>, or KABINET_AGENT_TOKEN); it is "
        "not shown again. With no KABINET_CLUSTER set, an agent token puts this deployment in agent mode.", err=True,
    )


@agent_token.command("list", help="Agent tokens: name, organizations or clusters, created, last used, revoked.")
def agent_token_list() -> None:
    from resolvers.cloud import agent_tokens
    from resolvers.identity import program_tokens

    async def read():
        rows = await agent_tokens.tokens()
        return rows, await program_tokens.organization_codes(rows), await program_tokens.cluster_names(rows)

    rows, codes, cluster_names = _on_the_database(read)
    for row in rows:
        if row.id in cluster_names:
            scope = "clusters " + ",".join(cluster_names[row.id])
        else:
            scope = "all organizations" if row.all_organizations else ",".join(codes.get(row.id, [])) or "(no organization left)"
        click.echo(
            f"{row.name}\t{scope}\tcreated {_when(row.created_at)}\tlast used {_when(row.last_used_at)}"
            f"\t{'revoked ' + _when(row.revoked_at) if row.revoked_at else 'active'}"
        )
    if not rows:
        click.echo("kabinet: no agent tokens yet (kabinet agent token create)", err=True)
    if Settings().agent_token_hashes:
        click.echo("kabinet: KABINET_CLUSTER_AGENT_TOKENS also holds tokens for every organization (deprecated)", err=True)


@agent_token.command("revoke", help="Revoke an agent token: its next request is refused.")
@click.argument("name")
def agent_token_revoke(name: str) -> None:
    from resolvers.cloud import agent_tokens

    row = _on_the_database(lambda: agent_tokens.revoke(name, by=_operator()))
    click.echo(f"kabinet: {row.name} revoked")


@main.group(help="The 1C clusters kabinet knows: their agents report sessions, their databases name them.")
def cluster() -> None:
    pass


@cluster.command("add", help="Make a cluster known by NAME (lowercase letters, digits, '.', '_', '-'), e.g. main.")
@click.argument("name")
@click.option("--description", default=None, help="What it is, for the operator.")
@click.option("--time-zone", default=None, metavar="ZONE", help="The cluster server's IANA zone, e.g. Europe/Moscow (informative).")
def cluster_add(name: str, description: str | None, time_zone: str | None) -> None:
    from resolvers.cloud import clusters

    row = _on_the_database(lambda: clusters.add(name, description=description, time_zone=time_zone))
    click.echo(f"kabinet: cluster {row.name} added; attach its databases (kabinet cluster attach) and issue its agent a "
               f"token (kabinet agent token create --name … --clusters {row.name})", err=True)


@cluster.command("list", help="Clusters: name, databases, connected, last report.")
def cluster_list() -> None:
    from resolvers.cloud import clusters

    rows = _on_the_database(clusters.listing)
    for row in rows:
        c = row.cluster
        click.echo(f"{c.name}\t{row.databases} databases\t{'connected' if c.connected else 'disconnected'}"
                   f"\tlast report {_when(c.last_report_at)}")
    if not rows:
        click.echo("kabinet: no clusters yet (kabinet cluster add NAME)", err=True)


def _place_database(cluster_name: str | None, database: str, infobase: str | None) -> None:
    from foundation.ids import pk_of
    from resolvers.cloud import clusters
    from resolvers.common.context import SystemActor

    async def work():
        row = await clusters.database_named(database, pk_of(database, "Database"))
        target = await clusters.named(cluster_name) if cluster_name is not None else None
        name = clusters.checked_infobase(infobase) if infobase is not None else None
        await clusters.attach(SystemActor("operator"), row, target, name)  # its event is read by the next poll
        return row

    row = _on_the_database(work)
    where = f"the infobase {infobase} of the cluster {cluster_name}" if cluster_name else "no cluster"
    click.echo(f"kabinet: the database {row.name} ({row.id}) is on {where}", err=True)


@cluster.command("attach", help="Put a database on a cluster as its infobase there.")
@click.option("--cluster", "cluster_name", required=True, help="The cluster's name.")
@click.option("--database", required=True, help="The database: its global id or the provider's external id.")
@click.option("--infobase", required=True, help="The infobase's name in the cluster (as `rac infobase summary list` shows).")
def cluster_attach(cluster_name: str, database: str, infobase: str) -> None:
    _place_database(cluster_name, database, infobase)


@cluster.command("detach", help="Take a database off its cluster: its sessions there end (no agent reports them any more).")
@click.option("--database", required=True, help="The database: its global id or the provider's external id.")
def cluster_detach(database: str) -> None:
    _place_database(None, database, None)


@main.group(help="The outbox of e-mail and SMS the mail worker delivers.")
def outbox() -> None:
    pass


@outbox.command("failed", help="List the messages given up on after the last retry, newest first, with the last error.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def outbox_failed(limit: int) -> None:
    from resolvers.provider import staff_desk
    from resolvers.common.pagination import PageRequest
    from workers.mail import failure_line

    settings = Settings()
    page = _on_the_database(lambda: staff_desk.delivery_failures(_cli_actor(settings), PageRequest(first=limit, after=None)))
    for message in page.items:
        click.echo(failure_line(message))
    if not page.items:
        click.echo("kabinet: no failed messages", err=True)
    elif page.has_next_page:
        click.echo(f"kabinet: the newest {limit} shown; there are more (--limit)", err=True)


@outbox.command("retry", help=(
    "Send a failed message again: ID as `kabinet outbox failed` prints it (id=…). It is PENDING again, its "
    "tries counted anew, and the mail worker sends it next; in the provider's audit. Exit 1 when no failed "
    "message has that id."))
@click.argument("message_id", metavar="ID")
def outbox_retry(message_id: str) -> None:
    import uuid

    from resolvers.provider import staff_desk

    try:
        pk = uuid.UUID(message_id.strip().removeprefix("id=").rstrip(":"))
    except ValueError:
        raise click.BadParameter(f"{message_id!r} is not a message id (id=… in `kabinet outbox failed`).", param_hint="ID") from None
    settings = Settings()
    message = _on_the_database(lambda: staff_desk.retry_delivery(_cli_actor(settings), pk))
    click.echo(f"kabinet: {message.channel.value} to {message.recipient} is {message.status.value} again; the mail worker sends it next")


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


# ------------------------------------------------------------------ the provider's side: staff, service accounts


def _operator_name() -> str:
    """The provider's operator running `kabinet …`, as the provider's audit names them: the OS user."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no user name in this environment (a container's nameless user)
        return "kabinet"


def _operator() -> tuple[str, str]:
    """Who runs a provider command, for the provider's audit (`by=`): the CLI, as the OS user running it."""
    from resolvers.provider.audit import ActorKind

    return ActorKind.CLI, _operator_name()


def _cli_actor(settings: Settings):
    """The operator as a domain function taking a caller sees them: trusted as every `kabinet` command
    is, so holding every scope, `staff` among them (staff rights by their one rule,
    permissions.has_staff_rights, not by a bypass); the provider's audit names them CLI."""
    from resolvers.provider.audit import ActorKind
    from resolvers.provider.records import SCOPES, ProviderActor

    return ProviderActor(
        kind=ActorKind.CLI.value, name=_operator_name(), scopes=frozenset(SCOPES), timezone=settings.provider_timezone,
    )


def _on_the_database(work, *, transaction: bool = True):
    """Run `work()` (a coroutine function) connected to the configured database, in one transaction
    unless it keeps its own; a domain refusal becomes the command's error (exit status 1)."""
    from tortoise.transactions import in_transaction

    from kabinet import db
    from resolvers.common.errors import UserFacingError

    async def run():
        await db.connect(Settings())
        try:
            if not transaction:
                return await work()
            async with in_transaction():
                return await work()
        finally:
            await db.disconnect()

    try:
        return asyncio.run(run())
    except UserFacingError as error:
        raise click.ClickException(error.message) from None


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


@main.group(help=(
    "The provider's staff: they moderate organizations and publish releases, signing in as any user does; the operator "
    "here puts people into an organization (invite, make-owner) with the staff's rights."))
def staff() -> None:
    pass


@staff.command("create", help="Make a staff member (an active user with a verified e-mail); prints their id.")
@click.option("--email", required=True)
@click.option("--name", required=True, help="Full name.")
@click.option("--password", default=None, envvar="KABINET_STAFF_PASSWORD", help="Asked for when omitted (or KABINET_STAFF_PASSWORD).")
def staff_create(email: str, name: str, password: str | None) -> None:
    from resolvers.provider import staff as staff_members

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = Settings()
    user = _on_the_database(lambda: staff_members.create(settings, email, name, password, by=_operator()))
    click.echo(str(user.id))


@staff.command("list", help="The staff: e-mail, name, since when, and whether active.")
def staff_list() -> None:
    from resolvers.provider import staff as staff_members

    users = _on_the_database(staff_members.members)
    for user in users:
        click.echo(f"{user.email}\t{user.full_name}\tsince {_when(user.created_at)}\t{'active' if user.is_active else 'inactive'}")
    if not users:
        click.echo("kabinet: no staff yet (kabinet staff create)", err=True)


@staff.command("disable", help="End a staff member's rights and every sign-in they have.")
@click.option("--email", required=True)
def staff_disable(email: str) -> None:
    from events.broker import create_broadcast
    from resolvers.identity.sign_ins import EndedLogins
    from resolvers.common.context import RequestContext
    from resolvers.provider import staff as staff_members

    settings = Settings()

    async def disable():
        from tortoise.transactions import in_transaction

        # The servers refuse the ended sign-ins' access tokens once told on the broker, and, told
        # or not (the in-process broker lives inside the server: this process reaches nobody),
        # when they next read the ended sign-ins from the database, every few seconds.
        ended_logins = EndedLogins()
        broadcast = create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
        if not settings.broker_url.startswith("memory"):
            try:
                await broadcast.connect()
                ended_logins.broadcast = broadcast
            except Exception:  # noqa: BLE001 — the revocation still holds; the servers read it from the database
                pass
        ctx = RequestContext(settings, ended_logins=ended_logins)
        try:
            async with in_transaction():
                user, revoked = await staff_members.disable(ctx, email, by=_operator())
            await ctx.run_after_commit()
            return user, revoked
        finally:
            if ended_logins.broadcast is not None:
                await broadcast.disconnect()

    user, revoked = _on_the_database(disable, transaction=False)
    click.echo(
        f"kabinet: {user.email} is no longer staff; {revoked} sign-in token(s) revoked "
        "(running servers refuse their access tokens within a few seconds)"
    )


def _as_staff(work):
    """Run `work(actor, settings)` with the operator's staff rights (`_cli_actor`) in one transaction,
    then announce the events it recorded on the broker (a configured one: with the in-process broker
    the servers' event hubs read them from the database); a domain refusal exits 1 with its message."""
    from events.broker import create_broadcast
    from resolvers.common.unit_of_work import announce_committed

    settings = Settings()
    actor = _cli_actor(settings)

    result = _on_the_database(lambda: work(actor, settings))
    if actor.announcements.latest and not settings.broker_url.startswith("memory"):
        async def announce_on_the_broker() -> None:
            broadcast = create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
            await broadcast.connect()
            try:
                await announce_committed(actor.announcements, broadcast)
            finally:
                await broadcast.disconnect()

        try:
            asyncio.run(announce_on_the_broker())
        except Exception as error:  # noqa: BLE001 — done and committed; the servers poll the event log anyway
            click.echo(f"kabinet: could not announce the change on the broker ({type(error).__name__}); servers pick it up by polling", err=True)
    return result


def _organization_of(actor, inn: str, kpp: str | None):
    from resolvers.organizations import moderation

    return moderation.organization_id_by_inn(actor, inn, kpp, customer=True)


@staff.command("invite", help=(
    "Invite someone into the organization of INN (KPP when several share it) with a role, as its owner would: the "
    "same letter and link (7 days, once); a pending invitation to the same address replaced. Refused (exit 1, the "
    "reason printed) for an organization not APPROVED, an OWNER (`kabinet staff make-owner`), a member's address. "
    "In the organization's audit log and the provider's, as the CLI."))
@click.option("--inn", required=True, help="The organization's INN.")
@click.option("--kpp", default=None, help="Its KPP, when several organizations share the INN.")
@click.option("--email", default=None, help="The invitee's e-mail (this and/or --phone).")
@click.option("--phone", default=None, help="The invitee's phone, +7XXXXXXXXXX.")
@click.option("--role", required=True, type=click.Choice(["ADMIN", "ACCOUNTANT", "USER"], case_sensitive=False))
@click.option("--databases", default=None, metavar="ID,ID", help="For a USER: the databases they may open (the provider's external ids).")
def staff_invite(inn: str, kpp: str | None, email: str | None, phone: str | None, role: str, databases: str | None) -> None:
    from resolvers.organizations import invitations

    async def invite(actor, settings):
        organization_id = await _organization_of(actor, inn, kpp)
        database_ids = await invitations.databases_named(organization_id, (databases or "").split(","), "databases")
        return await invitations.staff_invite_member(
            actor, settings, organization_id, email, phone, invitations.role_named(role), database_ids,
        )

    row = _as_staff(invite)
    click.echo(f"kabinet: invitation as {row.role.value} sent to {row.email or row.phone} (INN {inn}); the link works until {_when(row.expires_at)} UTC")


@staff.command("make-owner", help=(
    "Give the organization of INN, which has no owner (its only owner left; the provider sent it and nobody "
    "claimed it), one: the member whose confirmed e-mail or phone this is becomes the OWNER now; any other address "
    "is invited as the OWNER, and whoever accepts, proving the address, becomes it. Refused (exit 1) while it has an "
    "owner: the owner invites people or hands it over. Audited, as the CLI."))
@click.option("--inn", required=True, help="The organization's INN.")
@click.option("--kpp", default=None, help="Its KPP, when several organizations share the INN.")
@click.option("--email", default=None, help="The person's e-mail (this and/or --phone).")
@click.option("--phone", default=None, help="The person's phone, +7XXXXXXXXXX.")
def staff_make_owner(inn: str, kpp: str | None, email: str | None, phone: str | None) -> None:
    from resolvers.organizations import invitations

    async def make(actor, settings):
        return await invitations.staff_make_owner(actor, settings, await _organization_of(actor, inn, kpp), email, phone)

    made = _as_staff(make)
    if made.membership is not None:
        click.echo(f"kabinet: {email or phone} is now the OWNER of {made.organization.name} (INN {inn})")
    else:
        click.echo(
            f"kabinet: invitation as OWNER sent to {made.invite.email or made.invite.phone} (INN {inn}); whoever accepts "
            f"it becomes the owner; the link works until {_when(made.invite.expires_at)} UTC"
        )


@main.group(help="The provider API (/provider/v1/…): its programs write the provider's data with service tokens.")
def provider() -> None:
    pass


@provider.group(help="Service accounts' tokens: scoped, revocable, shown once.")
def token() -> None:
    pass


@token.command("create", help="Make a service account; prints ONLY its token (shown this once; kabinet keeps its hash).")
@click.option("--name", required=True, help="The program it is for, e.g. 1c-accounting.")
@click.option("--scope", "scopes", required=True, help="Comma-separated: catalog:write, billing:write, cloud:write, staff.")
def token_create(name: str, scopes: str) -> None:
    from resolvers.provider import service_accounts

    _, secret = _on_the_database(lambda: service_accounts.create(name, scopes, by=_operator()))
    click.echo(secret)
    click.echo("kabinet: give the token to the program (Authorization: Bearer <token>); it is not shown again.", err=True)


@token.command("list", help="Service accounts: name, scopes, created, last used, revoked.")
def token_list() -> None:
    from resolvers.provider import service_accounts

    accounts = _on_the_database(service_accounts.accounts)
    for account in accounts:
        click.echo(
            f"{account.name}\t{','.join(account.scopes)}\tcreated {_when(account.created_at)}"
            f"\tlast used {_when(account.last_used_at)}\t{'revoked ' + _when(account.revoked_at) if account.revoked_at else 'active'}"
        )
    if not accounts:
        click.echo("kabinet: no service accounts yet (kabinet provider token create)", err=True)


@token.command("revoke", help="Revoke a service account's token: its next request is refused.")
@click.option("--name", required=True)
def token_revoke(name: str) -> None:
    from resolvers.provider import service_accounts

    account = _on_the_database(lambda: service_accounts.revoke(name, by=_operator()))
    click.echo(f"kabinet: {account.name} revoked")


@provider.command("refused", help=(
    "The provider's records refused, newest first, whatever the door (`kabinet import`, the API): when, "
    "source (the file's name or api), line, entity, external id, field at fault and reason."))
@click.option("--entity", default=None, help="Only this entity's records (e.g. ledger_entry).")
@click.option("--source", default=None, help="Only those from this imported file (its name; a path is read as its name) or `api`.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def provider_refused(entity: str | None, source: str | None, limit: int) -> None:
    from resolvers.provider import staff_desk
    from resolvers.common.pagination import PageRequest

    settings = Settings()
    name = Path(source).name if source else None  # `kabinet import` keeps the file's name, not its path
    page = _on_the_database(lambda: staff_desk.refused_records(
        _cli_actor(settings), entity, PageRequest(first=limit, after=None), source=name,
    ))
    for row in page.items:
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.source}\tline {row.line}\t{row.entity}\t{row.external_id or '-'}"
            f"\t{row.field or '-'}\t{row.reason}"
        )
    if not page.items:
        click.echo("kabinet: no refused records", err=True)
    elif page.has_next_page:
        click.echo(f"kabinet: the newest {limit} shown; there are more (--limit)", err=True)


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
    "code. Nothing is published until they are set (README: Documents)."))
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
    "Configure the requisites from FILE (TOML; README: Documents): each field checked (INN, KPP, OGRN, BIC, the "
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


if __name__ == "__main__":
    main()
