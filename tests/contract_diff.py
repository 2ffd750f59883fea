"""Where a served schema breaks the contract: every type, field, argument and enum value kept, compatibly."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    is_list_type,
    is_non_null_type,
)


def _output_compatible(contract_type, served_type) -> bool:
    """A served output may be stricter: non-null where the contract allows null."""
    if is_non_null_type(contract_type):
        return is_non_null_type(served_type) and _output_compatible(contract_type.of_type, served_type.of_type)
    if is_non_null_type(served_type):
        served_type = served_type.of_type
    if is_list_type(contract_type):
        return is_list_type(served_type) and _output_compatible(contract_type.of_type, served_type.of_type)
    return not is_list_type(served_type) and contract_type.name == served_type.name


def _input_compatible(contract_type, served_type) -> bool:
    """A served input may be looser: nullable where the contract requires a value."""
    if is_non_null_type(served_type):
        return is_non_null_type(contract_type) and _input_compatible(contract_type.of_type, served_type.of_type)
    if is_non_null_type(contract_type):
        contract_type = contract_type.of_type
    if is_list_type(contract_type):
        return is_list_type(served_type) and _input_compatible(contract_type.of_type, served_type.of_type)
    return not is_list_type(served_type) and contract_type.name == served_type.name


def _kind(named_type) -> str:
    kinds = (GraphQLEnumType, GraphQLUnionType, GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)
    return next((k.__name__ for k in kinds if isinstance(named_type, k)), "scalar")


def contract_breaks(contract: GraphQLSchema, served: GraphQLSchema) -> list[str]:
    problems: list[str] = []
    for name, ctype in contract.type_map.items():
        if name.startswith("__"):
            continue
        stype = served.type_map.get(name)
        if stype is None:
            problems.append(f"type {name} is missing")
            continue
        if _kind(stype) != _kind(ctype):
            problems.append(f"type {name} is a {_kind(stype)}, the contract says {_kind(ctype)}")
            continue
        if isinstance(ctype, GraphQLEnumType):
            for value in ctype.values:
                if value not in stype.values:
                    problems.append(f"enum value {name}.{value} is missing")
        elif isinstance(ctype, GraphQLUnionType):
            missing = {t.name for t in ctype.types} - {t.name for t in stype.types}
            problems.extend(f"union {name} lacks {t}" for t in sorted(missing))
        elif isinstance(ctype, (GraphQLObjectType, GraphQLInterfaceType)):
            for iface in ctype.interfaces:
                if iface.name not in {i.name for i in stype.interfaces}:
                    problems.append(f"type {name} does not implement {iface.name}")
            for fname, cfield in ctype.fields.items():
                sfield = stype.fields.get(fname)
                if sfield is None:
                    problems.append(f"field {name}.{fname} is missing")
                    continue
                if not _output_compatible(cfield.type, sfield.type):
                    problems.append(f"field {name}.{fname} is {sfield.type}, the contract says {cfield.type}")
                for aname, carg in cfield.args.items():
                    sarg = sfield.args.get(aname)
                    if sarg is None:
                        problems.append(f"argument {name}.{fname}({aname}) is missing")
                    elif not _input_compatible(carg.type, sarg.type):
                        problems.append(f"argument {name}.{fname}({aname}) is {sarg.type}, the contract says {carg.type}")
                for aname, sarg in sfield.args.items():
                    if aname not in cfield.args and is_non_null_type(sarg.type) and sarg.default_value is None:
                        problems.append(f"argument {name}.{fname}({aname}) is new and required")
        elif isinstance(ctype, GraphQLInputObjectType):
            for fname, cfield in ctype.fields.items():
                sfield = stype.fields.get(fname)
                if sfield is None:
                    problems.append(f"input field {name}.{fname} is missing")
                elif not _input_compatible(cfield.type, sfield.type):
                    problems.append(f"input field {name}.{fname} is {sfield.type}, the contract says {cfield.type}")
            for fname, sfield in stype.fields.items():
                if fname not in ctype.fields and is_non_null_type(sfield.type) and sfield.default_value is None:
                    problems.append(f"input field {name}.{fname} is new and required")
    return problems
