"""kabinet side by side with PostGraphile (W1, W2): one request each, loaded in turn on kabinet as it
runs, on kabinet executing every request, the same two on `serve --workers N` (`--workers`), and on
PostGraphile; the runs interleaved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.common import bearer, log, spread
from bench.flamegraph import profile_under_load
from bench.http_load import LoadSpec

if TYPE_CHECKING:
    from bench.harness import Bench


async def compare(bench: Bench, name: str, kabinet: tuple[str, dict, str], postgraphile: tuple[str, dict] | None) -> dict:
    """Load each server in turn with one request, runs interleaved: kabinet as it runs (identical
    requests: its response cache answers), kabinet executing every request, and PostGraphile."""
    args = bench.args
    query, variables, token = kabinet
    headers = bearer(token)
    servers: dict[str, tuple[LoadSpec, int]] = {}
    result: dict = {}
    for server, base, pid in (("kabinet", bench.base, bench.kabinet.pid),
                              ("kabinet_uncached", bench.base_uncached, bench.kabinet_uncached.pid),
                              *bench.multi_process_servers()):
        _, size = await bench.gql(base, query, variables, token)
        result[server] = {"response_bytes": size}
        servers[server] = (LoadSpec(f"{base}/graphql", [bench.body(query, variables)], args.concurrency, args.duration, headers), pid)
    if postgraphile and bench.pg_base:
        p_query, p_variables = postgraphile
        _, size = await bench.gql(bench.pg_base, p_query, p_variables)
        result["postgraphile"] = {"response_bytes": size}
        servers["postgraphile"] = (LoadSpec(f"{bench.pg_base}/graphql", [bench.body(p_query, p_variables)], args.concurrency,
                                            args.duration), bench.pg_proc.pid)
    log("  response bytes: " + ", ".join(f"{server} {r['response_bytes']:,}" for server, r in result.items()))
    warm = 0.5 if bench.smoke else min(3.0, args.duration / 3)
    for spec, _ in servers.values():
        await bench.load(LoadSpec(spec.url, spec.bodies, args.concurrency, warm, spec.headers))
    runs: dict[str, list[dict]] = {server: [] for server in servers}

    for run in range(args.runs):  # interleaved, so that a noisy minute hits each alike
        for server, (spec, pid) in servers.items():
            runs[server].append(await bench.measured_load(spec, pid))
        log(f"  run {run + 1}: " + "; ".join(
            f"{server} {r[-1]['rps']:.0f} req/s p99 {r[-1]['latency_ms']['p99']:.1f} ms" for server, r in runs.items()))
    for server, server_runs in runs.items():
        result[server].update({
            "rps": spread([r["rps"] for r in server_runs]),
            "p50_ms": spread([r["latency_ms"]["p50"] for r in server_runs]),
            "p99_ms": spread([r["latency_ms"]["p99"] for r in server_runs]),
            "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"] for r in server_runs]),
            "non2xx": sum(r["non2xx"] for r in server_runs), "errors": sum(r["errors"] for r in server_runs),
            "driver": server_runs[0]["driver"], "raw": server_runs,
        })
        if result[server]["non2xx"] or result[server]["errors"]:
            bench.problem(f"{name} {server}: {result[server]['non2xx']} non-2xx answers, {result[server]['errors']} errors")
    if "postgraphile" in runs:
        pg = result["postgraphile"]
        for server, suffix in (("kabinet", ""), ("kabinet_uncached", "_uncached")):
            result[f"ratio_rps{suffix}"] = result[server]["rps"]["median"] / pg["rps"]["median"]
            result[f"ratio_p99{suffix}"] = result[server]["p99_ms"]["median"] / pg["p99_ms"]["median"]
    for server, one in (("kabinet_multi", "kabinet"), ("kabinet_multi_uncached", "kabinet_uncached")):
        if server in result:  # what the second core buys
            result[f"{server}_vs_one_rps"] = result[server]["rps"]["median"] / result[one]["rps"]["median"]
    if args.flamegraphs is not None:  # where an executed request's time goes: an extra run, not measured
        result["flamegraph"] = await profile_under_load(bench, name, *servers["kabinet_uncached"])
    result["concurrency"] = args.concurrency
    return result
