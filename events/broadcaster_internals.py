"""The private part of broadcaster the code relies on, in one place (pinned: broadcaster==0.3.1).

`events/broker.py` gives `Broadcast` backends of its own that reconnect by themselves (through
the public `Broadcast(backend=...)`, `BroadcastBackend` and `Event`). Whoever must hear of a
reconnection (`resolvers/identity/sign_ins.py`, to read the ended sign-ins again) reaches the backend a
`Broadcast` holds, which broadcaster keeps in the private `Broadcast._backend`: `backend_of`.
`tests/test_library_internals.py` checks it against the installed broadcaster.
"""

from __future__ import annotations

from typing import Any

PINNED = "broadcaster==0.3.1"


def backend_of(broadcast: Any) -> Any:
    """The backend a `Broadcast` publishes and listens through (None for anything else)."""
    return getattr(broadcast, "_backend", None)
