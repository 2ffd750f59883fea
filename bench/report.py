"""What `make bench` prints: the targets checked against the figures, and the markdown table."""

from __future__ import annotations

from bench.workloads.w4_fanout import W4_VARIANTS


def check_targets(results: dict) -> None:
    """The brief's targets, each with its measured value and whether it is met (None: no bar)."""
    w = results["workloads"]
    targets = results["targets"]

    def add(name: str, value: str, met: bool | None) -> None:
        targets.append({"target": name, "value": value, "met": met})

    for name in ("W1", "W2"):
        for suffix, how in (("", ""), ("_uncached", ", every request executed")):
            if f"ratio_rps{suffix}" in w.get(name, {}):
                ratio = w[name][f"ratio_rps{suffix}"]
                # issue 22: executed reads at or ahead of PostGraphile (kept answers far ahead already)
                add(f"{name} throughput at c={w[name]['concurrency']} ≥ 1.0× PostGraphile{how}", f"{ratio:.2f}×", ratio >= 1.0)
    graphile_p99 = w.get("W2", {}).get("postgraphile", {}).get("p99_ms")
    for server, how in (("kabinet", ""), ("kabinet_uncached", ", every request executed")):
        if w.get("W2", {}).get(server, {}).get("p99_ms"):
            p99 = w["W2"][server]["p99_ms"]["median"]
            add(f"W2 p99 < 50 ms at c={w['W2']['concurrency']}{how}", f"{p99:.1f} ms", p99 < 50)
            if graphile_p99:
                bar = graphile_p99["median"]
                add(f"W2 p99 under PostGraphile's ({bar:.0f} ms) at c={w['W2']['concurrency']}{how}", f"{p99:.1f} ms", p99 < bar)
    if "ratio_last_first" in w.get("W3", {}):
        ratio = w["W3"]["ratio_last_first"]["median"]
        add("W3 last pages within ±20% of the first", f"{ratio:.2f}×", 0.8 <= ratio <= 1.2)
    for level in _w4_levels(w):
        n = level["subscribers"]
        name = f"W4 {n} subscribers" + ("" if level.get("variant", "one") == "one" else f", {W4_VARIANTS[level['variant']]}")
        name += f", {level['workers']} processes" if level.get("workers") else ""
        if "error" in level:
            add(name, level["error"][:80], False)
            continue
        p99 = level["last_subscriber_p99_ms"]["median"]
        big = int(n) >= 5000
        add(f"{name}: p99 commit→last subscriber" + (" < 1 s" if big else ""), f"{p99:.0f} ms", p99 < 1000 if big else None)
        add(f"{name}: messages lost = 0", str(level["lost"]), level["lost"] == 0)
        if level.get("variant") == "users":
            add(f"{name}: sessions delivered to another USER = 0", str(level["duplicates"]), level["duplicates"] == 0)
        if level.get("variant") == "spread":
            add(f"{name}: misdelivered (another organization's, another person's, to an ACCOUNTANT) = 0",
                str(level["misdelivered"]), level["misdelivered"] == 0)
        kb = level["rss_per_idle_subscriber_kb"]
        add(f"{name}: RSS per idle connection" + (" < 20 KB" if big else ""), f"{kb:.1f} KB", kb < 20 if big else None)
    if w.get("W5", {}).get("terminateSession"):
        add("W5 events lost with subscribers attached = 0", str(w["W5"]["terminateSession"]["lost"]),
            w["W5"]["terminateSession"]["lost"] == 0)
    for name, count in w.get("SQL", {}).items():
        if isinstance(count, dict) and "constant" in count:
            add(f"SQL statements constant: {name}", f"{count['small']} vs {count['large']}", count["constant"])


def _w4_levels(w: dict) -> list[dict]:
    """W4's levels on one process, then those on `serve --workers N`."""
    return [*w.get("W4", {}).get("levels", {}).values(), *w.get("W4_workers", {}).get("levels", {}).values()]


# ---------------------------------------------------------------- the table

def _fmt(s: dict | None, unit: str = "", digits: int = 0) -> str:
    if not s or s.get("median") is None:
        return "—"
    m, lo, hi = s["median"], s["min"], s["max"]
    if len(s.get("runs", [])) <= 1:
        return f"{m:,.{digits}f}{unit}"
    return f"{m:,.{digits}f}{unit} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def table(results: dict) -> str:
    w = results["workloads"]
    meta = results["meta"]
    lines = [
        f"## kabinet bench — {meta['date']}, {meta['machine']} ({meta['cpus']} cores, {meta['memory_gib']} GiB), "
        f"commit {meta['commit']}",
        "",
        f"Medians of {meta['runs']} runs of {meta['duration_s']} s (min–max in brackets); load: {meta['load_driver']}; "
        f"concurrency {meta['concurrency']}.",
        "",
        "| workload | figure | kabinet | kabinet, every request executed | PostGraphile | kabinet ÷ PostGraphile (executed ÷ PostGraphile) |",
        "|---|---|---|---|---|---|",
    ]
    if any("kabinet_multi" in (w.get(name) or {}) for name in ("W1", "W2")):
        lines[-2] = lines[-2] + (f" kabinet, `serve --workers {meta.get('workers', 'N')}` | the same, every request executed | "
                                f"{meta.get('workers', 'N')} processes ÷ 1 (executed) |")
        lines[-1] = lines[-1] + "---|---|---|"
    for name, title in (("W1", "W1 50 orgs → 20 products → contract, 10 documents"), ("W2", "W2 one organization's dashboard")):
        r = w.get(name)
        if not r or "kabinet" not in r or "rps" not in r["kabinet"]:
            continue
        k, u, p = r["kabinet"], r.get("kabinet_uncached", {}), r.get("postgraphile", {})
        m, mu = r.get("kabinet_multi"), r.get("kabinet_multi_uncached", {})

        def ratio(key: str) -> str:
            return f"{r[key]:.2f}× ({r[key + '_uncached']:.2f}×)" if key in r else "—"

        def row(label: str, key: str, digits: int, last: str = "", multi: str = "") -> str:
            text = (f"| | {label} | {_fmt(k.get(key), '', digits)} | {_fmt(u.get(key), '', digits)} | "
                    f"{_fmt(p.get(key), '', digits)} | {last} |")
            if m is not None:
                text += f" {_fmt(m.get(key), '', digits)} | {_fmt(mu.get(key), '', digits)} | {multi} |"
            return text

        multi_ratio = (f"{r['kabinet_multi_vs_one_rps']:.2f}× ({r['kabinet_multi_uncached_vs_one_rps']:.2f}×)"
                       if "kabinet_multi_vs_one_rps" in r else "")

        lines.append(row("req/s", "rps", 0, ratio("ratio_rps"), multi_ratio).replace("| |", f"| {title} |", 1))
        lines.append(row("p50 ms", "p50_ms", 1))
        lines.append(row("p99 ms", "p99_ms", 1, ratio("ratio_p99")))
        lines.append(row("server CPU ms per request", "server_cpu_ms_per_request", 1))
        sizes = [f"{x['response_bytes']:,}" if x.get("response_bytes") else "—" for x in (k, u, p)]
        lines.append(f"| | response bytes | {' | '.join(sizes)} | |" + (" | | |" if m is not None else ""))
    lines += [
        "",
        "| workload | figure | kabinet | | |",
        "|---|---|---|---|---|",
    ]
    r = w.get("W3")
    if r and "first_pages_ms" in r:
        n = r["pages_measured_each_end"]
        lines.append(f"| W3 ledger of {r['rows']:,} rows, {r['pages']} pages of 100 | ms per page, first {n} | "
                     f"{_fmt(r['first_pages_ms'], '', 1)} | | |")
        lines.append(f"| | ms per page, last {n} | {_fmt(r['last_pages_ms'], '', 1)} | | |")
        lines.append(f"| | last ÷ first | {_fmt(r['ratio_last_first'], '×', 2)} | | |")
    if w.get("W4") or w.get("W4_workers"):
        for level in _w4_levels(w):
            n, variant = level["subscribers"], level.get("variant", "one")
            who = {"one": "on one token", "admins": "distinct ADMINs", "users": "distinct USERs",
                   "spread": f"over {level.get('organizations', 0):,} organizations (OWNER, ADMIN, 2 USERs; ACCOUNTANT on organizationData)"}[variant]
            if level.get("workers"):
                who += f", `serve --workers {level['workers']}`"
            if "error" in level:
                lines.append(f"| W4 {int(n):,} `sessions` subscribers, {who} | error | {level['error'][:100]} | | |")
                continue
            reach = {"users": " (each change is one USER's: reaches 1)",
                     "spread": f" (changes {level.get('burst')} at a time, each in another organization: reaches 2–3)"}.get(variant, "")
            lines.append(f"| W4 {int(n):,} `sessions` subscribers, {who}{reach}, {level['changes']} changes in "
                         f"{level['runs']} run(s) | commit → last subscriber p50 / p99 ms | "
                         f"{_fmt(level['last_subscriber_p50_ms'])} / {_fmt(level['last_subscriber_p99_ms'])} | | |")
            lines.append(f"| | commit → each subscriber p50 / p99 ms | {level['all_deliveries']['p50']:,.0f} / "
                         f"{level['all_deliveries']['p99']:,.0f} | | |")
            extra = "delivered to another USER" if variant == "users" else "duplicates"
            lines.append(f"| | messages lost ({extra}) | {level['lost']} ({level['duplicates']}) | | |")
            if variant == "spread":
                lines.append(f"| | misdelivered (must be 0) | {level['misdelivered']} | | |")
            mean = level.get("server_cpu_ms_per_change_mean")
            lines.append(f"| | server CPU per change; per delivered message | {level['server_cpu_ms_per_change']:,.0f} ms"
                         + (f" (mean {mean:,.1f})" if mean is not None else "")
                         + (f"; {level['server_cpu_ms_per_message']:.2f} ms" if level['server_cpu_ms_per_message'] is not None else "")
                         + " | | |")
            extra = level.get("rss_per_idle_subscriber_kb_without_deflate")
            lines.append(f"| | server RSS per idle subscriber | {level['rss_per_idle_subscriber_kb']:.1f} KB "
                         f"({level['rss_before_kb'] / 1024:.0f} → {level['rss_idle_kb'] / 1024:.0f} MiB)"
                         + (f"; {extra:.1f} KB without permessage-deflate" if extra is not None else "") + " | | |")
            lines.append(f"| | connect + subscribe all; server CPU per subscribe | {level['connect_s']:.1f} s; "
                         f"{level['subscribe_server_cpu_ms']:.1f} ms | | |")
            if level.get("connections_per_process"):
                lines.append(f"| | subscribers per process (the kernel's spread) | "
                             f"{' / '.join(f'{c:,}' for c in level['connections_per_process'])} | | |")
    r = w.get("W5")

    def writes(label: str, figures: dict) -> str:
        return (f"| | {label} per s / p99 ms / server CPU ms per request | {_fmt(figures['per_s'])} / "
                f"{figures['p99_ms']['median']:,.0f} / {figures['server_cpu_ms_per_request']['median']:.1f} | | |")

    if r and "terminateSession_without_subscribers" in r:
        lines.append("| W5 writes, no subscribers | | | | |")
        lines.append(writes("terminateSession", r["terminateSession_without_subscribers"]))
        lines.append(writes("scheduleUpdate", r["scheduleUpdate_without_subscribers"]))
    if r and "terminateSession" in r:
        lines.append(f"| W5 writes, {r['subscribers']} `sessionEvents` subscribers attached | | | | |")
        lines.append(writes("terminateSession", r["terminateSession"]))
        lines.append(f"| | events lost (each termination × each subscriber) | {r['terminateSession']['lost']} | | |")
        lines.append(writes("scheduleUpdate", r["scheduleUpdate"]))
    sql = w.get("SQL")
    if sql and not sql.get("error"):
        lines += ["", "| SQL statements per request | small data | large data | constant |", "|---|---|---|---|"]
        for name, c in sql.items():
            if isinstance(c, dict) and "small" in c:
                lines.append(f"| {name} | {c['small']} ({c['small_is']}) | {c['large']} ({c['large_is']}) | "
                             f"{'yes' if c['constant'] else '**no**'} |")
    if results["targets"]:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for t in results["targets"]:
            met = "—" if t["met"] is None else ("yes" if t["met"] else "**no**")
            lines.append(f"| {t['target']} | {t['value']} | {met} |")
    if results["problems"]:
        lines += ["", "Problems:"] + [f"- {p}" for p in results["problems"]]
    if results.get("notes"):
        lines += ["", "Notes:"] + [f"- {p}" for p in results["notes"]]
    return "\n".join(lines)
