"""Models and migrations agree: `makemigrations` would write nothing."""

from __future__ import annotations

import subprocess
import sys


def test_models_and_migrations_agree():
    # A separate process: the check initialises Tortoise on its own, apart from the app under test.
    result = subprocess.run(
        [sys.executable, "-m", "kabinet.cli", "makemigrations", "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"models changed without a migration (run `kabinet makemigrations`):\n{result.stdout}{result.stderr}"
