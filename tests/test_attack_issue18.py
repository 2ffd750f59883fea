"""Issue 18's new doors read by an attacker (the snapshot, terminations refused, claims by cluster, the
staff putting people in, Database.cluster): each hole found is a test here, with its fix; what held and
no other test covered is here too."""

from __future__ import annotations

import pytest

from kabinet.clock import utcnow
from tests.test_cluster_snapshot import SNAPSHOT, agent_mode, world  # noqa: F401 (fixtures)


@pytest.mark.parametrize("token", ["all", "agent_a", "cluster_agent"])
@pytest.mark.parametrize("name", ["\x00", "main\x00", "{cluster}\x00", "MAIN", " {cluster}"])
async def test_a_snapshot_naming_no_clusters_name_is_a_404_not_a_500(client, world, token, name):
    """Was: a NUL in `cluster` reached PostgreSQL's WHERE name = $1 and failed there (500); a text
    that is no cluster's name is now answered as an unknown cluster, with nothing asked of the database."""
    body = {"cluster": name.format(cluster=world["cluster"].name), "takenAt": utcnow().isoformat(), "infobases": []}
    answer = await client.post(SNAPSHOT, json=body, headers=world[token])
    assert (answer.status_code, answer.json()["error"]["field"]) == (404, "cluster"), answer.text
