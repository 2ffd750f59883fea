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


def _expected_triggers(dialect: str) -> set[str]:
    from models.versions import SCOPE_OF_TABLE

    events = ("insert", "update", "delete", "truncate") if dialect == "postgres" else ("insert", "update", "delete")
    return {f"data_version_{table}_{event}" for table in SCOPE_OF_TABLE for event in events}


async def _version_triggers(connection) -> dict[str, bool]:  # noqa: ANN001
    """Every data version trigger in the database → whether it fires per row."""
    if connection.capabilities.dialect == "postgres":
        rows = await connection.execute_query_dict(
            "SELECT tgname AS name, (tgtype & 1) = 1 AS per_row FROM pg_trigger WHERE tgname LIKE 'data_version_%'"
        )
        return {row["name"]: row["per_row"] for row in rows}
    rows = await connection.execute_query_dict("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'data_version_%'")
    return {row["name"]: True for row in rows}


async def test_the_migrated_database_has_the_version_triggers_of_today(app):
    """Migrations 0002–0007 each run today's `install_triggers`: the test database, migrated from
    nothing, ends with statement triggers on PostgreSQL (row triggers on SQLite) and no other."""
    from tortoise import connections

    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    triggers = await _version_triggers(connection)
    assert set(triggers) == _expected_triggers(dialect)
    assert any(triggers.values()) == (dialect != "postgres")


async def test_installing_the_triggers_replaces_the_row_triggers_of_before(app):
    """PostgreSQL: a database migrated before 0007 has a row trigger `data_version_<table>` per
    table; 0007's `install_triggers` drops it (else both would run). In a transaction rolled back."""
    from types import SimpleNamespace

    import pytest
    from tortoise import connections
    from tortoise.transactions import in_transaction

    from models.versions import install_triggers

    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        pytest.skip("SQLite's triggers are row triggers still")

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack):
        async with in_transaction() as transaction:
            await transaction.execute_script(
                'CREATE TRIGGER data_version_product AFTER INSERT OR UPDATE OR DELETE ON "product" '
                "FOR EACH ROW EXECUTE FUNCTION data_version_product()"
            )
            assert "data_version_product" in await _version_triggers(transaction)
            await install_triggers(None, SimpleNamespace(client=transaction))
            triggers = await _version_triggers(transaction)
            assert set(triggers) == _expected_triggers("postgres")
            assert not any(triggers.values())
            raise RolledBack
