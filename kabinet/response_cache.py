"""Answers to identical queries of one user, kept while nothing they read has changed.

A dashboard is asked for again and again (every open tab, every refresh) and changes far less
often. An answer is kept per user and per (query, operation, variables); before it is given again,
one SQL statement reads the data versions of everything that user can read — their organizations,
the people in them, their own account, the catalogue (`models/versions.py`) — and the answer is
given only if they are the versions it was computed under. Database triggers move those versions
in the transaction of every change, so an answer is never staler than the last commit, from any
process, whatever made the change. What depends on time alone (an invitation expiring, a document
that becomes visible at midnight) is re-read after `response_cache_seconds`.

Kept per user and, for an integrator's API token, per token (its answers are never its creator's).
Kept: answers without errors to queries (not mutations or subscriptions) of signed-in users who
are not the provider's staff (staff read across every organization).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from graphql import GraphQLError, OperationDefinitionNode
from prometheus_client import Counter
from tortoise import connections

from foundation import clock
from models.versions import CATALOGUE
from foundation.bounded_cache import BoundedCache
from schema.limits import parse_document

LOOKUPS = Counter("kabinet_response_cache_lookups_total", "Response cache lookups", ["outcome"])

# Scopes a user's answers depend on and their versions; `?1` is the user (SQLite numbers its
# parameters so; PostgreSQL spells them `$1`).
_VERSIONS_SQL = """
WITH organizations AS (
  SELECT organization_id AS scope FROM membership WHERE user_id = ?1
  UNION SELECT organization_id FROM join_request WHERE user_id = ?1
), scopes AS (
  SELECT ?1 AS scope UNION SELECT ?2 UNION SELECT scope FROM organizations
  UNION SELECT m.user_id FROM membership m JOIN organizations o ON m.organization_id = o.scope
)
SELECT (SELECT is_staff FROM "user" WHERE id = ?1) AS staff, s.scope AS scope, v.version AS version
FROM scopes s LEFT JOIN data_version v ON v.scope = s.scope
"""
_VERSIONS_SQL_POSTGRES = _VERSIONS_SQL.replace("?1 AS scope", "$1::uuid AS scope").replace("?2", "$2::uuid").replace("?1", "$1")


ENTRY_OVERHEAD = 1_000  # an entry's objects: the key tuple, the versions' set, the entry itself
VERSION_BYTES = 250  # one (scope, version) pair of the versions an answer was computed under


@dataclass(frozen=True)
class _Entry:
    body: bytes
    versions: frozenset
    stored_at: float
    size: int  # what it counts against the budget: the answer, its key (query text, variables) and their overhead


@dataclass(frozen=True)
class Lookup:
    """A miss that may be kept: where, and under which versions."""

    key: tuple
    versions: frozenset
    started_at: float


def operation_kind(query: str, operation_name: str | None, max_tokens: int) -> str | None:
    """"query", "mutation" or "subscription" for the operation a request runs; None if unclear.
    The document is the one the schema's parser step takes (schema/limits.py, which keeps it)."""
    try:
        document = parse_document(query, max_tokens)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return operations[0].operation.value if len(operations) == 1 else None


class ResponseCache:
    def __init__(self, max_bytes: int, max_age_seconds: float) -> None:
        self.max_age = max_age_seconds
        # an answer over an eighth of the budget is not kept: one huge answer never pushes out the many
        self.kept: BoundedCache[_Entry] = BoundedCache("answers", max_bytes, max_bytes // 8)

    async def lookup(
        self, user_id: uuid.UUID, query: PlainQuery | None, token_id: uuid.UUID | None = None
    ) -> tuple[bytes | None, Lookup | None]:
        """(the kept answer, None) on a hit; (None, where to keep it) on a miss worth keeping;
        (None, None) for a request that is not kept (not a plain query — `plain_query` gave None —
        or the provider's staff). `token_id`: the integrator's API token the user acts through — it
        sees less than they do, so its answers are kept apart (per token) from the user's own."""
        if query is None:
            return None, None
        text, operation, variables = query
        key = ((user_id, token_id), text, operation, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS))
        started_at = clock.timestamp()  # the app's time: what depends on time alone follows a moved clock
        staff, versions = await self._versions(user_id)
        if staff:
            return None, None
        entry = self.kept.get(key)
        if entry is not None and entry.versions == versions and 0 <= started_at - entry.stored_at < self.max_age:
            LOOKUPS.labels("hit").inc()
            return entry.body, None
        LOOKUPS.labels("miss").inc()
        return None, Lookup(key, versions, started_at)

    def keep(self, lookup: Lookup, body: bytes) -> None:
        """Keep an answer computed after `lookup` read the versions (so it is at least that fresh)."""
        size = (len(body) + len(lookup.key[1]) + len(lookup.key[3]) + len(lookup.key[2] or "") + ENTRY_OVERHEAD
                + VERSION_BYTES * len(lookup.versions))
        self.kept.put(lookup.key, _Entry(body, lookup.versions, lookup.started_at, size), size)

    async def _versions(self, user_id: uuid.UUID) -> tuple[bool, frozenset]:
        connection = connections.get("default")
        if connection.capabilities.dialect == "postgres":
            _, rows = await connection.execute_query(_VERSIONS_SQL_POSTGRES, [user_id, CATALOGUE])
        else:
            _, rows = await connection.execute_query(_VERSIONS_SQL, [str(user_id), str(CATALOGUE)])
        staff = bool(rows and rows[0]["staff"])
        return staff, frozenset((str(row["scope"]), row["version"] or 0) for row in rows)


PlainQuery = tuple[str, str | None, dict | None]  # query text, operation name, variables


def plain_query(body: bytes, max_tokens: int) -> PlainQuery | None:
    """(query, operation name, variables) of a request body that is one JSON query operation
    (not a mutation, a subscription or a batch), or None."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict) or set(request) - {"query", "variables", "operationName"}:
        return None
    query, variables, operation = request.get("query"), request.get("variables"), request.get("operationName")
    if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(operation, str | None):
        return None
    if operation_kind(query, operation, max_tokens) != "query":
        return None
    return query, operation, variables
