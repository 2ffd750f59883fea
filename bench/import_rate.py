"""`python -m bench.import_rate` — how fast `kabinet import` takes a provider's ledger.

Creates a PostgreSQL database (kabinet_bench_<random>, like bench/run.py), migrates it, and three
times: makes a few organizations, writes 100,000 ledger entries for them as NDJSON (as a 1C export
would, oldest first) and imports the file with the import function `kabinet import` calls (parsing,
batches of 1,000 in a transaction each, the report written). Prints entries/s of each run and their
median; drops the database at the end (also on Ctrl-C). Beside each rate: the CPU time the
PostgreSQL server spent on the import (its backends for this database, from /proc: the machine
must be the server's) per 1,000 entries, which other work on a shared machine moves less than the
wall clock, and the statements Tortoise sent per batch.

  --entries N  (default 100000)  --organizations N (default 4)  --batch N (default 1000)  --runs N (3)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path


def write_ledger(path: Path, organizations: list[str], count: int, *, prefix: str = "le", seed: int = 7) -> None:
    """`count` ledger entries spread over `organizations` (external ids), one a minute, oldest first."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            amount = rng.randrange(-50000, 90000) or 100
            out.write(json.dumps({
                "external_id": f"{prefix}-{i:07d}", "organization": organizations[i % len(organizations)],
                "kind": "TOP_UP" if amount > 0 else "CHARGE", "amount": f"{amount / 100:.2f}",
                "description": f"Оплата по счёту № {i}" if amount > 0 else f"Списание за услуги, акт № {i}",
                "occurred_at": (start + dt.timedelta(minutes=i)).isoformat(),
            }, ensure_ascii=False) + "\n")


class _Counted(logging.Handler):
    """Counts Tortoise's statement log records without formatting them (a batch's arrays are long)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _server_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend of this database (empty if not on this machine)."""
    from tortoise import connections

    from bench.infra import cpu_seconds

    rows = await connections.get("default").execute_query_dict(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    )
    used = {}
    for row in rows:
        try:
            used[row["pid"]] = cpu_seconds(row["pid"])
        except OSError:
            pass
    return used


async def one_run(folder: Path, run: int, args: argparse.Namespace) -> tuple[float, float | None, float]:
    from models.organizations import ModerationStatus, Organization, OrganizationKind
    from resolvers.provider.imports import import_file
    from resolvers.provider.records import SCOPES, ProviderActor

    organizations = []
    for n in range(args.organizations):
        external_id = f"bench-{run}-{n}-{uuid.uuid4().hex[:6]}"
        await Organization.create(
            name=f"ООО «Импорт {run}-{n}»", inn=str(uuid.uuid4().int)[-10:], kind=OrganizationKind.LEGAL_ENTITY,
            moderation_status=ModerationStatus.APPROVED, code=f"I{uuid.uuid4().hex[:10]}", external_id=external_id,
        )
        organizations.append(external_id)
    path = folder / f"ledger_entries_{run}.ndjson"
    write_ledger(path, organizations, args.entries, prefix=f"run{run}-{uuid.uuid4().hex[:6]}")
    actor = ProviderActor(kind="CLI", name="bench", scopes=frozenset(SCOPES))
    logger = logging.getLogger("tortoise.db_client")
    counted, level = _Counted(), logger.level
    cpu_before = await _server_cpu()
    logger.addHandler(counted)
    logger.setLevel(logging.DEBUG)
    started = time.perf_counter()
    try:
        summary = await import_file(path, actor, entity="ledger_entry", batch=args.batch)
    finally:
        elapsed = time.perf_counter() - started
        logger.removeHandler(counted)
        logger.setLevel(level)
    cpu_after = await _server_cpu()
    if summary.created != args.entries:
        raise SystemExit(f"run {run}: {summary.line()}")
    rate = args.entries / elapsed
    server_ms = 1000 * sum(used - cpu_before.get(pid, 0.0) for pid, used in cpu_after.items()) if cpu_after else None
    per_thousand = server_ms * 1000 / args.entries if server_ms is not None else None
    per_batch = counted.count / -(-args.entries // args.batch)
    print(f"run {run + 1}: {args.entries} entries in {elapsed:.1f} s: {rate:,.0f} entries/s; server CPU "
          f"{f'{per_thousand:.0f} ms' if per_thousand is not None else '(not on this machine)'} per 1,000 entries; "
          f"{per_batch:.1f} statements per batch", file=sys.stderr, flush=True)
    return rate, per_thousand, per_batch


async def measure(url: str, args: argparse.Namespace) -> list[tuple[float, float | None, float]]:
    from kabinet import db
    from foundation.settings import Settings

    await db.apply_migrations(url)
    await db.disconnect()
    await db.connect(Settings(_env_file=None, database_url=url, seed_demo=False, migrate_on_start=False))
    try:
        with tempfile.TemporaryDirectory() as folder:
            return [await one_run(Path(folder), run, args) for run in range(args.runs)]
    finally:
        await db.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from bench import infra

    name, url = infra.create_database()
    print(f"database {name}", file=sys.stderr, flush=True)
    try:
        runs = asyncio.run(measure(url, args))
    finally:
        infra.drop_database(name)
    rates = [rate for rate, _, _ in runs]
    cpu = [ms for _, ms, _ in runs if ms is not None]
    print(f"import of {args.entries} ledger entries ({args.organizations} organizations, batches of {args.batch}): "
          f"median {statistics.median(rates):,.0f} entries/s over {len(rates)} runs "
          f"({', '.join(f'{r:,.0f}' for r in rates)})"
          + (f"; server CPU median {statistics.median(cpu):.0f} ms per 1,000 entries ({', '.join(f'{c:.0f}' for c in cpu)})" if cpu else "")
          + f"; statements per batch {', '.join(f'{n:.1f}' for _, _, n in runs)}")


if __name__ == "__main__":
    main()
