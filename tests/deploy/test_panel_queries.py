"""Every shipped dashboard query and alert rule answers with at least one series on a fresh gateway.

A gateway is started the way `serve` starts it (`start_listeners`, real HTTP on loopback, real Redis,
the vendor sandbox), scraped once when it is ready and once after a little ordinary traffic (a miss and
a hit per provider, a bad body, an unknown key). The two scrapes become promtool input series — the
first one held for ten minutes, the second for five — and promtool 2.42 evaluates, at the end:

- each target of each panel of deploy/grafana/*.json (Grafana's variables filled in) and each
  template-variable query: `absent(q)` must not fire (q has a series), and neither may
  `absent((q) >= -Inf)` (q has a number, not only NaN: Grafana draws NaN as "No data" too);
- each recording rule of rules.yaml, by its recorded name, the same two ways;
- each alert rule's condition with `bool` after every comparison, so that it answers 0 or 1 for
  every series it judges instead of dropping the healthy ones: it must have a series.

A control rule over a metric that does not exist must fire in the same run, so a harness that
silently evaluated nothing would fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.listeners import start_listeners
from gateway.app import create_app
from tests.api.conftest import (  # noqa: F401 - fixtures, used by name
    INPUTS,
    Keys,
    Vendors,
    gateway_settings,
    keys,
    vendors,
)
from tests.deploy import REPO
from tests.deploy.test_monitoring import GRAFANA_VARIABLES, run_promtool

pytestmark = pytest.mark.redis

DASHBOARDS = sorted((REPO / "deploy" / "grafana").glob("*.json"))
RULES = REPO / "deploy" / "prometheus" / "rules.yaml"
# What Prometheus adds to every series it scrapes from the pod.
TARGET = {
    "namespace": "auth-gateway",
    "job": "auth-gateway",
    "instance": "10.0.0.7:8080",
    "pod": "auth-gateway-0",
}
FRESH_MINUTES, BUSY_MINUTES = 10, 5  # how long each scrape is held, one sample a minute
EVAL_AT = f"{FRESH_MINUTES + 3}m"  # every window (5m, 10m, 1h, 6h) then sees both scrapes
CONTROL = "Control_absent_metric_must_fire"
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)")


@dataclass(frozen=True)
class Scrapes:
    fresh: str
    busy: str


@pytest_asyncio.fixture
async def scrapes(
    vendors: Vendors,  # noqa: F811 - the fixture imported above
    keys: Keys,  # noqa: F811 - the fixture imported above
    redis_url: str,
    key_prefix: str,
) -> AsyncIterator[Scrapes]:
    """/metrics of a gateway just ready, and after one miss and one hit per provider and two 4xx."""
    settings = gateway_settings(vendors, keys, redis_url, key_prefix).model_copy(
        update={"port": 0, "shutdown_timeout_s": 2.0}
    )
    listeners = await start_listeners(create_app(settings), settings)
    base = f"http://127.0.0.1:{listeners.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as ready:
                assert ready.status == 200
            fresh = await scrape(http, base)
            auth = {"Authorization": f"Bearer {keys.full}"}
            for provider, body in INPUTS.items():
                for _ in range(2):  # a miss, then a hit
                    async with http.post(f"{base}/auth/{provider}", json=body, headers=auth) as r:
                        assert r.status == 200, await r.text()
            async with http.post(f"{base}/auth/{provider}", json={}, headers=auth) as r:
                assert r.status == 400
            async with http.post(f"{base}/auth/{provider}", json=body) as r:
                assert r.status == 401
            yield Scrapes(fresh, await scrape(http, base))
    finally:
        await listeners.close()


async def scrape(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        return await response.text()


def samples(exposition: str) -> dict[str, float]:
    """Series (as a promtool series selector, with the target's labels) -> value."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = {**TARGET, **sample.labels}
            inner = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))
            found[f"{sample.name}{{{inner}}}"] = sample.value
    return found


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def input_series(scrapes: Scrapes) -> list[dict[str, str]]:
    """Both scrapes as promtool series: the fresh value for FRESH_MINUTES, then the busy one (a series
    the fresh gateway did not have yet is missing, `_`, until the traffic made it)."""
    fresh, busy = samples(scrapes.fresh), samples(scrapes.busy)
    series = []
    for name in sorted(fresh.keys() | busy.keys()):
        before = f"{fresh[name]}+0x{FRESH_MINUTES - 1}" if name in fresh else f"_x{FRESH_MINUTES}"
        after = f"{busy[name]}+0x{BUSY_MINUTES - 1}" if name in busy else f"_x{BUSY_MINUTES}"
        series.append({"series": name, "values": f"{before} {after}"})
    return series


# --- what is evaluated ---------------------------------------------------------------------------


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for each panel target and query variable of every shipped dashboard."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        panels = [p for top in board["panels"] for p in [top, *top.get("panels", [])]]
        for panel in panels:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']} ({target['refId']})", target["expr"]
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                query = variable["query"]
                text = query["query"] if isinstance(query, dict) else str(query)
                yield f"{path.name}: ${variable['name']}", label_values_as_promql(text)


def label_values_as_promql(query: str) -> str:
    """Grafana's `label_values(selector, label)` as the PromQL that has a series per value."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip(), flags=re.DOTALL)
    assert match, f"a variable query this test cannot read: {query}"
    return f"count by ({match.group(2)}) ({match.group(1)})"


def filled_in(expr: str) -> str:
    for placeholder, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(placeholder, value)
    assert not re.search(r"\$\w+", expr), f"a Grafana variable this test cannot fill in: {expr}"
    return expr


def with_bool(expr: str) -> str:
    """`expr` with `bool` after each comparison outside label matchers and strings, so it keeps
    every series it compares (as 0 or 1) instead of only those that pass."""
    out, depth, quoted, i = [], 0, False, 0
    while i < len(expr):
        char = expr[i]
        if quoted:
            out.append(char)
            if char == "\\":
                out.append(expr[i + 1])
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            out.append(char)
        elif char in "{}":
            depth += 1 if char == "{" else -1
            out.append(char)
        elif depth == 0 and (match := COMPARISON.match(expr, i)):
            out.append(f"{match.group(1)} bool")
            i += len(match.group(1))
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def shipped_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def checks() -> dict[str, tuple[str, str]]:
    """Generated alert name -> (what it checks, its `absent(...)` expression)."""
    wanted: list[tuple[str, str, bool]] = []  # (where, query, must have a number)
    wanted += [(where, filled_in(expr), True) for where, expr in dashboard_queries()]
    for rule in shipped_rules():
        if "record" in rule:
            wanted.append((f"recording rule {rule['record']}", rule["record"], True))
        else:
            wanted.append((f"alert {rule['alert']}", with_bool(rule["expr"]), False))
    found = {}
    for n, (where, query, numeric) in enumerate(wanted):
        found[f"NoSeries_{n}"] = (f"{where}: no series", f"absent({query})")
        if numeric:
            found[f"NoNumber_{n}"] = (f"{where}: only NaN", f"absent(({query}) >= -Inf)")
    return found


def test_with_bool_leaves_matchers_and_strings_alone() -> None:
    """The rewrite adds `bool` to comparisons only, never inside `{...}` matchers or quoted values."""
    expr = 'max by (p) (x{a!="1", b=~">2"}) == 2 and y{c="<"} > (6 * (1 - 0.995))'
    assert with_bool(expr) == (
        'max by (p) (x{a!="1", b=~">2"}) == bool 2 and y{c="<"} > bool (6 * (1 - 0.995))'
    )


def test_every_dashboard_and_every_rule_is_evaluated() -> None:
    """The harness reads the shipped files: every panel target, variable and rule becomes a check."""
    targets = sum(1 for _ in dashboard_queries())
    assert DASHBOARDS and targets >= 27
    assert len(checks()) >= 2 * targets + len(shipped_rules())


def test_every_panel_query_and_rule_has_a_series_on_a_fresh_gateway(
    scrapes: Scrapes, tmp_path: Path
) -> None:
    """After a little traffic, promtool finds a series (with a number, for queries and recorded
    rules) for every dashboard query, variable, recording rule and alert condition."""
    generated = checks()
    rule_file = tmp_path / "queries.yaml"
    rules: list[dict[str, Any]] = [
        {"record": rule["record"], "expr": rule["expr"]}
        for rule in shipped_rules()
        if "record" in rule
    ]
    rules += [{"alert": name, "expr": expr} for name, (_, expr) in generated.items()]
    rules.append({"alert": CONTROL, "expr": "absent(gateway_no_such_metric_total)"})
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    case: dict[str, Any] = {
        "name": "a fresh gateway after a little traffic",
        "interval": "1m",
        "input_series": input_series(scrapes),
        "alert_rule_test": [
            {"eval_time": EVAL_AT, "alertname": name, "exp_alerts": []} for name in generated
        ]
        + [{"eval_time": EVAL_AT, "alertname": CONTROL, "exp_alerts": [{"exp_labels": {}}]}],
    }
    test_file = tmp_path / "queries_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": [case]}
        )
    )
    result = run_promtool("test", "rules", str(test_file))
    output = result.stdout + result.stderr
    failed = sorted(set(re.findall(r"alertname: ?(\w+)", output)))
    assert CONTROL not in failed, "the control check did not fire: nothing was evaluated\n" + output
    missing = [generated[name][0] for name in failed if name in generated]
    assert not missing, "queries without an answer:\n" + "\n".join(missing)
    assert result.returncode == 0, output


def test_traffic_adds_no_series_the_fresh_gateway_lacked(scrapes: Scrapes) -> None:
    """Every series the traffic touched was already exposed, at 0, by the gateway just started."""
    assert sorted(samples(scrapes.busy).keys() - samples(scrapes.fresh).keys()) == []
