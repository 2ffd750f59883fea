"""The cluster agent API: a real 1C cluster's agent reports sessions, carries out terminations and
update runs.

An agent authenticates with `Authorization: Bearer <token>`: an agent token of the programs' token
store (`kabinet agent token create --name … --clusters NAME,…` or `--organizations CODE,…`,
resolvers/cloud/agent_tokens.py), or, deprecated, one whose sha256 is in KABINET_CLUSTER_AGENT_TOKENS
(acting for every organization). The token is the agent: its name owns its claims, and what it
reaches (its organizations, or the databases on its clusters: resolvers/cloud/clusters.py `reach`) is all
it sees and touches. Every endpoint checks the object against it (a cluster, a session, a run, an
organization or database named in the body); what is outside is answered as if it did not exist
(404, or absent from a list).

JSON in and out; a refusal is `{"error": {"code", "message", "field"}}` with 400 (bad input: the
field and why), 401 (no valid token), 404 (no such object, or not this agent's) or 409 (a state that
forbids it). Every report is idempotent: the cluster's session id (`clusterSessionId`) names a
session, and a report that changes nothing answers `changed: false`. A time the agent reports
(`startedAt`, `endedAt`) is an ISO 8601 date-time with its UTC offset, from 2000-01-01 to
KABINET_AGENT_CLOCK_SKEW_SECONDS (300) past kabinet's clock.

Each change is one transaction: the session's transition in resolvers/cloud/sessions.py (which records its
event), announced once committed, exactly as the simulated cluster does (workers/cluster.py).

    POST /cluster/sessions/snapshot           a cluster's sessions per infobase, each list complete: the
                                              unknown start (or are REFUSED), the missing end; idempotent;
                                              the cluster connected (resolvers/cloud/clusters.py)
    POST /cluster/sessions/started            a session began          → Session ACTIVE + STARTED
    POST /cluster/sessions/ended              a session ended          → ENDED (TERMINATED if asked to end)
    GET  /cluster/terminations                sessions asked to end (TERMINATING), oldest request first, with
                                              their cluster and infobase (?limit=1…500, default 100;
                                              ?organizationCode=, ?cluster= to narrow)
    POST /cluster/terminations/{id}/done      the cluster ended it     → TERMINATED
    POST /cluster/terminations/{id}/refused   the cluster would not    → ACTIVE again, with its reason
    GET  /cluster/limits                      what to admit: per organization its concurrent-sessions limit
                                              and running sessions, per database its lock of new sessions
                                              (?organizationCode= to narrow)

A session reported beyond the organization's limit, or into a locked database, is recorded REFUSED
(with its reason, a REFUSED event) and answered 409 `{"error": {"code": "REFUSED", …}, "session": …}`:
the agent ends it in the cluster (`rac session terminate`).

Update runs (agent mode; the run's lifecycle is resolvers/updates/jobs.py's, shared with the worker):

    POST /cluster/updates/claim               take a due run of the token's organizations under a lease: its
                                              target, database, `fencingToken` and, for this run only, the
                                              database's 1C credentials ({"run": null}: none due)
    POST /cluster/updates/{id}/heartbeat      the lease extended                     (409 LEASE_LOST: stop)
    POST /cluster/updates/{id}/step           warn_users, lock, end_sessions, update, unlock, with progress
                                              and a message: each an updateRuns event (409 CONFLICT: out of order)
    POST /cluster/updates/{id}/result         succeeded (the installed version) or failed (a reason: retried,
                                              then FAILED)

Every call after the claim names it by `fencingToken`, random per claim and given in the claim's
answer only; it counts only from the token that claimed. Once the lease ran out and the run was taken
back or over, or for any other fencing token, it is 409 LEASE_LOST and changes nothing. Credentials
are in the claim's answer only, and never logged.

Each endpoint declares the fields it reads (`agent_endpoint`): a handler reads no other
(tests/test_agent_api_fuzz.py fuzzes each one).

The package: `endpoints.py` the frame every endpoint shares (the token check of `auth.py`, the body,
the declared fields, the JSON answer and errors), `sessions.py` the sessions, terminations and limits,
`updates.py` the update runs.
"""

from __future__ import annotations

from kabinet.agent_api import sessions, updates  # noqa: F401 — importing them registers their endpoints
from kabinet.agent_api.endpoints import ENDPOINTS, SNAPSHOT_PATH, routes, snapshot_slot

__all__ = ["ENDPOINTS", "SNAPSHOT_PATH", "routes", "snapshot_slot"]
