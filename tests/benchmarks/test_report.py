"""The report `make bench` writes into docs/performance.md, from a fixed results dict (no benchmark
runs here: nothing is started, nothing is timed)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks import report


def hit(scenario: str, round_: int, rps: float, cpu_us: float, p99: float, **extra: Any) -> Any:
    return {
        "scenario": scenario,
        "round": round_,
        "connections": 64,
        "requests": int(rps * 10),
        "rps": rps,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "server_cpu_us_per_req": cpu_us,
        "server_cpu_pct": 99.0 if scenario != "w2" else 180.0,
        "loadgen_cpu_pct": 20.0,
        "other_cpu_pct": 1.0,
        **extra,
    }


def miss(scenario: str, connections: int, cpu_us: float) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "connections": connections,
        "rps": 250.0,
        "p50_ms": 55.0,
        "p99_ms": 60.0,
        "server_cpu_us_per_req": cpu_us,
        "server_hwm_mb": 50.0,
    }


def results() -> dict[str, Any]:
    rh = {"cache_hit_share": 1.0, "redis_commands_total_per_req": 1.0}
    rounds = [
        hit("hello", 1, 20_000, 45, 9.0),
        hit("hello", 2, 20_000, 45, 9.0),
        hit("a", 1, 8_000, 120, 30.0),
        hit("a", 2, 8_000, 120, 30.0),
        hit("b", 1, 12_800, 70, 10.0),
        hit("b", 2, 13_600, 66, 12.0),
        hit("bq", 1, 15_000, 60, 9.0),
        hit("bq", 2, 15_000, 57, 9.0),
        hit("rh", 1, 7_000, 132, 20.0, **rh),
        hit("rh", 2, 7_000, 138, 20.0, **rh),
        hit("w2", 1, 24_000, 72, 8.0),
        hit("w2", 2, 24_000, 72, 8.0),
    ]
    return {
        "label": "after",
        "started_at": 1_780_000_000.0,
        "finished_at": 1_780_000_540.0,
        "load_average_at_start": "0.10 0.20 0.30",
        "load_average_at_end": "1.00 0.80 0.50",
        "machine": {
            "git": "abc1234",
            "nproc": 2,
            "cpu_model": "Test CPU",
            "kernel": "6.1",
            "implementation": "CPython",
            "python": "3.11.7",
            "packages": {"aiohttp": "3.14.0", "redis": "8.1.0", "uvloop": "0.23.0"},
        },
        "redis": {"version": "7.0.15"},
        "method": {
            "load_generator": "wrk",
            "load_generator_version": "wrk 4.1.0",
            "wrk_threads": 2,
            "connections": 64,
            "rounds": 2,
            "round_s": 10.0,
            "warmup_s": 3.0,
            "miss_connections": [1, 16],
            "miss_vendor_latency_s": 0.05,
        },
        "hit_path": {"rounds": rounds, "peak_rss_mb": {"b": 70.0}},
        "misses": {"runs": [miss("ps", 16, 400), miss("c", 16, 560)], "peak_rss_mb": 75.0},
        "soak": {
            "connections": 64,
            "rps": 9_000.0,
            "p50_ms": 6.0,
            "p99_ms": 12.0,
            "server_cpu_us_per_req": 90.0,
            "duration_s": 60.0,
            "identities": 50_000,
            "window_s": 20.0,
            "rss_first_window_mean_mb": 100.0,
            "rss_last_window_mean_mb": 102.0,
            "rss_growth_pct": 2.0,
            "rss_min_mb": 99.5,
            "rss_max_mb": 102.5,
            "rss_before_warm_mb": 70.0,
            "rss_after_warm_mb": 95.0,
            "bytes_per_identity": 500.0,
            "vendor_calls": 0,
            "hwm_mb": 103.0,
        },
        "profiles": {},
    }


def test_the_targets_state_each_ratio_with_its_verdict_and_rounds() -> None:
    out = results()
    summary = report.summarise(out)

    assert summary["ratios"] == pytest.approx(
        {
            "l1_vs_hello": 0.66,
            "l1_vs_get": 1.65,
            "l1_p99_vs_get": 11 / 30,
            "redis_hit_cpu_vs_get": 1.125,
            "miss_cpu_vs_ps": 1.4,
            "workers_2_vs_1": 24_000 / 13_200,
            "soak_growth_pct": 2.0,
            "bytes_per_identity": 500.0,
        }
    )
    verdicts = {t["target"]: t["met"] for t in summary["targets"]}
    assert verdicts == {
        "L1 hit throughput (b) ≥ 0.6× (hello)": True,
        "L1 hit throughput (b) ≥ 1.4× (a)": True,
        "L1 hit p99 (b) ≤ p99 of (a)": True,
        "Redis hit CPU per request (rh) ≤ 1.15× (a)": True,
        "miss CPU per miss (c) ≤ 1.5× (ps) at 16 connections (goal 1.3×)": True,
        "`serve --workers 2` throughput (w2) ≥ 1.8× one worker (b)": True,
        "soak RSS flat (±10 %) over 60 s at 50,000 identities": True,
    }
    out["summary"] = summary
    section = report.page_section(out)
    assert (
        "- met — L1 hit throughput (b) ≥ 1.4× (a): 1.65× (13,200 vs 8,000 req/s; per round "
        "1.60, 1.70; servers 99 % and 99 % of a core)." in section
    )
    assert (
        "- met — miss CPU per miss (c) ≤ 1.5× (ps) at 16 connections (goal 1.3×): 1.40× (560 vs "
        "400 µs); goal not met." in section
    )
    assert "500 bytes per cached identity" in section
    assert "commit `abc1234`" in section
    assert (
        "| b | gateway L1 hit: one identity | 64 | 13,200 | 5.50 | 11.00 | 68 | 70.0 |" in section
    )


def test_a_redis_hit_run_the_local_cache_answered_is_inconclusive_not_met() -> None:
    out = results()
    for r in out["hit_path"]["rounds"]:
        if r["scenario"] == "rh":
            r["redis_commands_total_per_req"] = 0.2  # the L1 held the identities: no Redis hit
    targets = {t["target"]: t for t in report.summarise(out)["targets"]}

    redis_hit = targets["Redis hit CPU per request (rh) ≤ 1.15× (a)"]
    assert redis_hit["met"] is None
    assert redis_hit["value"].endswith("not every request was a hit that reached Redis")


def test_the_section_replaces_only_what_is_between_the_markers() -> None:
    page = "# Title\n\nkept\n\n<!-- bench:begin -->\nold run\n<!-- bench:end -->\n\nalso kept\n"

    assert report.replace_section(page, "new run\n") == (
        "# Title\n\nkept\n\n<!-- bench:begin -->\nnew run\n<!-- bench:end -->\n\nalso kept\n"
    )
    with pytest.raises(ValueError, match="bench:begin"):
        report.replace_section("# no markers\n", "new run\n")


def test_a_journal_row_goes_under_the_last_one() -> None:
    out = results()
    out["summary"] = report.summarise(out)
    page = "| label |\n|---|\n| before |\n<!-- bench:journal:end -->\nrest\n"

    assert report.append_journal(page, report.journal_row(out)) == (
        "| label |\n|---|\n| before |\n| after | 2026-05-28 | `abc1234` | 0.66× | 1.65× | 0.37× "
        "| 1.12× | 1.40× | 1.82× | 2.0 % | 500 B |\n<!-- bench:journal:end -->\nrest\n"
    )


def test_the_request_line_s_cost_is_the_difference_of_the_runs_with_and_without_it() -> None:
    out = results()
    out["summary"] = report.summarise(out)
    section = report.page_section(out)
    assert (
        "- The canonical request line: (b) − (bq) = 10 µs of CPU per request (14 % of the L1 hit; "
        "per round 10, 9 µs)." in section
    )
    assert "(bq) 58 µs per request against 45 µs for (hello), 0.75× its throughput." in section
    without = results()
    without["hit_path"]["rounds"] = [
        r for r in without["hit_path"]["rounds"] if r["scenario"] != "bq"
    ]
    without["summary"] = report.summarise(without)
    assert "Measured costs" not in report.page_section(without)
