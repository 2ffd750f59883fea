"""Whole answers built by PostgreSQL: a query read compiled to one statement that returns its JSON.

For the everyday reads (organizations with their products and contracts, documents, the balance,
databases and their schedules, live sessions: bench/ W1 and W2) the Python per row — models built,
the gate walked per object, completion, serialization — costs several times what PostgreSQL takes
to build the same JSON. So a query whose every selected field is one this module can say in SQL is
compiled, per request, into one SELECT whose columns are the root fields' JSON texts, handed to the
response as they are (`orjson.Fragment`: never parsed and rebuilt in Python).

The role table decides here as everywhere (resolvers/common/permissions.py), on the whole list
instead of each object: the statement is written only when the viewer sees every object of each
type it reads in every organization they belong to (`LIST_RULES`, with no narrowing) and may read
each ruled field there (`FIELD_RULES`); every level then keeps to `organization_id = ANY(those
organizations)`, which is what the gate would leave. A viewer whose role narrows or refuses anything
selected (a USER's own sessions, an ACCOUNTANT's databases), a field or argument this module does
not know (a cursor, `after`, a download link), SQLite, or a statement that fails: the ordinary
executor answers. The answer is the same either way (tests/test_sql_json.py runs every read of the
isolation matrix and the docs' examples both ways, as every demo viewer, and compares them).

The filters and orders are the resolvers' own (`product_filters`, `DOCUMENT_ORDER`…); rules worked
out in Python for each object (a contract's status, a schedule's next run) are said in SQL beside
their Python form (`contract_status_sql`, `next_monthly_run_sql`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import GraphQLObjectType

from models.organizations import Organization as OrganizationModel
from models.select import is_postgres, select_row
from schema.sql_json.fields import FIELDS
from foundation import clock
from foundation.bounded_cache import BoundedCache
from schema.sql_json.statement import CannotCompile, Compiler, text

log = logging.getLogger(__name__)
_UNKNOWN = object()

# How many queries the statement answered, and how many it left to the executor (this process): the
# tests see that it did answer, an operator how much of the traffic it takes.
STATS = {"answered": 0, "executed": 0}


def worth_trying(ctx: Any) -> bool:
    """A query of a signed-in HTTP request on PostgreSQL, with the statement path on (the setting)."""
    settings = getattr(ctx, "settings", None)
    return (
        settings is not None and settings.sql_json_reads and getattr(ctx, "viewer", None) is not None
        # over HTTP only: a WebSocket's results are coded and bounded message by message (kabinet/transport.py)
        and getattr(getattr(ctx, "request", None), "scope", {}).get("type") == "http"
        and is_postgres(OrganizationModel)
    )


# Statements written, kept for the next request of the same query by the same rights: the key holds
# everything a statement depends on (the query and its variables, the viewer and their token, their
# role and grants in each organization, the day); only the moment (`now`) is set anew. A query the
# path cannot answer is kept as such too, so that it is not tried again each time.
STATEMENTS: BoundedCache[tuple[str, tuple, int | None] | None] = BoundedCache("statements", 16 * 1024 * 1024, 1024 * 1024)


def _statement_key(executor: Any, ctx: Any, memberships: dict, variables: bytes) -> tuple | None:
    operation = executor.operation
    if operation.loc is None:
        return None
    viewer = ctx.viewer
    grant = viewer.grant
    return (
        operation.loc.source.body, operation.name.value if operation.name else None, variables, viewer.user_id,
        (grant.token_id, grant.organization_id, grant.scopes) if grant is not None else None,
        tuple(sorted((org, membership.role.value) for org, membership in memberships.items())),
        tuple(sorted((org, tuple(sorted(ctx.granted_databases(org)))) for org in memberships)),
        clock.today(), ctx.settings.max_page_size,
    )


async def answer(
    executor: Any, root_type: GraphQLObjectType, grouped: dict[str, list], variables: bytes
) -> dict[str, Any] | None:
    """The query's data, each root field's JSON text as an `orjson.Fragment`; None: the executor answers."""
    ctx = executor.context_value
    try:
        memberships = await ctx.memberships()
        key = _statement_key(executor, ctx, memberships, variables)
        kept = STATEMENTS.get(key, _UNKNOWN) if key is not None else _UNKNOWN
        if kept is _UNKNOWN:
            kept = _write(executor, ctx, memberships, root_type, grouped)
            if key is not None:
                size = 1024 + len(key[0]) + len(variables) + (2 * len(kept[0]) + 200 * len(kept[1]) if kept else 0)
                STATEMENTS.put(key, kept, size)
    except Exception as why:  # noqa: BLE001 — a refusal the executor reports in its own words
        log.debug("executed, not a statement: %r", why)
        kept = None
    if kept is None:
        STATS["executed"] += 1
        return None
    sql, params, now_index = kept
    params = list(params)
    if now_index is not None:
        params[now_index] = clock.utcnow()
    try:
        row = await select_row(OrganizationModel, sql, params)
    except Exception:  # noqa: BLE001 — the executor answers, and says what went wrong its own way
        log.warning("the statement of a query failed; the executor answers it", exc_info=True)
        STATS["executed"] += 1
        return None
    STATS["answered"] += 1
    return {key: (orjson.Fragment(row[i]) if row[i] is not None else None) for i, key in enumerate(grouped)}


def _write(executor: Any, ctx: Any, memberships: dict, root_type: GraphQLObjectType, grouped: dict[str, list]) -> tuple | None:
    """(the statement, its parameters, where the moment is among them); None: it cannot be said in SQL."""
    compiler = Compiler(executor, ctx, list(memberships), FIELDS)
    columns = []
    try:
        for sub in grouped.values():
            name = sub[0].node.name.value
            if name == "__typename":
                columns.append(f"to_json({text(root_type.name)}::text)")
            else:
                columns.append(compiler.field(FIELDS["Query"], root_type, name, root_type.fields[name], sub, ""))
    except CannotCompile as why:
        log.debug("executed, not a statement: %s", why)
        return None
    # as UTF-8 bytes: the answer goes out as it came in, never decoded into a str and encoded back
    sql = "SELECT " + ", ".join(f"convert_to(({column})::text, 'UTF8') AS c{i}" for i, column in enumerate(columns))
    return sql, tuple(compiler.params), compiler.now_index
