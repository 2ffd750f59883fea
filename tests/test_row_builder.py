"""Models built from rows by `Entity.from_row` are the models Tortoise's own `_init_from_db` builds:
the same attributes with the same values and types, for every model, on the database under test."""

from __future__ import annotations

from tortoise import Tortoise, connections
from tortoise.models import Model

from models.base import Entity


def _entity_models() -> list[type[Entity]]:
    return [m for app in Tortoise.apps.values() for m in app.values() if issubclass(m, Entity)]


def _typed(obj: Model) -> dict:
    return {name: (type(value), value) for name, value in obj.__dict__.items()}


async def test_every_model_is_built_as_tortoise_builds_it(app) -> None:
    connection = connections.get("default")
    compared = 0
    for model in _entity_models():
        _, rows = await connection.execute_query(f'SELECT * FROM "{model._meta.db_table}" LIMIT 50')
        for row in rows:
            ours = model.from_row(row)
            theirs = Model._init_from_db.__func__(model, **dict(row))
            assert _typed(ours) == _typed(theirs), model.__name__
            compared += 1
    assert compared > 100  # the demo data set fills most tables


async def test_a_row_missing_a_column_takes_tortoises_path(app) -> None:
    from models.organizations import Organization

    rows = await Organization.all().only("id", "name").limit(1)
    assert rows and rows[0]._partial is True and rows[0].name


async def test_querysets_build_models_through_the_compiled_builder(app, monkeypatch) -> None:
    from models.base import compile_row_builder
    from models.organizations import Organization

    build = compile_row_builder(Organization)
    built = []
    monkeypatch.setattr(Organization, "_row_builder", lambda row: built.append(row) or build(row))
    organization = await Organization.first()
    assert built, "a QuerySet's rows go through the compiled builder"
    assert organization is not None and organization._saved_in_db and not organization._partial
    organization.name = organization.name  # a loaded model saves as before
    await organization.save(update_fields=["name"])
