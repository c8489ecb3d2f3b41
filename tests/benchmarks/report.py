"""The report of `make bench`: medians, the issue's ratios and targets, and the page section.

Everything here works on the results dict `bench.py` builds (and writes to results.json), so the same
section can be rendered again from a saved run: `python -m tests.benchmarks.report results.json`.
The section goes between `<!-- bench:begin -->` and `<!-- bench:end -->` of docs/performance.md,
replacing only what is there; `--journal` adds one row of headline ratios before
`<!-- bench:journal:end -->`, so two labelled runs (before, after) sit side by side.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
JOURNAL_END = "<!-- bench:journal:end -->"
SATURATED_CPU_PCT = 90.0
# The targets (issue 18, "Done when"), as ratios measured in one run.
L1_VS_HELLO_MIN = 0.6
L1_VS_GET_MIN = 1.4
REDIS_HIT_CPU_MAX = 1.15
MISS_CPU_MAX, MISS_CPU_GOAL = 1.5, 1.3
WORKERS_2_MIN = 1.8
SOAK_FLAT_PCT = 10.0
REDIS_HIT_SHARE_MIN = 0.95  # (rh) counts only if nearly every request was a hit that reached Redis
HIT_WHAT = {
    "hello": "bare aiohttp, small JSON, no Redis",
    "a": "bare aiohttp + one redis-py GET",
    "b": "gateway L1 hit: one identity",
    "bq": "gateway L1 hit, log level warning: no request line",
    "rh": "gateway Redis hit: 2,000 identities, L1 of 100",
    "w2": "gateway L1 hit, `serve --workers 2`",
}
MISS_WHAT = {
    "v": "vendor sandbox directly (reference)",
    "p": "bare forwarding proxy to the sandbox",
    "r": "forwarding proxy + one Redis GET",
    "ps": "forwarding proxy + one Redis SET (miss baseline)",
    "c": "gateway miss, new identity each",
}


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def hit_runs(out: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    rounds = (out.get("hit_path") or {}).get("rounds", [])
    return sorted((r for r in rounds if r["scenario"] == scenario), key=lambda r: r["round"])


def miss_run(out: dict[str, Any], scenario: str, connections: int) -> dict[str, Any] | None:
    runs = (out.get("misses") or {}).get("runs", [])
    return next(
        (r for r in runs if r["scenario"] == scenario and r["connections"] == connections), None
    )


def busiest_miss_connections(out: dict[str, Any]) -> int | None:
    counts = [r["connections"] for r in (out.get("misses") or {}).get("runs", [])]
    return max(counts) if counts else None


# --- rows and targets --------------------------------------------------------------------------


def row_of(name: str, what: str, runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "what": what,
        "runs": len(runs),
        "connections": runs[0]["connections"],
        "rps": median_of(runs, "rps"),
        "p50_ms": median_of(runs, "p50_ms"),
        "p99_ms": median_of(runs, "p99_ms"),
        "server_cpu_us_per_req": median_of(runs, "server_cpu_us_per_req"),
        "server_cpu_pct": median_of(runs, "server_cpu_pct"),
        "redis_commands_per_req": median_of(runs, "redis_commands_total_per_req"),
        "peak_rss_mb": extra.pop("peak", None),
        "vendor_calls": sum(r.get("vendor_calls", 0) for r in runs),
        "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in runs),
        **extra,
    }


def table_rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    peaks = (out.get("hit_path") or {}).get("peak_rss_mb", {})
    rows = [
        row_of(s, what, runs, peak=peaks.get(s))
        for s, what in HIT_WHAT.items()
        if (runs := hit_runs(out, s))
    ]
    misses = out.get("misses") or {}
    for run in misses.get("runs", []):
        scenario, conns = run["scenario"], run["connections"]
        peak = misses.get("peak_rss_mb") if scenario == "c" else run.get("server_hwm_mb")
        rows.append(row_of(f"{scenario}{conns}", MISS_WHAT[scenario], [run], peak=peak))
    burst = out.get("burst")
    if burst:
        rows.append(
            row_of(
                "d",
                f"{burst['requests']:,} identical cold requests, 2 processes",
                [burst],
                peak=max(burst["peak_rss_mb"].values()),
            )
        )
    soak = out.get("soak")
    if soak:
        rows.append(
            row_of(
                "soak",
                f"L1 hits over {soak['identities']:,} identities, {soak['duration_s']:.0f} s",
                [soak],
                peak=soak["hwm_mb"],
            )
        )
    return rows


def ratio(
    top: list[dict[str, Any]], bottom: list[dict[str, Any]], key: str
) -> tuple[float, list[float]]:
    """median(top)/median(bottom), and the same ratio round by round (pairs of the same round)."""
    whole = median_of(top, key) / median_of(bottom, key)
    rounds = [t[key] / b[key] for t, b in zip(top, bottom, strict=False) if b.get(key)]
    return whole, rounds


def per_round(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    """The table rows, the headline ratios and each target, met (True), not (False) or
    inconclusive (None, with the reason in its value)."""
    targets: list[dict[str, Any]] = []
    ratios: dict[str, float | None] = {}

    def target(name: str, value: str, met: bool | None) -> None:
        targets.append({"target": name, "value": value, "met": None if met is None else bool(met)})

    hello, a, b = hit_runs(out, "hello"), hit_runs(out, "a"), hit_runs(out, "b")
    rh, w2 = hit_runs(out, "rh"), hit_runs(out, "w2")
    if hello and a and b:
        for name, base, minimum, key in (
            ("(hello)", hello, L1_VS_HELLO_MIN, "l1_vs_hello"),
            ("(a)", a, L1_VS_GET_MIN, "l1_vs_get"),
        ):
            whole, rounds = ratio(b, base, "rps")
            ratios[key] = whole
            busy = (median_of(b, "server_cpu_pct"), median_of(base, "server_cpu_pct"))
            saturated = min(busy) >= SATURATED_CPU_PCT
            target(
                f"L1 hit throughput (b) ≥ {minimum}× {name}",
                f"{whole:.2f}× ({median_of(b, 'rps'):,.0f} vs {median_of(base, 'rps'):,.0f} req/s; "
                f"per round {per_round(rounds)}; servers {busy[0]:.0f} % and {busy[1]:.0f} % of a core)"
                + ("" if saturated else " — inconclusive: a server was not saturated"),
                whole >= minimum if saturated else None,
            )
        p99 = (median_of(b, "p99_ms"), median_of(a, "p99_ms"))
        ratios["l1_p99_vs_get"] = p99[0] / p99[1]
        target(
            "L1 hit p99 (b) ≤ p99 of (a)",
            f"{p99[0]:.2f} vs {p99[1]:.2f} ms (per round "
            + ", ".join(
                f"{x['p99_ms']:.1f} vs {y['p99_ms']:.1f}" for x, y in zip(b, a, strict=False)
            )
            + ")",
            p99[0] <= p99[1],
        )
    if rh and a:
        whole, rounds = ratio(rh, a, "server_cpu_us_per_req")
        ratios["redis_hit_cpu_vs_get"] = whole
        shares = [r.get("cache_hit_share", float("nan")) for r in rh]
        reads = [r.get("redis_commands_total_per_req", float("nan")) for r in rh]
        valid = min(shares) >= REDIS_HIT_SHARE_MIN and min(reads) >= REDIS_HIT_SHARE_MIN
        target(
            f"Redis hit CPU per request (rh) ≤ {REDIS_HIT_CPU_MAX}× (a)",
            f"{whole:.2f}× ({median_of(rh, 'server_cpu_us_per_req'):.0f} vs "
            f"{median_of(a, 'server_cpu_us_per_req'):.0f} µs; per round {per_round(rounds)}); "
            f"hits {per_round(shares)} of requests, Redis commands per request {per_round(reads)}"
            + ("" if valid else " — inconclusive: not every request was a hit that reached Redis"),
            whole <= REDIS_HIT_CPU_MAX if valid else None,
        )
    conns = busiest_miss_connections(out)
    miss, floor = (miss_run(out, "c", conns), miss_run(out, "ps", conns)) if conns else (None, None)
    if miss and floor:
        whole = miss["server_cpu_us_per_req"] / floor["server_cpu_us_per_req"]
        ratios["miss_cpu_vs_ps"] = whole
        one = (miss_run(out, "c", 1), miss_run(out, "ps", 1))
        at_one = (
            f"; at 1 connection {one[0]['server_cpu_us_per_req']:.0f} vs "
            f"{one[1]['server_cpu_us_per_req']:.0f} µs"
            if one[0] and one[1]
            else ""
        )
        target(
            f"miss CPU per miss (c) ≤ {MISS_CPU_MAX}× (ps) at {conns} connections "
            f"(goal {MISS_CPU_GOAL}×)",
            f"{whole:.2f}× ({miss['server_cpu_us_per_req']:.0f} vs "
            f"{floor['server_cpu_us_per_req']:.0f} µs{at_one}); goal "
            + ("met" if whole <= MISS_CPU_GOAL else "not met"),
            whole <= MISS_CPU_MAX,
        )
    if w2 and b:
        whole, rounds = ratio(w2, b, "rps")
        ratios["workers_2_vs_1"] = whole
        target(
            f"`serve --workers 2` throughput (w2) ≥ {WORKERS_2_MIN}× one worker (b)",
            f"{whole:.2f}× ({median_of(w2, 'rps'):,.0f} vs {median_of(b, 'rps'):,.0f} req/s; per "
            f"round {per_round(rounds)}; workers together {median_of(w2, 'server_cpu_pct'):.0f} % "
            f"of a core, the load generator {median_of(w2, 'loadgen_cpu_pct'):.0f} %)",
            whole >= WORKERS_2_MIN,
        )
    soak = out.get("soak")
    if soak:
        ratios["soak_growth_pct"] = soak["rss_growth_pct"]
        ratios["bytes_per_identity"] = soak["bytes_per_identity"]
        target(
            f"soak RSS flat (±{SOAK_FLAT_PCT:g} %) over {soak['duration_s']:.0f} s at "
            f"{soak['identities']:,} identities",
            f"{soak['rss_growth_pct']:+.1f} % (first/last {soak['window_s']:.0f} s means "
            f"{soak['rss_first_window_mean_mb']:.1f} → {soak['rss_last_window_mean_mb']:.1f} MB; "
            f"range {soak['rss_min_mb']:.1f}–{soak['rss_max_mb']:.1f} MB; RSS "
            f"{soak['rss_before_warm_mb']:.1f} MB before warming, {soak['rss_after_warm_mb']:.1f} MB "
            f"after: {soak['bytes_per_identity']:,.0f} bytes per cached identity; "
            f"{soak['vendor_calls']} vendor calls during the soak)",
            abs(soak["rss_growth_pct"]) <= SOAK_FLAT_PCT,
        )
    burst = out.get("burst")
    if burst:
        ok = burst["statuses"].get("200", 0)
        target(
            f"(d) exactly one vendor call for {burst['requests']:,} cold requests",
            f"{burst['vendor_calls']} vendor call(s); {ok}/{burst['requests']} answered 200 with "
            f"{burst['distinct_bodies']} distinct body(ies)",
            burst["vendor_calls"] == 1 and ok == burst["requests"],
        )
    return {
        "table": table_rows(out),
        "ratios": ratios,
        "targets": targets,
        "costs": measured_costs(out),
    }


def measured_costs(out: dict[str, Any]) -> list[str]:
    """What parts of the hit path cost, from pairs of scenarios that differ in that part alone."""
    hello, b, bq = hit_runs(out, "hello"), hit_runs(out, "b"), hit_runs(out, "bq")
    if not (hello and b and bq):
        return []
    cpu = {name: median_of(runs, "server_cpu_us_per_req") for name, runs in
           (("hello", hello), ("b", b), ("bq", bq))}  # fmt: skip
    line, rounds = (
        cpu["b"] - cpu["bq"],
        [
            x["server_cpu_us_per_req"] - y["server_cpu_us_per_req"]
            for x, y in zip(b, bq, strict=False)
        ],
    )
    quiet, _ = ratio(bq, hello, "rps")
    return [
        f"the canonical request line: (b) − (bq) = {line:.0f} µs of CPU per request "
        f"({100 * line / cpu['b']:.0f} % of the L1 hit; per round "
        + ", ".join(f"{r:.0f}" for r in rounds)
        + " µs)",
        f"the L1 hit without it: (bq) {cpu['bq']:.0f} µs per request against {cpu['hello']:.0f} µs "
        f"for (hello), {quiet:.2f}× its throughput",
    ]


# --- markdown ----------------------------------------------------------------------------------


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "inconclusive"}[met]


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| | scenario | conns | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MB "
        "| vendor calls | Redis cmds/req | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['what']} | {r['connections']} | {fmt(r['rps'], 0)} "
            f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['server_cpu_us_per_req'], 0)} "
            f"| {fmt(r['peak_rss_mb'])} | {r['vendor_calls']} | {fmt(r['redis_commands_per_req'], 2)} "
            f"| {r['errors']} |"
        )
    return "\n".join(lines) + "\n"


def rounds_markdown(out: dict[str, Any]) -> str:
    lines = [
        "| round | | req/s | p50 ms | p99 ms | server CPU µs/req | server CPU % "
        "| load generator CPU % | other processes CPU % |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in (out.get("hit_path") or {}).get("rounds", []):
        lines.append(
            f"| {r['round']} | {r['scenario']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['server_cpu_us_per_req']:.0f} | {r['server_cpu_pct']:.0f} "
            f"| {r['loadgen_cpu_pct']:.0f} | {r['other_cpu_pct']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def profile_markdown(
    title: str, profile: dict[str, Any], cpu_us_per_req: float | None, *, top: int
) -> list[str]:
    """A profile's top costs: by concern (with µs per request), then the top functions by self
    and by inclusive share of the busy samples."""
    if not profile.get("self"):
        errors = "; ".join(profile.get("errors", [])) or "skipped"
        return [f"No profile of the {title}: {errors}.", ""]
    cpu = cpu_us_per_req or float("nan")
    lines = [
        f"**{title}** — {profile['profiler']}, {profile['samples']} busy samples at "
        f"{profile['load']['rps']:,.0f} req/s while sampled; flame output "
        + ", ".join(f"`bench-results/{f}`" for f in profile["files"])
        + ".",
        "",
    ]
    if profile.get("by_concern"):
        lines += [
            f"| by concern (leaf-up) | share | ≈ µs/req of {fmt(cpu, 0)} |",
            "|---|--:|--:|",
            *[
                f"| {i['concern']} | {i['share_pct']:.1f}% | {fmt(i['share_pct'] * cpu / 100, 0)} |"
                for i in profile["by_concern"]
            ],
            "",
        ]
    if top:
        inclusive = profile["inclusive"][:top]
        lines += ["| self | function | | inclusive | function |", "|--:|---|---|--:|---|"]
        for i, own in enumerate(profile["self"][:top]):
            total = inclusive[i] if i < len(inclusive) else None
            lines.append(
                f"| {own['share_pct']:.1f}% | `{own['function']}` | "
                + (f"| {total['share_pct']:.1f}% | `{total['function']}` |" if total else "| | |")
            )
        lines.append("")
    return lines


def page_section(out: dict[str, Any]) -> str:
    """The generated part of docs/performance.md (without the markers)."""
    m, method, summary = out["machine"], out["method"], out["summary"]
    packages = m.get("packages", {})
    if method["load_generator"] == "wrk":
        tool = f"`{method['load_generator_version']}`, {method['wrk_threads']} threads"
    else:
        tool = "the bundled asyncio generator `tests/benchmarks/loadgen.py` (no `wrk`)"
    noise = median_of((out.get("hit_path") or {}).get("rounds", []), "other_cpu_pct")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(out["started_at"]))
    minutes = (out["finished_at"] - out["started_at"]) / 60
    lines = [
        "## The last `make bench` run",
        "",
        "*Written by `make bench` (`python -m tests.benchmarks.bench`); do not edit between the markers.*",
        "",
        f"- **When**: {when}, {minutes:.1f} minutes"
        + (f", label `{out['label']}`" if out.get("label") else "")
        + f"; commit `{m.get('git', 'unknown')}`.",
        f"- **Machine**: {m['nproc']} CPUs ({m['cpu_model']}), Linux {m['kernel']}; load average "
        f"{out['load_average_at_start']} at the start, {out['load_average_at_end']} at the end; other "
        f"processes used a median {fmt(noise, 0)} % of a core during the hit rounds.",
        f"- **Versions**: {m['implementation']} {m['python']}, aiohttp {packages.get('aiohttp', '?')}, "
        f"redis-py {packages.get('redis', '?')} (hiredis {packages.get('hiredis', '?')}), Redis "
        f"server {out['redis']['version']}, uvloop {packages.get('uvloop', '?')}, orjson "
        f"{packages.get('orjson', '?')}.",
        f"- **Load**: {tool}, {method['connections']} keep-alive connections for every hit "
        f"scenario (the same for one worker and two); {method['rounds']} interleaved rounds of "
        f"{method['round_s']:g} s after {method['warmup_s']:g} s of warm-up each (the order reverses "
        "every round); misses at 1 and "
        f"{method['miss_connections'][1]} connections against a {method['miss_vendor_latency_s'] * 1000:g} ms "
        "sandbox. Server CPU per request: utime+stime of the server's processes from "
        "`/proc/<pid>/stat` over the requests answered.",
        "",
        "### Targets (issue 18)",
        "",
    ]
    lines += [f"- {verdict(t['met'])} — {t['target']}: {t['value']}." for t in summary["targets"]]
    if summary.get("costs"):
        lines += ["", "### Measured costs", ""]
        lines += [f"- {cost[0].upper()}{cost[1:]}." for cost in summary["costs"]]
    lines += [
        "",
        "### Results",
        "",
        "Medians over rounds for the hit scenarios; one run each for the rest.",
        "",
        table_markdown(summary["table"]),
        "Hit scenarios round by round:",
        "",
        rounds_markdown(out),
        "### Where the hit path's time goes",
        "",
        "py-spy attached to the running server under the same load after the measured rounds; "
        "shares are of busy samples (py-spy sees no C frames: uvloop's loop and epoll are charged to "
        "`Runner.run`, a response's `send()` to aiohttp's `StreamWriter._writelines`); µs/req "
        "multiply a share by the scenario's measured CPU per request.",
        "",
    ]
    profiles = out.get("profiles") or {}
    cpu = {r["scenario"]: r["server_cpu_us_per_req"] for r in summary["table"]}
    conns = busiest_miss_connections(out)
    lines += profile_markdown(
        "L1 hit path (b)", profiles.get("hit-path") or {}, cpu.get("b"), top=10
    )
    lines += profile_markdown(
        "Redis hit path (rh)", profiles.get("redis-hit-path") or {}, cpu.get("rh"), top=10
    )
    lines += profile_markdown(
        "miss path (c)", profiles.get("miss-path") or {}, cpu.get(f"c{conns}"), top=0
    )
    return "\n".join(lines).rstrip() + "\n"


def replace_section(page: str, section: str) -> str:
    """The page with only the part between the markers replaced."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise ValueError(f"the page needs one {BEGIN} followed by one {END}")
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def journal_row(out: dict[str, Any]) -> str:
    """One line of headline ratios for the page's before/after table."""
    r, m = out["summary"]["ratios"], out["machine"]
    when = time.strftime("%Y-%m-%d", time.gmtime(out["started_at"]))

    def x(key: str, digits: int = 2, unit: str = "×") -> str:
        value = r.get(key)
        return "—" if value is None else f"{value:.{digits}f}{unit}"

    return (
        f"| {out.get('label') or '—'} | {when} | `{m.get('git', '?')}` | {x('l1_vs_hello')} "
        f"| {x('l1_vs_get')} | {x('l1_p99_vs_get')} | {x('redis_hit_cpu_vs_get')} "
        f"| {x('miss_cpu_vs_ps')} | {x('workers_2_vs_1')} | {x('soak_growth_pct', 1, ' %')} "
        f"| {x('bytes_per_identity', 0, ' B')} |"
    )


def append_journal(page: str, row: str) -> str:
    if page.count(JOURNAL_END) != 1:
        raise ValueError(f"the page needs one {JOURNAL_END} under its journal table")
    head, tail = page.split(JOURNAL_END)
    return f"{head.rstrip()}\n{row}\n{JOURNAL_END}{tail}"


def print_table(out: dict[str, Any]) -> None:
    summary = out["summary"]
    cols = ("", "conns", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "peak RSS MB", "errors")
    print()
    print("  ".join(f"{c:>11}" for c in cols))
    for r in summary["table"]:
        cells = (
            r["scenario"],
            r["connections"],
            fmt(r["rps"], 0),
            fmt(r["p50_ms"], 2),
            fmt(r["p99_ms"], 2),
            fmt(r["server_cpu_us_per_req"], 0),
            fmt(r["peak_rss_mb"]),
            r["errors"],
        )
        print("  ".join(f"{c!s:>11}" for c in cells))
    print()
    for t in summary["targets"]:
        print(f"  [{verdict(t['met']).strip('*')}] {t['target']}: {t['value']}")


if __name__ == "__main__":  # re-render a saved run: python -m tests.benchmarks.report results.json
    saved = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    saved["summary"] = summarise(saved)
    sys.stdout.write(page_section(saved))
