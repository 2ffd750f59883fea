"""`kabinet`: serve the API, migrate the database, seed the demo data, print the schema.

The command group, and what every command of the provider's operator shares: who runs it (the OS
user, for the provider's audit), the operator as a caller holding every scope, the database for one
command's work. The commands are in this package by concern (kabinet/cli/__init__.py).
"""

from __future__ import annotations

import asyncio

import click

from foundation import logs
from foundation.settings import Settings


@click.group(help="kabinet: the GraphQL API of the client cabinet. Configured by KABINET_* variables or .env.")
def main() -> None:
    settings = Settings()  # KABINET_LOG_FORMAT, KABINET_LOG_LEVEL: foundation/logs.py
    logs.configure(settings.log_format, settings.log_level)


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
