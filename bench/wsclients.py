"""A process of many graphql-transport-ws subscribers, driven by bench/subscribers.py over stdin/stdout.

`python -m bench.wsclients '<json spec>'` (or `@file` holding it) opens `count` WebSockets, sends
connection_init with the token (`tokens[i]` for socket i when the subscribers are distinct people)
and subscribes each to the same operation (or, with `each`, socket i to `queries[each[i][0]]` with
variables `each[i][1]`: W4 spread), then prints one JSON line {"ready": …}. With `who`, a report
also says which subscribers (`first` + i) received each change. After
that it answers commands on stdin, one per line:
  report — print what arrived since the last report: per change key ("KIND:session id") how many
           subscribers got it and when (wall clock, time.time()), and errors; then forget it
  quit   — close every socket and exit
The bench runs 1–4 such processes so that the client side is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict

import orjson
import websockets

from bench.infra import raise_fd_limit


def _text(message: dict) -> str:
    return orjson.dumps(message).decode()  # graphql-transport-ws wants text frames, not binary


class Subscribers:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.sockets: list = []
        self.times: dict[str, list[float]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.messages = 0
        self.errors: list[str] = []
        self.ready = 0
        self.record_times = spec.get("record_times", True)
        self.who: dict[str, list[int]] | None = defaultdict(list) if spec.get("who") else None

    async def one(self, index: int, opened: asyncio.Semaphore, first: asyncio.Queue) -> None:
        spec = self.spec
        async with opened:
            try:
                socket = await websockets.connect(
                    spec["url"], subprotocols=["graphql-transport-ws"], open_timeout=60, ping_interval=None,
                    max_size=None, compression="deflate" if spec.get("compression", True) else None,
                )
                self.sockets.append(socket)
                token = spec["tokens"][index] if spec.get("tokens") else spec["token"]
                await socket.send(_text({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
                ack = orjson.loads(await asyncio.wait_for(socket.recv(), 60))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"init answered {ack}")
                query, variables, snapshot = spec.get("query"), spec.get("variables"), spec.get("snapshot", True)
                if spec.get("each"):  # this subscriber's own operation: (index into queries, variables)
                    which, variables = spec["each"][index]
                    query, snapshot = spec["queries"][which], spec["snapshots"][which]
                await socket.send(_text({
                    "id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables},
                }))
                if snapshot:  # `sessions` sends the whole list first: the subscription is live
                    message = orjson.loads(await asyncio.wait_for(socket.recv(), 120))
                    if message.get("type") != "next" or message["payload"].get("errors"):
                        raise RuntimeError(f"first message {str(message)[:300]}")
            except Exception as error:  # noqa: BLE001 — reported, never left hanging
                self.errors.append(f"subscriber {index}: {error!r}"[:400])
                await first.put(False)
                return
        await first.put(True)
        field = spec["field"]
        me = spec.get("first", 0) + index
        try:
            async for raw in socket:
                at = time.time()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.errors.append(str(payload["errors"])[:300])
                        continue
                    data = payload["data"].get(field)
                    if data is None:  # another operation's message (W4 spread: an ACCOUNTANT's organizationData)
                        other = f"other:{next(iter(payload['data']))}"
                        self.counts[other] += 1
                        if self.who is not None:
                            self.who[other].append(me)
                        continue
                    event = data.get("event") if field == "sessions" else data
                    if event is None:
                        continue
                    key = f"{event['kind']}:{event['session']['id']}"
                    self.messages += 1
                    self.counts[key] += 1
                    if self.record_times:
                        self.times[key].append(at)
                    if self.who is not None:
                        self.who[key].append(me)
                elif kind == "ping":
                    await socket.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    self.errors.append(str(message)[:300])
        except websockets.ConnectionClosed as closed:
            if not self.closing:
                self.errors.append(f"closed: {closed!r}")

    closing = False

    async def run(self) -> None:
        spec = self.spec
        opened = asyncio.Semaphore(spec.get("connect_concurrency", 50))
        first: asyncio.Queue = asyncio.Queue()
        started = time.monotonic()
        tasks = [asyncio.create_task(self.one(i, opened, first)) for i in range(spec["count"])]
        ok = 0
        for _ in range(spec["count"]):
            ok += await first.get()
        self.ready = ok
        print(orjson.dumps({"ready": ok, "failed": spec["count"] - ok, "connect_s": time.monotonic() - started,
                            "errors": self.errors[:5]}).decode(), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = (await reader.readline()).decode().strip()
            if line == "report":
                report = {"messages": self.messages, "counts": self.counts, "errors": self.errors[:20],
                          "error_count": len(self.errors)}
                if self.record_times:
                    report["times"] = self.times
                if self.who is not None:
                    report["who"] = self.who
                    self.who = defaultdict(list)
                print(orjson.dumps(report).decode(), flush=True)
                self.times, self.counts, self.messages, self.errors = defaultdict(list), defaultdict(int), 0, []
            elif line in ("quit", ""):
                break
        self.closing = True
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    raise_fd_limit()
    arg = sys.argv[1]
    spec = orjson.loads(open(arg[1:], "rb").read() if arg.startswith("@") else arg)
    try:
        import uvloop
    except ImportError:
        asyncio.run(Subscribers(spec).run())
    else:
        uvloop.run(Subscribers(spec).run())


if __name__ == "__main__":
    main()
