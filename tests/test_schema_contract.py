"""The served schema keeps the contract, is described everywhere, and matches schema.graphql."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
)

from tests.contract_diff import contract_breaks
from kabinet.cli import main
from foundation.settings import Settings
from schema.build import build_schema as build_served_schema

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "api" / "contract.graphql"


@pytest.fixture(scope="module")
def served():
    return build_served_schema(Settings(_env_file=None))


@pytest.mark.skipif(not CONTRACT.exists(), reason="the shared contract is not beside this clone")
def test_served_schema_keeps_every_type_field_argument_and_enum_value_of_the_contract(served):
    contract = build_schema(CONTRACT.read_text())
    assert contract_breaks(contract, served._schema) == []


def test_the_contract_check_notices_a_missing_field_and_a_looser_type():
    contract = build_schema("type Query { a: Int! b(x: Int): String }")
    drifted = build_schema("type Query { a: Int c: String }")
    assert contract_breaks(contract, drifted) == [
        "field Query.a is Int, the contract says Int!",
        "field Query.b is missing",
    ]


def test_every_type_field_argument_and_enum_value_is_described(served):
    undescribed = []
    for name, named_type in served._schema.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Boolean", "ID", "Float"):
            continue
        if not named_type.description:
            undescribed.append(name)
        if isinstance(named_type, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in named_type.fields.items():
                if not field.description:
                    undescribed.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        undescribed.append(f"{name}.{field_name}({arg_name})")
        if isinstance(named_type, GraphQLEnumType):
            undescribed += [f"{name}.{value}" for value, definition in named_type.values.items() if not definition.description]
    assert undescribed == []


def test_checked_in_schema_graphql_is_what_export_schema_prints():
    result = CliRunner().invoke(main, ["export-schema"])
    assert result.exit_code == 0, result.output
    assert (ROOT / "schema.graphql").read_text() == result.output, (
        "schema.graphql is stale: run `kabinet export-schema > schema.graphql`"
    )
