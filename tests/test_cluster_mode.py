"""Simulation only when asked (issue 18): the cluster mode's rules, and the simulated cluster keeping
out of the databases the provider sent even when it runs.

The mode on a fresh database (SQLite with and without the demo, PostgreSQL) is read by real
processes in tests/test_doctor.py; here, the rules on what a read finds, and the tests' database."""

from __future__ import annotations

import uuid

import pytest

from foundation.settings import Settings
from models.cloud import Session, SessionStatus
from models.updates import UpdateRunStatus
from resolvers.cloud import cluster_mode
from resolvers.common import demo_mark
from tests import agents, factories
from foundation.clock import utcnow
from tests.test_live_sessions import cluster_ends
from tests.test_update_worker import due_run, updatable_database, worker_for
from workers.cluster import SimulatedCluster, carry_out_terminations

SQLITE = "sqlite:///tmp/kabinet.sqlite3"
POSTGRES = "postgres://kabinet@127.0.0.1:5432/kabinet"


def bare(database_url: str, **settings) -> Settings:
    return Settings(_env_file=None, database_url=database_url, **settings)


@pytest.mark.parametrize(
    ("database_url", "cluster", "agent_token", "demo", "expected", "why"),
    [
        (SQLITE, None, False, True, "simulated", "the embedded default's demo"),
        (SQLITE, None, False, False, "agent", "SQLite without the demo data set"),
        (SQLITE, None, True, True, "agent", "an agent token exists"),
        (POSTGRES, None, False, False, "agent", "PostgreSQL"),
        (POSTGRES, None, False, True, "agent", "PostgreSQL"),  # never by default on PostgreSQL, demo or not
        (POSTGRES, "simulated", True, False, "simulated", "KABINET_CLUSTER=simulated"),
        (SQLITE, "agent", False, True, "agent", "KABINET_CLUSTER=agent"),
    ],
)
def test_the_mode_is_asked_for_or_simulated_only_on_the_embedded_demo(database_url, cluster, agent_token, demo, expected, why):
    mode = cluster_mode.decide(bare(database_url, cluster=cluster), agent_token=agent_token, demo=demo)
    assert (mode.mode, mode.asked) == (expected, cluster is not None)
    assert why in mode.reason
    assert mode.line().startswith(f"cluster mode: {expected} (") and "\n" not in mode.line()


async def test_the_mode_read_from_the_database(app, settings):
    """The tests' database holds the demo (seeded at start); an agent token turns it to agent mode."""
    assert await demo_mark.seeded()
    assert (await cluster_mode.read(settings)).mode == "simulated"  # KABINET_CLUSTER=simulated (conftest)
    assert (await cluster_mode.read(settings.model_copy(update={"cluster": "agent"}))).mode == "agent"
    await agents.issue(name=f"mode-{uuid.uuid4().hex[:6]}")
    unset = settings.model_copy(update={"cluster": None})
    assert (await cluster_mode.read(unset)).reason.startswith("an agent token exists")


async def provider_and_own_database():
    """An organization with a database the provider sent (external_id) and one it did not."""
    org, _ = await factories.create_team()
    own = await updatable_database(org)
    sent = await updatable_database(org)
    sent.external_id = f"db-{uuid.uuid4().hex[:12]}"
    await sent.save()
    return org, own, sent


async def test_the_simulated_cluster_never_acts_in_a_database_the_provider_sent(app, settings):
    org, own, sent = await provider_and_own_database()
    simulated = set(await cluster_mode.simulated_databases().filter(organization_id=org.id).values_list("id", flat=True))
    assert simulated == {own.id}

    # Terminations: the provider's database's session waits for an agent.
    asked = {}
    for database in (own, sent):
        session = await factories.create_session(database)
        await Session.filter(id=session.id).update(status=SessionStatus.TERMINATING, termination_requested_at=utcnow())
        asked[database.id] = session.id
    await cluster_ends(app, await Session.get(id=asked[own.id]))  # rounds: other tests' terminations may wait too
    assert (await Session.get(id=asked[own.id])).status == SessionStatus.TERMINATED
    assert (await Session.get(id=asked[sent.id])).status == SessionStatus.TERMINATING

    # Update runs: the provider's database's run is not carried out, its version not set.
    runs = {database.id: await due_run(database) for database in (own, sent)}
    await worker_for(app, settings, own, sent).step()
    own_run, sent_run = runs[own.id], runs[sent.id]
    for row in (own_run, sent_run, own, sent):
        await row.refresh_from_db()
    assert (own_run.status, own.version) == (UpdateRunStatus.SUCCEEDED, "3.0.151.7")
    assert (sent_run.status, sent_run.attempts, sent.version) == (UpdateRunStatus.SCHEDULED, 0, "3.0.150.20")

    # Churn (workers/cluster.py simulate_churn) picks its database among these alone.
    assert sent.id not in set(await cluster_mode.simulated_databases().values_list("id", flat=True))


async def test_the_simulated_cluster_never_acts_in_a_database_on_a_cluster_kabinet_knows(app, settings):
    """A database the operator attached to a cluster (issue 18, `kabinet cluster attach`) is its agent's:
    no termination carried out, no churn, no `sessionsAsOf` made up by the simulator."""
    from resolvers.cloud import clusters

    org, own, _ = await provider_and_own_database()
    attached = await updatable_database(org)
    await clusters.place(attached, await clusters.add(f"cm-{uuid.uuid4().hex[:10]}"), "buh")
    simulated = set(await cluster_mode.simulated_databases().filter(organization_id=org.id).values_list("id", flat=True))
    assert simulated == {own.id}
    assert (cluster_mode.runs_simulated(own), cluster_mode.runs_simulated(attached)) == (True, False)
    session = await factories.create_session(attached)
    await Session.filter(id=session.id).update(status=SessionStatus.TERMINATING)
    await carry_out_terminations(SimulatedCluster(step_seconds=0), app.state.broadcast)
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATING


async def test_in_the_simulated_mode_an_agent_claims_only_what_the_simulator_may_not(app, client, settings):
    """KABINET_CLUSTER=simulated (conftest) beside a real agent: the provider's database's run is the
    agent's to claim (the simulator keeps out of it), the simulator's own database's run is not."""
    org, own, sent = await provider_and_own_database()
    runs = {database.id: await due_run(database) for database in (own, sent)}
    headers = agents.bearer(await agents.issue([org]))
    claimed = (await client.post("/cluster/updates/claim", json={}, headers=headers)).json()["run"]
    assert claimed is not None and claimed["database"]["externalId"] == sent.external_id
    assert (await client.post("/cluster/updates/claim", json={}, headers=headers)).json() == {"run": None}
    await runs[own.id].refresh_from_db()
    assert (runs[own.id].status, runs[own.id].attempts) == (UpdateRunStatus.SCHEDULED, 0)
