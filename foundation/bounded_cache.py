"""An LRU map with a byte budget: what anyone may send cannot grow a process's caches past what
they were given.

Entries are counted by the size their owner states (an estimate that errs high: what the entry
keeps alive, key included). An entry over `max_entry_bytes` is not kept at all, so one huge text
never pushes out the many small ones. An entry may also share a charge with others — e.g. the
parsed document the plans of its selections hold — counted once while any entry holding it lives.
`bytes` is what the cache holds by that count: tests assert it stays within `max_bytes`.
Safe to use from the event loop and a worker thread at once (introspection runs in one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class BoundedCache(Generic[V]):
    def __init__(self, name: str, max_bytes: int, max_entry_bytes: int | None = None) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes or max_bytes, max_bytes)
        self._entries: OrderedDict[Hashable, tuple[V, int, Hashable | None]] = OrderedDict()
        self._shared: dict[Hashable, list[int]] = {}  # shared key -> [entries holding it, its size]
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, default: Any = None) -> V | Any:
        with self._lock:
            kept = self._entries.get(key, _MISSING)
            if kept is _MISSING:
                return default
            self._entries.move_to_end(key)
            return kept[0]

    def put(self, key: Hashable, value: V, size: int, shared: tuple[Hashable, int] | None = None) -> bool:
        """Keep `value` (its own `size` bytes, plus `shared`'s once); False when it is too big to keep."""
        shared_key, shared_size = shared if shared is not None else (None, 0)
        with self._lock:
            new_charge = size + (shared_size if shared_key is not None and shared_key not in self._shared else 0)
            if new_charge > self.max_entry_bytes:
                return False
            self._remove(key)
            if shared_key is not None:
                holders = self._shared.get(shared_key)
                if holders is None:
                    self._shared[shared_key] = [1, shared_size]
                    self._bytes += shared_size
                else:
                    holders[0] += 1
            self._entries[key] = (value, size, shared_key)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                self._remove(next(iter(self._entries)))
        return True

    def resize(self, max_bytes: int, max_entry_bytes: int | None = None) -> None:
        """A new budget (the settings of the app being built); what no longer fits is dropped."""
        with self._lock:
            self.max_bytes = max_bytes
            self.max_entry_bytes = min(max_entry_bytes or max_bytes, max_bytes)
            while self._bytes > self.max_bytes and self._entries:
                self._remove(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._shared.clear()
            self._bytes = 0

    def _remove(self, key: Hashable) -> None:
        kept = self._entries.pop(key, _MISSING)
        if kept is _MISSING:
            return
        _, size, shared_key = kept
        self._bytes -= size
        if shared_key is not None:
            holders = self._shared[shared_key]
            holders[0] -= 1
            if holders[0] == 0:
                del self._shared[shared_key]
                self._bytes -= holders[1]
