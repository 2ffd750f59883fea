"""The provider's side at the operator's prompt: the staff, the provider API's service accounts, the
records it refused, the outbox's failed messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from foundation.settings import Settings
from kabinet.cli.base import _cli_actor, _on_the_database, _operator, _when, main


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
    from resolvers.organizations import staff_invitations

    async def invite(actor, settings):
        organization_id = await _organization_of(actor, inn, kpp)
        database_ids = await staff_invitations.databases_named(organization_id, (databases or "").split(","), "databases")
        return await staff_invitations.staff_invite_member(
            actor, settings, organization_id, email, phone, staff_invitations.role_named(role), database_ids,
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
    from resolvers.organizations import staff_invitations

    async def make(actor, settings):
        return await staff_invitations.staff_make_owner(actor, settings, await _organization_of(actor, inn, kpp), email, phone)

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
