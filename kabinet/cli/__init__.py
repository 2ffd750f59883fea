"""`kabinet`: the operator's commands (the `kabinet` entry point is `main`), by concern: base.py the
group and what commands share, serving.py running and migrating, clusters.py clusters and agent
tokens, provider.py the staff, service accounts, refused records and outbox, files.py imports, the
supplier's requisites and documents."""

from __future__ import annotations

from kabinet.cli import clusters, files, provider, serving  # noqa: F401 — importing them registers their commands
from kabinet.cli.base import main

__all__ = ["main"]
