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
from schema.sql_json.statement import Compiler, text

log = logging.getLogger(__name__)

# How many queries the statement answered, and how many it left to the executor (this process): the
# tests see that it did answer, an operator how much of the traffic it takes.
STATS = {"answered": 0, "executed": 0}


def worth_trying(ctx: Any) -> bool:
    """A query of a signed-in request on PostgreSQL, with the statement path on (the setting)."""
    settings = getattr(ctx, "settings", None)
    return (
        settings is not None and settings.sql_json_reads and getattr(ctx, "viewer", None) is not None
        and is_postgres(OrganizationModel)
    )


async def answer(executor: Any, root_type: GraphQLObjectType, grouped: dict[str, list]) -> dict[str, Any] | None:
    """The query's data, each root field's JSON text as an `orjson.Fragment`; None: the executor answers."""
    ctx = executor.context_value
    try:
        memberships = await ctx.memberships()
        compiler = Compiler(executor, ctx, list(memberships), FIELDS)
        root_fields = FIELDS["Query"]
        columns = []
        for sub in grouped.values():
            name = sub[0].node.name.value
            if name == "__typename":
                columns.append(f"to_json({text(root_type.name)}::text)")
            else:
                columns.append(compiler.field(root_fields, root_type, name, root_type.fields[name], sub, ""))
    except Exception as why:  # noqa: BLE001 — CannotCompile, or a refusal the executor reports in its own words
        log.debug("executed, not a statement: %r", why)
        STATS["executed"] += 1
        return None
    sql = "SELECT " + ", ".join(f"({column})::text AS c{i}" for i, column in enumerate(columns))
    try:
        row = await select_row(OrganizationModel, sql, compiler.params)
    except Exception:  # noqa: BLE001 — the executor answers, and says what went wrong its own way
        log.warning("the statement of a query failed; the executor answers it", exc_info=True)
        STATS["executed"] += 1
        return None
    STATS["answered"] += 1
    return {key: (orjson.Fragment(row[i]) if row[i] is not None else None) for i, key in enumerate(grouped)}
