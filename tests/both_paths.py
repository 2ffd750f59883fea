"""Running a query both ways: by the statement path (schema/sql_json.py) and by the executor.

Shared by tests/test_sql_json.py and the isolation matrix (tests/test_isolation_matrix.py), which
compares each of its queries the statement answered with the executor's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from schema import sql_json


@contextmanager
def statement_path(app: Any, on: bool) -> Iterator[None]:
    """Every request executed (no kept answer), with the statement path on or off."""
    graphql = app.state.graphql
    previous = graphql.settings.sql_json_reads, graphql.response_cache
    graphql.settings.sql_json_reads, graphql.response_cache = on, None
    try:
        yield
    finally:
        graphql.settings.sql_json_reads, graphql.response_cache = previous


def stable(body: dict) -> dict:
    """Errors carry their request's id, download links their expiry: compare without those."""
    text = re.sub(r'"requestId": "[^"]*"', '"requestId": "…"', json.dumps(body, sort_keys=True))
    text = re.sub(r'"/files/[^"]*"', '"/files/…"', text)
    return json.loads(text)


def answered_so_far() -> int:
    """How many queries the statement path has answered in this process."""
    return sql_json.STATS["answered"]
