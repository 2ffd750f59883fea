"""The bench's own instruments (issue 22): the flame graph summary read back from a py-spy SVG, and
the /proc readings of a multi-process server (its process group, its connections per process)."""

from __future__ import annotations

import os
import socket

from bench import infra
from bench.flamegraph import stacks, summary

# py-spy's SVG as it writes it (inferno): root "all" on top, depth growing with y, fg:x/fg:w in samples
SVG = """<svg><g id="frames">
<g><title>all (10 samples, 100%)</title><rect x="0%" y="52" width="100%" height="15" fg:x="0" fg:w="10"/></g>
<g><title>run (uvicorn/server.py:85) (10 samples, 100.00%)</title><rect x="0%" y="68" width="100%" height="15" fg:x="0" fg:w="10"/></g>
<g><title>load_field (schema/batching.py:177) (6 samples, 60.00%)</title><rect x="0%" y="84" width="60%" height="15" fg:x="0" fg:w="6"/></g>
<g><title>decode_row (protocol.c:84480) (4 samples, 40.00%)</title><rect x="0%" y="100" width="40%" height="15" fg:x="0" fg:w="4"/></g>
<g><title>complete (schema/execution.py:259) (3 samples, 30.00%)</title><rect x="60%" y="84" width="30%" height="15" fg:x="6" fg:w="3"/></g>
</g></svg>"""


def test_the_flame_graph_summary_reads_own_and_inclusive_shares(tmp_path):
    svg = tmp_path / "flame.svg"
    svg.write_text(SVG)
    collapsed = stacks(svg)
    assert collapsed[("all", "run (uvicorn/server.py:85)", "load_field (schema/batching.py:177)",
                      "decode_row (protocol.c:84480)")] == 4
    assert collapsed[("all", "run (uvicorn/server.py:85)", "load_field (schema/batching.py:177)")] == 2
    assert collapsed[("all", "run (uvicorn/server.py:85)")] == 1  # its own sample beside its callees
    top = summary(svg)
    assert top["samples"] == 10
    assert dict(map(tuple, top["own_by_package"])) == {"asyncpg (C: protocol)": 40.0, "schema": 50.0, "uvicorn": 10.0}
    assert dict(map(tuple, top["under"]))["load_field (schema/batching.py:177)"] == 60.0


def test_a_servers_connections_are_counted_per_process():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert client
                assert infra.connections_per_process(os.getpid(), f"http://127.0.0.1:{port}") == {os.getpid(): 1}
    assert os.getpid() in infra.group(os.getpid())
    own = infra.cpu_seconds(os.getpid())  # read first: CPU time only grows, the group's includes ours
    assert infra.server_cpu_seconds(os.getpid()) >= own
