"""Password hashing off the event loop, a few at a time.

An argon2 hash or check takes ~50 ms of CPU and 64 MiB of memory. On the event loop, 50 aliased
`login` calls in one request would stop every other request for seconds; unbounded threads would
let a burst of logins take all the memory. So they run in a small pool of their own
(`password_hash_threads`; argon2 releases the GIL while it works) and wait their turn there.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from foundation.settings import Settings

_pools: dict[int, ThreadPoolExecutor] = {}


_password_hasher = PasswordHasher()
# Verifying against this when a login is unknown costs the same time as a real check.
_DUMMY_HASH = _password_hasher.hash("kabinet-no-such-user")


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _pool(settings: Settings) -> ThreadPoolExecutor:
    size = settings.password_hash_threads
    pool = _pools.get(size)
    if pool is None:
        pool = _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="kabinet-argon2")
    return pool


async def verify(settings: Settings, password_hash: str | None, password: str) -> bool:
    """`verify_password` in the pool (None checks against a dummy hash, same cost)."""
    return await asyncio.get_running_loop().run_in_executor(_pool(settings), verify_password, password_hash, password)


async def hashed(settings: Settings, password: str) -> str:
    """`resolvers.identity.tokens.hash_password` in the pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool(settings), hash_password, password)
