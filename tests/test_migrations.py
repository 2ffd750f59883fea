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


def test_no_model_docstring_holds_a_semicolon():
    """Docstrings become table comments, and Tortoise's SQLite migrator splits statements on ";"."""
    import importlib
    import inspect

    from tortoise.models import Model

    from models import MODEL_MODULES

    offenders = [
        f"{module}.{name}"
        for module in MODEL_MODULES
        for name, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
        if issubclass(cls, Model) and ";" in (cls.__doc__ or "")
    ]
    assert offenders == []
