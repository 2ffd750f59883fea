"""Real WebSocket clients of both sub-protocols, for the subscription tests."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import websockets

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# A deadline, not a measure: the suite runs on several workers of a shared machine, where a
# handshake has been seen to wait past 5 s for a busy event loop.
OPEN_TIMEOUT = 20
_ids = itertools.count(1)


class GraphQLSocket:
    """A WebSocket speaking graphql-transport-ws or the legacy graphql-ws protocol."""

    def __init__(self, url: str, protocol: str) -> None:
        self.url, self.protocol = url, protocol
        self.socket: Any = None

    async def connect(self, token: str | None) -> dict:
        self.socket = await websockets.connect(f"ws://{self.url}/graphql", subprotocols=[self.protocol], open_timeout=OPEN_TIMEOUT)
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def send(self, message: dict) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict:
        while True:
            frame = await asyncio.wait_for(self.socket.recv(), timeout=timeout)
            # browsers' graphql-ws clients JSON.parse text frames only (a binary one is a Blob to them)
            assert isinstance(frame, str), f"a binary frame: {frame[:200]!r}"
            message = json.loads(frame)
            if message.get("type") not in ("ka", "ping", "pong"):
                return message

    async def subscribe(self, query: str, variables: dict | None = None) -> str:
        operation_id = str(next(_ids))
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": operation_id, "type": kind, "payload": {"query": query, "variables": variables or {}}})
        return operation_id

    async def next_data(self, timeout: float = 10) -> dict:
        message = await self.receive(timeout)
        assert message["type"] in ("next", "data"), message
        return message["payload"]

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
