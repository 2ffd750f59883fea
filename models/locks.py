"""Transaction-scoped locks on names, for rules that rows alone cannot serialize."""

from __future__ import annotations

from hashlib import sha256

from tortoise.models import Model


async def one_at_a_time(model: type[Model], keys: list[str]) -> None:
    """PostgreSQL: a transaction-scoped advisory lock per key, on `model`'s connection (the caller's
    transaction), taken in the order given (callers keep one order, so two never deadlock) and held
    until the transaction ends. SQLite runs one write transaction at a time: nothing to do."""
    db = model._meta.db
    if db.capabilities.dialect != "postgres":
        return
    for key in keys:
        lock = int.from_bytes(sha256(key.encode()).digest()[:8], "big", signed=True)
        await db.execute_query("SELECT pg_advisory_xact_lock($1)", [lock])
