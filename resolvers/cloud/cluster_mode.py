"""Who ends sessions and carries out update runs — kabinet's simulated cluster or a real cluster's
agent — and where the simulated cluster may act at all. Production never pretends: the simulated
cluster runs when asked (KABINET_CLUSTER=simulated) or on the embedded default's demo, and even then
never in a database the provider sent.

The mode, first rule that applies:
1. KABINET_CLUSTER (`simulated` or `agent`) when set;
2. `agent` once an agent token exists (issued here, revoked ones too, or in KABINET_CLUSTER_AGENT_TOKENS):
   revoking the last agent's token hands no real cluster's sessions to the simulator;
3. `simulated` on the embedded default's demo: SQLite holding the demo data set (resolvers/common/demo_mark.py);
4. `agent` otherwise — PostgreSQL, or SQLite without the demo: sessions and runs wait for an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from foundation.settings import Settings
from models.cloud import Database
from models.program_tokens import TokenKind
from resolvers.common import demo_mark
from resolvers.identity import program_tokens

SIMULATED = "simulated"
AGENT = "agent"


@dataclass(frozen=True)
class ClusterMode:
    mode: str  # SIMULATED or AGENT
    reason: str  # why, for the start-up line and `kabinet doctor`
    asked: bool = False  # KABINET_CLUSTER said so

    @property
    def simulated(self) -> bool:
        return self.mode == SIMULATED

    def line(self) -> str:
        """What start-up logs: the mode and why, on one line."""
        return f"cluster mode: {self.mode} ({self.reason})"


async def read(settings: Settings) -> ClusterMode:
    """The deployment's cluster mode now (see the module's rules)."""
    if settings.cluster is not None:
        return decide(settings, agent_token=False, demo=False)
    agent_token = bool(settings.agent_token_hashes) or await program_tokens.ever_issued(TokenKind.AGENT)
    demo = not agent_token and settings.is_sqlite and await demo_mark.seeded()
    return decide(settings, agent_token=agent_token, demo=demo)


def decide(settings: Settings, *, agent_token: bool, demo: bool) -> ClusterMode:
    """The module's rules on what `read` found: an agent token exists, the database holds the demo."""
    if settings.cluster is not None:
        return ClusterMode(settings.cluster, f"KABINET_CLUSTER={settings.cluster}", asked=True)
    if agent_token:
        return ClusterMode(AGENT, "an agent token exists and KABINET_CLUSTER is unset")
    if not settings.is_sqlite:
        return ClusterMode(AGENT, "PostgreSQL: the simulated cluster runs here only with KABINET_CLUSTER=simulated")
    if demo:
        return ClusterMode(
            SIMULATED, "the embedded default's demo: SQLite holding the demo data set; KABINET_CLUSTER=agent hands it to an agent"
        )
    return ClusterMode(AGENT, "SQLite without the demo data set: the simulated cluster runs only with KABINET_CLUSTER=simulated")


def simulated_databases() -> QuerySet[Database]:
    """The databases the simulated cluster may act in (start and end sessions, carry out terminations
    and update runs): none the provider sent (`external_id` set), none on a cluster kabinet knows
    (`cluster_id` set: its agent reports it). A real database's sessions, its terminations and its
    runs wait for a real cluster's agent, whatever the mode. `runs_simulated` is the same rule on a row."""
    return Database.filter(external_id__isnull=True, cluster_id__isnull=True)


def runs_simulated(database: Database) -> bool:
    """Whether the simulated cluster may act in this database (`simulated_databases`, on one row)."""
    return database.external_id is None and database.cluster_id is None


def in_simulated_databases() -> Q:
    """A filter on rows with a `database_id` (sessions, update runs): of a database the simulated
    cluster may act in, or of none (a session whose database was deleted)."""
    return Q(database_id__isnull=True) | Q(database_id__in=Subquery(simulated_databases().values("id")))
