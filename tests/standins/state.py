"""A stand-in 1C cluster's state: one JSON file (env STANDIN_CLUSTER_STATE), read and written under a lock.

Shared by the stand-in executables (`rac`, `1cv8`, beside this file) and the tests (tests/standins/cluster.py).
Standard library only: the stand-ins run under any python3.

{"down": false,                         # ras unreachable: every rac call fails as rac does then
 "cluster": {"uuid", "name", "host", "port"},
 "admin": {"user", "password"} | null,  # the cluster's administrator, when it has one
 "infobases": [{"uuid", "name", "descr", "user", "password", "version", "configuration",
                "sessions_deny", "scheduled_jobs_deny", "denied_message", "permission_code", "pending"}],
 "sessions": [{"session", "session_id", "infobase", "user_name", "host", "app_id", "started_at"}],
 "refuse_terminate": [session uuid, …], # sessions the cluster will not end
 "designer_failure": null | "…",        # the designer fails with this in its log
 "next_session_id": 1}
The command log (env STANDIN_COMMAND_LOG): one JSON line per call, {"program", "argv"}.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path


def state_path() -> Path:
    return Path(os.environ["STANDIN_CLUSTER_STATE"])


@contextlib.contextmanager
def locked(path: Path | None = None, write: bool = True):
    """The state, under an exclusive lock; written back on exit when `write`."""
    path = path or state_path()
    with open(f"{path}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            yield state
            if write:
                temporary = path.with_suffix(".tmp")
                temporary.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
                temporary.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def log_command(program: str, argv: list[str]) -> None:
    target = os.environ.get("STANDIN_COMMAND_LOG")
    if target:
        with open(target, "a", encoding="utf-8") as log:
            log.write(json.dumps({"program": program, "argv": argv}, ensure_ascii=False) + "\n")
