"""`kabinet doctor`: what a configured deployment lacks, or does that production must not, each a
finding that BLOCKS (do not open it to customers) or WARNS (works, with a part missing), with its fix.

The checks read the settings and the configured database (never change them: no secret key is
generated here, nothing is migrated or seeded). `examine` returns the findings; the CLI prints them
and exits 1 when one blocks. The findings' texts name the setting or command that fixes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from foundation.settings import Settings
from resolvers.cloud.cluster_mode import ClusterMode

BLOCKS = "BLOCKS"
WARNS = "WARNS"
MIN_SECRET_KEY_LENGTH = 32  # characters; token_urlsafe(48) gives 64
NEW_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass(frozen=True)
class Finding:
    level: str  # BLOCKS or WARNS
    what: str  # what is missing or unsafe, and what it does to the deployment
    fix: str  # the setting to set or the command to run


@dataclass
class Examination:
    findings: list[Finding] = field(default_factory=list)
    cluster_mode: ClusterMode | None = None  # None when the database could not be read

    @property
    def blocked(self) -> bool:
        return any(finding.level == BLOCKS for finding in self.findings)

    def of(self, level: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.level == level]


def settings_findings(settings: Settings) -> list[Finding]:
    """What the settings alone say."""
    found: list[Finding] = []
    if not settings.secret_key:
        found.append(Finding(
            BLOCKS, f"KABINET_SECRET_KEY is unset: a key generated into {settings.data_dir}/secret_key signs tokens and "
            "encrypts stored 1C credentials, different in each container and lost with the data folder (everyone signed "
            "out, the credentials unreadable)",
            f"set KABINET_SECRET_KEY to a random string of {MIN_SECRET_KEY_LENGTH}+ characters, the same in every process: "
            f"{NEW_SECRET_KEY}",
        ))
    elif len(settings.secret_key) < MIN_SECRET_KEY_LENGTH:
        found.append(Finding(
            BLOCKS, f"KABINET_SECRET_KEY is {len(settings.secret_key)} characters: short enough to guess, and whoever "
            "guesses it signs in as anyone",
            f"set KABINET_SECRET_KEY to a random string of {MIN_SECRET_KEY_LENGTH}+ characters: {NEW_SECRET_KEY} "
            "(everyone signs in again)",
        ))
    if not settings.public_url:
        found.append(Finding(
            BLOCKS, "KABINET_PUBLIC_URL is unset: download links and the links in invitation and confirmation "
            "e-mails have no host, so they lead nowhere",
            "set KABINET_PUBLIC_URL to the address customers open, e.g. https://cabinet.example.ru",
        ))
    elif not settings.public_url.startswith("https://"):
        found.append(Finding(
            WARNS, f"KABINET_PUBLIC_URL is {settings.public_url}: links to documents and invitations go over plain HTTP",
            "serve kabinet behind TLS and set KABINET_PUBLIC_URL=https://…",
        ))
    if settings.should_seed_demo:
        found.append(Finding(
            BLOCKS, "KABINET_SEED_DEMO is on" + (" (the default on SQLite)" if settings.seed_demo is None else "")
            + ": an empty database gets the demo data set at start, accounts with the published password among it",
            "set KABINET_SEED_DEMO=false (and use PostgreSQL: KABINET_DATABASE_URL=postgres://…)",
        ))
    if settings.cluster == "simulated":
        found.append(Finding(
            BLOCKS, "KABINET_CLUSTER=simulated: kabinet's simulated cluster makes sessions up, ends them and "
            "\"carries out\" update runs itself (outside the databases the provider sent), nothing on a real cluster",
            "unset KABINET_CLUSTER (or set it to agent) and run the cluster agent beside the cluster (cluster_agent/README.md)",
        ))
    if not settings.sms_url:
        if settings.sms_to_mail_url:
            found.append(Finding(
                WARNS, "no SMS gateway: SMS are written where KABINET_MAIL_URL says (files), no phone receives them",
                "set KABINET_SMS_URL and KABINET_SMS_* (docs/operator.md: SMS through a gateway), or KABINET_SMS_BY_MAIL_URL=false",
            ))
        else:
            found.append(Finding(
                WARNS, "no SMS gateway: phone sign-up is off, codes and links by phone answer UNAVAILABLE",
                "set KABINET_SMS_URL and KABINET_SMS_* (docs/operator.md: SMS through a gateway)",
            ))
    scheme = (settings.mail_url or "file://").split(":", 1)[0].lower()
    if scheme in ("file", "console"):
        where = "the console" if scheme == "console" else (
            "files in " + (settings.mail_url.removeprefix("file://") if settings.mail_url else f"{settings.data_dir}/outbox")
        )
        found.append(Finding(
            WARNS, f"e-mail goes to {where}: nobody receives confirmation codes, invitations or password resets",
            "set KABINET_MAIL_URL=smtp://user:password@host:587?starttls=true&from=cabinet@example.ru (or smtps://…)",
        ))
    if not settings.is_sqlite and settings.broker_url.startswith("memory"):
        found.append(Finding(
            WARNS, "KABINET_BROKER_URL is memory:// with PostgreSQL: the API and worker processes do not tell each other "
            "of changes; subscribers learn of them only at the next poll (KABINET_EVENT_POLL_SECONDS)",
            "set KABINET_BROKER_URL=redis://host:6379 in every process",
        ))
    if settings.agent_token_hashes:
        found.append(Finding(
            WARNS, f"KABINET_CLUSTER_AGENT_TOKENS holds {len(settings.agent_token_hashes)} token hash(es), each acting for "
            "every organization (deprecated)",
            "issue scoped tokens (kabinet agent token create --name … --organizations CODE,…), then remove the setting",
        ))
    return found


async def database_findings(settings: Settings, caller) -> tuple[list[Finding], ClusterMode]:
    """What the database says (connected already): the demo, the supplier, agents, the cluster mode.
    `caller`: the operator at the CLI (staff rights), who may read the waiting documents."""
    from kabinet.demo.blocks import NEWER_VERSION, ROMASHKA_PEOPLE, VASILEK_PEOPLE
    from resolvers.cloud import agent_tokens
    from resolvers.cloud import cluster_mode
    from resolvers.common import demo_mark
    from resolvers.provider import staff_desk
    from resolvers.billing import supplier as suppliers

    found: list[Finding] = []
    demo_logins = await demo_mark.logins_present([person[0] for person in ROMASHKA_PEOPLE + VASILEK_PEOPLE])
    if await demo_mark.seeded() or demo_logins:
        shown = ", ".join(demo_logins[:2]) + (", …" if len(demo_logins) > 2 else "")
        found.append(Finding(
            BLOCKS, "this database holds the demo data set: "
            + (f"accounts with the published password kabinet-demo ({shown}), " if demo_logins else "")
            + f"demo releases (up to {NEWER_VERSION}) that become real databases' update target, made-up organizations",
            "deploy on a fresh database without the demo (no `kabinet seed --demo`, KABINET_SEED_DEMO=false); "
            "kabinet has no command that takes the demo out",
        ))
    waiting = await staff_desk.waiting_documents(caller)
    pending = (
        f" ({waiting.documents} documents of {waiting.organizations} organizations wait now)" if waiting.documents else ""
    )
    if not waiting.supplier_configured:
        found.append(Finding(
            BLOCKS, "no supplier requisites: the monthly invoices and acts are not published, they wait for them" + pending,
            "kabinet supplier check supplier.toml && kabinet supplier set supplier.toml (docs/documents.md); "
            "`kabinet documents waiting` shows what waits",
        ))
    elif await demo_mark.demo_supplier_in_force():
        found.append(Finding(
            BLOCKS, "the supplier requisites in force are the demo's (a bank that does not exist): invoices published "
            "now cannot be paid",
            "kabinet supplier set supplier.toml with your own requisites (docs/documents.md)",
        ))
    mode = await cluster_mode.read(settings)
    active_agents = [token for token in await agent_tokens.tokens() if token.revoked_at is None]
    if not active_agents and not settings.agent_token_hashes and not mode.simulated:
        found.append(Finding(
            WARNS, "no agent token yet: no cluster agent can report sessions, so the live session lists stay empty, "
            "terminations stay TERMINATING and update runs wait",
            "kabinet agent token create --name cluster-1 --all-organizations (or --organizations CODE,…), then run the "
            "agent with it (cluster_agent/README.md)",
        ))
    return found, mode


async def examine(settings: Settings, caller) -> Examination:
    """Every finding for these settings and their database (connected and closed here)."""
    from kabinet import db

    examination = Examination(settings_findings(settings))
    problem = await _database_problem(settings)
    if problem is not None:
        examination.findings.append(problem)
    else:
        try:
            found, examination.cluster_mode = await database_findings(settings, caller)
            examination.findings.extend(found)
        finally:
            await db.disconnect()
    broker = await _broker_problem(settings)
    if broker is not None:
        examination.findings.append(broker)
    return examination


async def _database_problem(settings: Settings) -> Finding | None:
    """None when the database answers and holds every migration of this code (connected then);
    otherwise the finding (and nothing left connected)."""
    from tortoise import Tortoise

    from kabinet import db
    from kabinet.http import MIGRATIONS

    fix = "check KABINET_DATABASE_URL (and that the database server runs), then `kabinet migrate`"
    if settings.is_sqlite and not settings.resolved_database_url.endswith(":memory:"):
        path = settings.resolved_database_url.split("://", 1)[1]
        path = "/" + path.lstrip("/") if path.startswith("/") else path  # sqlite:////abs → /abs
        if not Path(path).exists():
            return Finding(BLOCKS, f"the database {path} does not exist", "`kabinet migrate` creates it (set KABINET_DATABASE_URL first)")
    try:
        await asyncio.wait_for(db.connect(settings), timeout=15)
        _, rows = await asyncio.wait_for(
            Tortoise.get_connection("default").execute_query("SELECT name FROM tortoise_migrations WHERE app = 'models'"),
            timeout=15,
        )
    except Exception as error:  # noqa: BLE001 — unreachable, refused, no schema: each is the finding
        with contextlib.suppress(Exception):
            await db.disconnect()
        return Finding(BLOCKS, f"the database cannot be read: {type(error).__name__}: {str(error)[:200]}", fix)
    missing = sorted(MIGRATIONS - {row["name"] for row in rows})
    if missing:
        await db.disconnect()
        return Finding(BLOCKS, f"the database lacks {len(missing)} migration(s) of this code (from {missing[0]})", "kabinet migrate")
    return None


async def _broker_problem(settings: Settings) -> Finding | None:
    """A broker other than the in-process one must answer (every process publishes its changes there)."""
    if settings.broker_url.startswith("memory"):
        return None
    from events.broker import broker_reachable, create_broadcast

    broadcast = create_broadcast(settings.broker_url, settings.resolved_broker_namespace)
    try:
        await asyncio.wait_for(broadcast.connect(), timeout=5)
        reachable = await broker_reachable(broadcast)
    except Exception:  # noqa: BLE001 — unreachable: the finding
        reachable = False
    finally:
        with contextlib.suppress(Exception):
            await broadcast.disconnect()
    if reachable:
        return None
    return Finding(BLOCKS, f"the broker {settings.broker_url.split('@')[-1]} does not answer: live subscriptions and sign-outs "
                   "do not reach the other processes", "check KABINET_BROKER_URL and that Redis runs")
