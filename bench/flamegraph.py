"""Flame graphs of the server under load (`--flamegraphs`): py-spy samples the kabinet process that
executes every request while a load run drives it, and writes an SVG to bench/results/; a summary
of where the samples fall (top frames by own time and by time under them, and by package) is read
back from the SVG, logged, kept in the results and written beside it as .top.txt.

    .venv/bin/python -m bench.flamegraph bench/results/flame-…-W1.svg    # the summary of any py-spy SVG

py-spy (a locked dev dependency: pyproject.toml's `bench` extra) records C frames too (`--native`:
asyncpg's decoding, uvloop, datetime; `--flame-python-only` for Python's alone) and reads the process's memory with
ptrace: root, or a user allowed to trace its own processes (kernel.yama.ptrace_scope 0), may.
Sampling pauses the process a moment each time (accurate stacks): the profiled run is an extra
one, after the measured runs, and its figures are not reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from bench import infra
from bench.common import log
from bench.http_load import LoadSpec

if TYPE_CHECKING:
    from bench.harness import Bench

_FRAME = re.compile(r'<title>(?P<title>[^<]*)</title><rect [^>]*?y="(?P<y>[\d.]+)"[^>]*?fg:x="(?P<x>\d+)" fg:w="(?P<w>\d+)"')
_TITLE = re.compile(r"^(?P<name>.*) \((?P<samples>[\d,]+) samples?, [\d.]+%\)$")


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


async def profile_under_load(bench: Bench, name: str, spec: LoadSpec, pid: int) -> dict | None:
    """One extra load run of `spec` on process `pid`, py-spy recording it: the SVG's path and summary."""
    args = bench.args
    binary = py_spy()
    if binary is None:
        bench.problem(f"{name}: --flamegraphs needs py-spy (`make venv` installs it from requirements/test.lock)")
        return None
    label = f"-{args.flamegraphs}" if args.flamegraphs else ""
    svg = infra.BENCH_DIR / "results" / f"flame-{dt.date.today():%Y-%m-%d}{label}-{name}.svg"

    log(f"  py-spy: {args.flame_seconds:.0f} s at {args.flame_rate} Hz of pid {pid} under load → {svg.name}")
    recorder = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--duration", str(int(args.flame_seconds)), "--rate", str(args.flame_rate),
        "--function", "--format", "flamegraph", "--output", str(svg), *([] if args.flame_python_only else ["--native"]),
        start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    bench.procs.adopt(recorder.pid)
    try:
        await asyncio.sleep(0.5)  # attached before the load starts
        await bench.load(LoadSpec(spec.url, spec.bodies, spec.connections, args.flame_seconds + 1, spec.headers))
        out, _ = await asyncio.wait_for(recorder.communicate(), 60)
    finally:
        bench.procs.release(recorder.pid)
    if recorder.returncode != 0 or not svg.exists():
        bench.problem(f"{name}: py-spy failed ({recorder.returncode}): {out.decode(errors='replace')[-500:]}")
        return None
    top = summary(svg)
    svg.with_suffix(".top.txt").write_text(render(top, f"{name}: {svg.name}") + "\n")
    log(render(top, f"  {name} flame graph", limit=8))
    return {"svg": str(svg.relative_to(infra.ROOT)), "bytes": svg.stat().st_size, **top}


def stacks(svg: Path) -> Counter:
    """The SVG's samples as collapsed stacks: (root…leaf frame names) → samples with that leaf on top."""
    frames = []
    for match in _FRAME.finditer(svg.read_text(encoding="utf-8")):
        title = _TITLE.match(html.unescape(match["title"]))
        frames.append((float(match["y"]), int(match["x"]), int(match["w"]), title["name"] if title else match["title"]))
    if not frames:
        return Counter()
    root = max(frames, key=lambda f: f[2])  # "all": the widest frame
    levels = sorted({f[0] for f in frames}, reverse=root[0] > min(f[0] for f in frames))
    depth = {y: i for i, y in enumerate(levels)}
    by_depth: dict[int, list] = defaultdict(list)
    for y, x, w, name in frames:
        by_depth[depth[y]].append((x, w, name))
    result: Counter = Counter()
    paths: dict[tuple[int, int], tuple[str, ...]] = {}  # (depth, x) → path
    for d in sorted(by_depth):
        parents = sorted(by_depth.get(d - 1, []))
        for x, w, name in sorted(by_depth[d]):
            parent = next((p for p in reversed(parents) if p[0] <= x < p[0] + p[1]), None)
            path = (paths.get((d - 1, parent[0]), ()) if parent else ()) + (name,)
            paths[(d, x)] = path
            children = sum(cw for cx, cw, _ in by_depth.get(d + 1, []) if x <= cx < x + w)
            if w - children > 0:
                result[path] += w - children
    return result


# C files of the native frames (--native), by what they belong to
_NATIVE = {"pgproto.c": "asyncpg (C: decoding)", "protocol.c": "asyncpg (C: protocol)", "recordobj.c": "asyncpg (C: Record)",
           "hton.h": "asyncpg (C: decoding)", "tohex.h": "asyncpg (C: decoding)",
           "loop.c": "uvloop (C)", "core.c": "uvloop (C)", "stream.c": "uvloop (C)", "queue.h": "uvloop (C)",
           "linux.c": "uvloop (C)", "timer.c": "uvloop (C)", "loop-watcher.c": "uvloop (C)", "llhttp.c": "httptools (C)",
           "parser.c": "httptools (C)", "_datetimemodule.c": "datetime (C)", "_datetimemodule.c.h": "datetime (C)",
           "_zoneinfo.c": "datetime (C)", "_decimal.c": "decimal (C)", "mpdecimal.c": "decimal (C)",
           "_asynciomodule.c": "asyncio (C)", "_asynciomodule.c.h": "asyncio (C)", "io.c": "io (C)",
           "libc.so.6": "libc (syscalls, memory)", "[vdso]": "libc (syscalls, memory)"}


_PYTHON_STAGES = {"schema", "resolvers", "models", "kabinet", "events", "foundation", "graphql", "strawberry", "tortoise",
                  "asyncpg", "orjson", "starlette", "uvicorn"}


def _package(frame: str) -> str:
    """What a frame's file belongs to: 'graphql', 'schema', 'asyncpg (C: decoding)', 'CPython'…"""
    path = frame.rsplit(" (", 1)[-1].rstrip(")").split(":")[0]
    if path in _NATIVE:
        return _NATIVE[path]
    if path.startswith("<row builder"):
        return "models (row builders)"
    if path.startswith("<") or path == "?":
        return path
    if path.endswith((".h", ".c")) or ".so" in path:
        return "CPython (C: refcounts, GC, calls)" if path.endswith(".h") or "libpython" in path else f"C: {path}"
    parts = path.split("/")
    return parts[0] if len(parts) > 1 else "stdlib " + parts[0]


def summary(svg: Path, limit: int = 15) -> dict:
    """Top frames by own samples and by samples under them, and own samples by package, as shares."""
    collapsed = stacks(svg)
    collapsed.pop(("all",), None)
    total = sum(collapsed.values()) or 1
    own: Counter = Counter()
    under: Counter = Counter()
    packages: Counter = Counter()
    for path, n in collapsed.items():
        frames = [f for f in path if f != "all" and not f.startswith("process ")]
        if not frames:
            continue
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            under[frame] += n

    def shares(counter: Counter, n: int) -> list[list]:
        return [[name, round(100 * count / total, 1)] for name, count in counter.most_common(n)]

    # Python frames only, and not the trunk most samples share (the event loop, the middlewares, the
    # view): what is left are the stages of a request whose share says something
    under = Counter({frame: n for frame, n in under.items()
                     if n < 0.75 * total and _package(frame).split(" ")[0] in _PYTHON_STAGES})
    return {"samples": total, "own": shares(own, limit), "under": shares(under, limit * 2),
            "own_by_package": shares(packages, limit)}


def render(top: dict, title: str, limit: int = 15) -> str:
    lines = [f"{title} — {top['samples']:,} samples"]
    for key, heading in (("own_by_package", "own time by package"), ("own", "own time (the frame on top)"),
                         ("under", "time under the frame (it or what it called; Python frames under 75%)")):
        lines.append(f"  {heading}:")
        lines += [f"    {share:5.1f}%  {name}" for name, share in top[key][:limit if key != "under" else limit * 2]]
    return "\n".join(lines)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(render(summary(Path(argument)), argument))
