"""Running a query both ways: by the statement path (schema/sql_json.py) and by the executor.

Shared by tests/test_sql_json.py, tests/test_execution.py and the isolation matrix (tests/test_isolation_matrix.py), which
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
def every_request_executed(app: Any, owner: Any, attribute: str, value: Any) -> Iterator[None]:
    """Every request executed (no kept answer), with `owner.attribute` set to `value` meanwhile."""
    graphql = app.state.graphql
    previous = getattr(owner, attribute), graphql.response_cache
    setattr(owner, attribute, value)
    graphql.response_cache = None
    try:
        yield
    finally:
        setattr(owner, attribute, previous[0])
        graphql.response_cache = previous[1]


def statement_path(app: Any, on: bool):
    """Every request executed, with the statement path on or off."""
    return every_request_executed(app, app.state.graphql.settings, "sql_json_reads", on)


def stable(body: dict) -> dict:
    """Errors carry their request's id, download links their expiry: compare without those."""
    text = re.sub(r'"requestId": "[^"]*"', '"requestId": "…"', json.dumps(body, sort_keys=True))
    text = re.sub(r'"/files/[^"]*"', '"/files/…"', text)
    return json.loads(text)


def answered_so_far() -> int:
    """How many queries the statement path has answered in this process."""
    return sql_json.STATS["answered"]
