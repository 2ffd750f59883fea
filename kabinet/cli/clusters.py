"""The 1C clusters kabinet knows and their agents' tokens."""

from __future__ import annotations

import click

from foundation.settings import Settings
from kabinet.cli.base import _on_the_database, _operator, _when, main


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
