"""Relay plumbing: the Node interface, opaque global ids, connections built from resolver pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from resolvers.common.pagination import Page

T = TypeVar("T")
# the arguments of every connection field
First = Annotated[int | None, strawberry.argument(description="Page size: at most 100 items; 100 when omitted.")]
After = Annotated[str | None, strawberry.argument(description="An item's `cursor` (or `pageInfo.endCursor`): the page starts after it.")]


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id.")


@strawberry.type(description="Where a page stands in its list (Relay cursor connections).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(description="Items precede this page (an `after` cursor was given).")
    page: strawberry.Private[Page]

    @strawberry.field(description="Cursor of the first item of the page.")
    def start_cursor(self) -> str | None:
        return self.page.cursor(0) if self.page.items else None

    @strawberry.field(description="Cursor of the last item; pass it as `after` for the next page.")
    def end_cursor(self) -> str | None:
        return self.page.cursor(len(self.page.items) - 1) if self.page.items else None


@strawberry.type(description="One item of a list and its cursor.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    page: strawberry.Private[Page]
    index: strawberry.Private[int]

    @strawberry.field(description="Pass as `after` to get the items after this one.")
    def cursor(self) -> str:
        return self.page.cursor(self.index)


@strawberry.type(description="A page of a list: at most `first` items (100 at most) after the `after` cursor.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, in the list's stable order.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more items follow.")
    total_count: int = strawberry.field(description="Number of items in the whole list (with the same filters).")


def connection_of(node_type: Callable[[Any], T]) -> Callable[[Page], Connection[T]]:
    """A converter from a resolver's Page of models to a Connection of `node_type` objects."""

    def convert(page: Page) -> Connection[T]:
        edges = [Edge(node=node_type(m), page=page, index=i) for i, m in enumerate(page.items)]
        return Connection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, has_previous_page=page.has_previous_page, page=page),
            total_count=page.total_count if page.total_count is not None else -1,
        )

    return convert


def list_of(node_type: Callable[[Any], T]) -> Callable[[list], list[T]]:
    return lambda models: [node_type(m) for m in models]
