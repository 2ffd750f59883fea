"""What a document must meet before it runs, beside the validation rules of schema/build.py
(depth, aliases): the parser's token limit, and the cost estimate; and the cache of parsed and
validated documents, within its byte budget.

The cost is how many fields the answer may hold: every field counts once for each time it may be
resolved. A connection's `first` multiplies what is below the connection (its edges and nodes
count once per item); a connection without `first` (or with `first: null`) counts as its maximum,
`max_page_size`; a plain list (`memberships`, `prepaidServices`, a live session list) counts as
`max_page_size` items too. Introspection counts one field, whatever it selects (the depth limit
bounds it). A document over `max_query_cost` is refused with QUERY_TOO_COMPLEX and the figures
(`extensions.cost`, `extensions.maximum`), before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    Location,
    NullValueNode,
    SelectionSetNode,
    TokenKind,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_list_type,
    parse,
)
from strawberry.extensions import SchemaExtension

from foundation.bounded_cache import BoundedCache
from schema.errors import graphql_error
from foundation.settings import Settings
from schema.strawberry_internals import graphql_core_schema, validate_document

# A parsed document holds its text, and ~600 bytes per token (its token, node and location objects:
# measured with tracemalloc, tests/test_anonymous_limits.py holds the estimate above the truth).
BYTES_PER_TOKEN = 700
ENTRY_OVERHEAD = 1_000


class _Kept:
    """A parsed document and the validations it passed (schema and rules, held: their ids stay theirs)."""

    __slots__ = ("document", "valid_for")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.valid_for: list[tuple[Any, tuple]] = []


# Parsed documents by text: identical query texts share one document (and so, in
# schema/execution.py, their completion plans). Its budget is the settings' query_cache_mb
# (schema/build.py sets it); a document estimated over a 64th of it (512 KiB: ~700 tokens, where the full
# introspection query has 165) is parsed every time.
DOCUMENTS: BoundedCache[_Kept] = BoundedCache("documents", 32 * 1024 * 1024, 512 * 1024)


def source_bytes(loc: Location) -> int:
    """What the parsed document a node's location belongs to keeps alive, estimated high: its text
    (twice: string values are copies) and its tokens."""
    text = loc.source.body
    first = loc.start_token
    while first.prev is not None:
        first = first.prev
    tokens, token = 0, first
    while token is not None:
        tokens, token = tokens + 1, token.next
    return 2 * len(text) * (1 if text.isascii() else 4) + BYTES_PER_TOKEN * tokens + ENTRY_OVERHEAD


MAX_NUMBER_CHARS = 100  # far beyond any Int, Float or amount; Python refuses to read an int of 4,300 digits


class NumberTooLong(GraphQLSyntaxError):
    """A number literal longer than MAX_NUMBER_CHARS: refused as a parse error, before graphql-core
    reads it (which would fail with a ValueError, a 500)."""


# A document too big to keep, parsed once per request all the same: the response cache's look at the
# operation, the introspection check and the parser step of one request (and its worker thread,
# which copies the context) see the same text. Not a cache: it lives as long as the request.
_last_parsed: ContextVar[tuple[str, int, DocumentNode] | None] = ContextVar("last_parsed", default=None)


def parse_document(query: str, max_tokens: int) -> DocumentNode:
    """The parsed document, kept while the budget allows; a document of more than `max_tokens`
    tokens (or as many comments), nested too deeply for the parser, or with a number literal of more
    than MAX_NUMBER_CHARS characters, is a syntax error, never a RecursionError or a ValueError."""
    kept = DOCUMENTS.get((query, max_tokens))
    if kept is not None:
        return kept.document
    last = _last_parsed.get()
    if last is not None and last[1] == max_tokens and last[0] == query:
        return last[2]
    document = parse(query, max_lexical_tokens=max_tokens, max_comments=max_tokens)
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        if token.kind in (TokenKind.INT, TokenKind.FLOAT) and len(token.value) > MAX_NUMBER_CHARS:
            raise NumberTooLong(document.loc.source, token.start,
                                f"A number of more than {MAX_NUMBER_CHARS} characters is not one this API takes.")
        token = token.next
    size = source_bytes(document.loc) if document.loc is not None else ENTRY_OVERHEAD
    if not DOCUMENTS.put((query, max_tokens), _Kept(document), size + len(query)):  # the key is the text too
        _last_parsed.set((query, max_tokens, document))

    return document


def validation_errors(schema: GraphQLSchema, document: DocumentNode, query: str | None, max_tokens: int,
                      rules: tuple) -> list[GraphQLError]:
    """graphql-core's validation, remembered on the kept document when it passed (a document that
    fails is validated again each time: its errors may quote what was sent)."""
    kept = DOCUMENTS.get((query, max_tokens)) if query is not None else None
    if kept is not None and kept.document is document:
        for valid_schema, valid_rules in kept.valid_for:
            if valid_schema is schema and valid_rules == rules:
                return []
    errors = validate_document(schema, document, rules)
    if not errors and kept is not None and kept.document is document:
        kept.valid_for.append((schema, rules))
    return errors


def limited_parser(settings: Settings) -> type[SchemaExtension]:
    """The parser step: the cached parse with the token limit. A document that does not parse is
    left to strawberry's own parse (with the same limit), which reports it as a request error."""

    class LimitedParser(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            context, max_tokens = self.execution_context, settings.max_query_tokens
            context.parse_options["max_lexical_tokens"] = max_tokens
            context.parse_options["max_comments"] = max_tokens
            if context.graphql_document is None and context.query:
                try:
                    context.graphql_document = parse_document(context.query, max_tokens)
                except NumberTooLong as refused:
                    raise graphql_error("GRAPHQL_PARSE_FAILED", refused.message) from None  # the request's error
                except GraphQLError:
                    pass
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            if context.graphql_document is not None and context.pre_execution_errors is None:
                context.pre_execution_errors = validation_errors(
                    graphql_core_schema(context.schema), context.graphql_document, context.query,
                    settings.max_query_tokens, tuple(context.validation_rules),
                )
            yield

    return LimitedParser


def cost_limit(settings: Settings) -> type[SchemaExtension]:
    """Refuse, before execution, an operation whose estimated cost exceeds `max_query_cost`."""

    class CostLimit(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            context, maximum, page_size = self.execution_context, settings.max_query_cost, settings.max_page_size
            if context.graphql_document is not None:
                cost = query_cost(
                    graphql_core_schema(context.schema), context.graphql_document, context.operation_name,
                    context.variables or {}, page_size,
                )
                if cost > maximum:
                    error = graphql_error(
                        "QUERY_TOO_COMPLEX",
                        f"This query could return about {cost} fields, more than {maximum}: ask for fewer items "
                        "(`first`) or fewer fields, and page through the rest.",
                    )
                    error.extensions.update(cost=cost, maximum=maximum)
                    raise error
            yield

    return CostLimit


def query_cost(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: dict[str, Any], page_size: int
) -> int:
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation is not None else None
    if root is None:
        return 0  # no such operation: graphql-core says so
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    defaults = {
        v.variable.name.value: int(v.default_value.value)
        for v in operation.variable_definitions or ()
        if isinstance(v.default_value, IntValueNode)
    }
    estimate = _Estimate(schema, fragments, {**defaults, **variables}, page_size)
    return estimate.selection_set(operation.selection_set, root, False, 0)


class _Estimate:
    # Deeper than this the depth rule refuses the document anyway; stopping here keeps the walk
    # far from the interpreter's recursion limit.
    MAX_DEPTH = 64

    def __init__(self, schema: GraphQLSchema, fragments: dict, variables: dict[str, Any], page_size: int) -> None:
        self.schema, self.fragments, self.variables, self.page_size = schema, fragments, variables, page_size
        self.fragment_costs: dict[tuple[str, bool], int] = {}
        self.visiting: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode, parent: Any, page: bool, depth: int) -> int:
        """Fields below one resolution of `parent`; `page`: the selection of a connection whose
        `first` was counted already (its lists, edges and nodes, are the page)."""
        if depth > self.MAX_DEPTH:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page, depth)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, target or parent, page, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page, depth)
        return total

    def fragment(self, name: str, page: bool, depth: int) -> int:
        key = (name, page)
        if key in self.fragment_costs:
            return self.fragment_costs[key]
        definition = self.fragments.get(name)
        if definition is None or name in self.visiting:
            return 0  # unknown or cyclic: validation refuses it
        self.visiting.add(name)
        try:
            target = self.schema.get_type(definition.type_condition.name.value)
            cost = self.selection_set(definition.selection_set, target, page, depth + 1) if target else 0
        finally:
            self.visiting.discard(name)
        self.fragment_costs[key] = cost
        return cost

    def field(self, node: FieldNode, parent: Any, page: bool, depth: int) -> int:
        name = node.name.value
        definition = getattr(parent, "fields", {}).get(name) if not name.startswith("__") else None
        if definition is None or node.selection_set is None:
            return 1  # a leaf, introspection, or a field validation refuses
        field_type = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
        items, connection = 1, "first" in definition.args
        if connection:
            items = self.first(node)
        elif is_list_type(field_type) and not page:
            items = self.page_size
        return 1 + items * self.selection_set(node.selection_set, get_named_type(field_type), connection, depth + 1)

    def first(self, node: FieldNode) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        value: Any = None
        if argument is not None:
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            elif isinstance(argument.value, NullValueNode):
                value = None
        if isinstance(value, int) and not isinstance(value, bool):
            return max(value, 0)
        return self.page_size
