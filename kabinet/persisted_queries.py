"""Apollo's automatic persisted queries: a client sends the sha256 of a query instead of its text,
and the text only when told the hash is unknown (`PERSISTED_QUERY_NOT_FOUND`).

The store keeps query texts only, never answers: a text is run afresh for each request, as the
viewer of that request. It is per process and bounded (foundation/bounded_cache.py, the
`persisted_queries_mb` budget): a client re-sends the text whenever a process does not know the
hash, so processes need no shared store. A text is registered only under the limits any query
meets: over HTTP once it has run without a request error (it parsed within `max_query_tokens`,
passed validation, depth and cost); over WebSocket once it parses within `max_query_tokens`.
Its size is bounded by the body and message limits it arrived under.

Also: the cache headers of GraphQL HTTP answers (`cache_headers`): an answer is never kept by a
shared cache; a signed-in one says `private` and varies by `Authorization`.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError

from foundation.bounded_cache import BoundedCache
from kabinet.transport import TransportWSHandler
from schema.limits import parse_document

ENTRY_OVERHEAD = 200  # the key (64 hex characters) and the entry's objects
NOT_FOUND = ("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
NOT_SUPPORTED = ("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")


class PersistedQueryRefused(HTTPException):
    """A persisted query that cannot be run: its message and code go out as a GraphQL error
    (kabinet/transport.py `refusal`)."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(status, message)
        self.code = code


class PersistedQueries:
    """Query texts by their sha256 (hex), within `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        # one text may take the whole budget: the limits of the request it came in already bound it
        self.texts: BoundedCache[str] = BoundedCache("persisted queries", max_bytes)

    @property
    def enabled(self) -> bool:
        return self.texts.max_bytes > 0

    def resolve(self, query: str | None, extensions: dict | None) -> tuple[str | None, str | None]:
        """(the query to run, the hash to register it under once it passed the limits, else None).
        A request without `extensions.persistedQuery` passes unchanged. Raises PersistedQueryRefused."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            return query, None
        if not self.enabled:
            raise PersistedQueryRefused(200, *NOT_SUPPORTED)
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryRefused(
                400, "Unsupported persisted query version: only `extensions.persistedQuery.version` 1 is.", "BAD_USER_INPUT")
        sha = persisted.get("sha256Hash")
        if not isinstance(sha, str) or len(sha) != 64:
            raise PersistedQueryRefused(400, "`persistedQuery.sha256Hash` must be 64 hexadecimal characters.", "BAD_USER_INPUT")
        sha = sha.lower()
        if query is None:
            kept = self.texts.get(sha)
            if kept is None:
                raise PersistedQueryRefused(200, *NOT_FOUND)
            return kept, None
        if hashlib.sha256(query.encode()).hexdigest() != sha:
            raise PersistedQueryRefused(400, "provided sha does not match query", "BAD_USER_INPUT")
        return query, sha

    def register(self, sha: str, query: str) -> bool:
        # what the str takes in memory, not its UTF-8 length: one character past Latin-1 makes CPython
        # keep every character in 2 or 4 bytes (ASCII and one emoji: four times the UTF-8 bytes)
        return self.texts.put(sha, query, sys.getsizeof(query) + ENTRY_OVERHEAD)


class PersistedQueriesOverHTTP:
    """Mixed into the GraphQL view (which has `persisted_queries`): resolves the hash before the
    request runs; registers the text once it ran without a request error (`process_result`)."""

    persisted_queries: PersistedQueries

    async def execute_operation(self, request: Any, request_adapter: Any, request_data: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(request_data, list) and request_data.extensions:
            request_data.query, sha = self.persisted_queries.resolve(request_data.query, request_data.extensions)
            if sha is not None:
                request.state.persist = (sha, request_data.query)
        return await super().execute_operation(request, request_adapter, request_data, *args, **kwargs)  # type: ignore[misc]

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET naming a persisted query by its hash alone asks for an answer, not GraphiQL."""
        return request.query_params.get("extensions") is None and super().should_render_graphql_ide(request)  # type: ignore[misc]

    def register_if_run(self, request: Any, request_error: bool) -> None:
        pending = getattr(request.state, "persist", None)
        if pending is not None and not request_error:
            self.persisted_queries.register(*pending)


def cache_headers(request: Any, headers: Any) -> None:
    """No GraphQL answer is kept by a shared cache; a signed-in one (an Authorization header) is
    `private` and varies by it, so no cache gives one viewer's answer to another."""
    if request.headers.get("authorization"):
        headers["Cache-Control"] = "private, no-store"
    else:
        headers["Cache-Control"] = "no-store"
    vary = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
    if "authorization" not in (v.lower() for v in vary):
        headers["Vary"] = ", ".join([*vary, "Authorization"])


class PersistedTransportWSHandler(TransportWSHandler):
    """graphql-transport-ws: a `subscribe` payload's `extensions.persistedQuery` as over HTTP; a
    refusal is the operation's `error` message."""

    async def handle_subscribe(self, message: Any) -> None:
        payload = message.get("payload")
        if isinstance(payload, dict) and isinstance(payload.get("extensions"), dict):
            store: PersistedQueries = self.view.persisted_queries
            query = payload.get("query")
            try:
                query, sha = store.resolve(query if isinstance(query, str) else None, payload["extensions"])
            except PersistedQueryRefused as refused:
                error = {"message": refused.reason, "extensions": {"code": refused.code}}
                await self.send_message({"id": message.get("id"), "type": "error", "payload": [error]})
                return
            if sha is not None and query is not None:
                try:
                    parse_document(query, self.view.settings.max_query_tokens)
                except GraphQLError:
                    pass  # not registered; the operation reports the syntax error
                else:
                    store.register(sha, query)
            message = {**message, "payload": {**payload, "query": query}}
        await super().handle_subscribe(message)
