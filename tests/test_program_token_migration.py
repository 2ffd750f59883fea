"""Migration 0012 moves the provider's service accounts into the programs' one token store: a
database with service accounts before it has, after it, SERVICE tokens with the same names, token
hashes, scopes, use and revocation, for every organization (so their tokens keep working)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_query_limits import _empty_database

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "models.0010_refresh_token_revoked_at_index"

# Run in a process of its own: it initialises Tortoise on a database of its own, apart from the app under test.
SCRIPT = r"""
import asyncio, json, sys
from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate
from kabinet.db import tortoise_config

async def main(url, before):
    config = tortoise_config(url)
    await migrate(config=config, target=before)
    db = connections.get("default")
    await db.execute_script(
        "INSERT INTO service_account (id, created_at, name, token_hash, scopes, revoked_at, last_used_at) VALUES "
        f"('00000000-0000-0000-0000-000000000001', '2026-01-02 03:04:05+00:00', '1c-accounting', '{'a' * 64}', "
        "'[\"catalog:write\", \"billing:write\"]', NULL, '2026-02-03 04:05:06+00:00'), "
        f"('00000000-0000-0000-0000-000000000002', '2026-01-02 03:04:05+00:00', 'old', '{'b' * 64}', "
        "'[\"staff\"]', '2026-03-01 00:00:00+00:00', NULL)"
    )
    await Tortoise.close_connections()
    await migrate(config=config)
    db = connections.get("default")
    rows = await db.execute_query_dict(
        "SELECT name, kind, token_hash, scopes, all_organizations, last_used_at, revoked_at, expires_at FROM program_token ORDER BY name"
    )
    await Tortoise.close_connections()
    print(json.dumps(rows, default=str))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_service_accounts_become_service_tokens_of_the_one_store(tmp_path):
    url, drop = await _empty_database(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, url, BEFORE], cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
    finally:
        if drop is not None:
            await drop()
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(r["name"], r["kind"], r["token_hash"]) for r in rows] == [("1c-accounting", "SERVICE", "a" * 64), ("old", "SERVICE", "b" * 64)]
    scopes = [r["scopes"] if isinstance(r["scopes"], list) else json.loads(r["scopes"]) for r in rows]
    assert scopes == [["catalog:write", "billing:write"], ["staff"]]
    assert all(r["all_organizations"] in (True, 1) and r["expires_at"] is None for r in rows)
    assert rows[0]["last_used_at"].startswith("2026-02-03 04:05:06") and rows[0]["revoked_at"] is None
    assert rows[1]["revoked_at"].startswith("2026-03-01 00:00:00") and rows[1]["last_used_at"] is None
