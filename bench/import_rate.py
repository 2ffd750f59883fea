"""`python -m bench.import_rate` — how fast `kabinet import` takes a provider's ledger.

Creates a PostgreSQL database (kabinet_bench_<random>, like bench/run.py), migrates it, and three
times: makes a few organizations, writes 100,000 ledger entries for them as NDJSON (as a 1C export
would, oldest first) and imports the file with the import function `kabinet import` calls (parsing,
batches of 1,000 in a transaction each, the report written). Prints entries/s of each run and their
median; drops the database at the end (also on Ctrl-C).

  --entries N  (default 100000)  --organizations N (default 4)  --batch N (default 1000)  --runs N (3)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
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


async def one_run(folder: Path, run: int, args: argparse.Namespace) -> float:
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
    started = time.perf_counter()
    summary = await import_file(path, actor, entity="ledger_entry", batch=args.batch)
    elapsed = time.perf_counter() - started
    if summary.created != args.entries:
        raise SystemExit(f"run {run}: {summary.line()}")
    rate = args.entries / elapsed
    print(f"run {run + 1}: {args.entries} entries in {elapsed:.1f} s: {rate:,.0f} entries/s", file=sys.stderr, flush=True)
    return rate


async def measure(url: str, args: argparse.Namespace) -> list[float]:
    from kabinet import db
    from kabinet.settings import Settings

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
        rates = asyncio.run(measure(url, args))
    finally:
        infra.drop_database(name)
    print(f"import of {args.entries} ledger entries ({args.organizations} organizations, batches of {args.batch}): "
          f"median {statistics.median(rates):,.0f} entries/s over {len(rates)} runs "
          f"({', '.join(f'{r:,.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
