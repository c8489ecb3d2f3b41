"""The Grafana dashboard and the Prometheus alert rules in deploy/, checked against promtool and against the
metrics a real gateway exposes.

With promtool (Debian package `prometheus`): the rules pass `promtool check rules`, their unit tests
(`alerts_test.yaml`) pass `promtool test rules`, every dashboard query is valid PromQL, and a live
gateway's /metrics passes `promtool check metrics`. Without any tool: the PrometheusRule and the plain
rule file hold the same groups, every alert is labelled, annotated and unit-tested both ways, the
dashboard is well formed, and every metric, label and label value the queries name is one the gateway
really exposes (scraped from a gateway that served hits, misses, bypasses, stale serves and failures).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.catalogue import ERROR_CATALOGUE
from gateway.metrics import (
    CACHE_RESULTS,
    REQUEST_OUTCOMES,
    RETRY_DENIAL_REASONS,
    STORE_ERROR_REASONS,
    STORE_OPERATIONS,
    VENDOR_CALL_OUTCOMES,
    Metrics,
)
from gateway.sandbox.faults import HttpStatus

# keys, start_gateway and vendors are the API tests' fixtures (a real gateway over HTTP, the vendor
# sandbox, real Redis), imported so that pytest finds them here too; each parameter that takes one by
# name carries a noqa for the shadowing.
from tests.api.conftest import (  # noqa: F401 - fixtures, used by name
    APIS,
    INPUTS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    keys,
    start_gateway,
    vendors,
)
from tests.deploy import REPO, promtool
from tests.helpers import ShiftedClock, eventually

PROMETHEUS = REPO / "deploy" / "prometheus"
PROMETHEUS_RULE = PROMETHEUS / "alerts.yaml"
RULES = PROMETHEUS / "rules.yaml"
RULE_TESTS = PROMETHEUS / "alerts_test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "auth-gateway.json"

SEVERITIES = {"critical", "warning"}
# Labels Prometheus adds to every series when it scrapes a pod (not written by the gateway).
TARGET_LABELS = {"namespace", "job", "instance", "pod", "service", "container", "endpoint"}
# What Grafana puts in place of its variables, to make a dashboard query plain PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$provider": ".*"}

METRIC_NAME = re.compile(r"(?<![\w:])gateway_[a-z_]+")
RECORDED_NAME = re.compile(r"(?<![\w:])gateway:[a-z0-9_:]+")
SELECTOR = re.compile(r"(?<![\w:])(gateway_[a-z_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")

Doc = dict[str, Any]


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120
    )


# --- the rule files -----------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_groups() -> list[Doc]:
    groups: list[Doc] = load_yaml(RULES)["groups"]
    return groups


def rules() -> list[Doc]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[Doc]:
    return [rule for rule in rules() if "alert" in rule]


def alert_expressions() -> list[str]:
    return [rule["expr"] for rule in rules()]


def test_prometheus_rule_and_plain_rule_file_hold_the_same_groups() -> None:
    """alerts.yaml (the PrometheusRule) and rules.yaml (for promtool and plain Prometheus) have identical groups."""
    manifest = load_yaml(PROMETHEUS_RULE)
    assert (manifest["apiVersion"], manifest["kind"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    )
    assert manifest["metadata"]["name"] == "auth-gateway"
    assert manifest["spec"]["groups"] == rule_groups(), (
        "rules.yaml differs from alerts.yaml: regenerate its body with "
        "sed -n '/^  groups:$/,$ s/^  //p' deploy/prometheus/alerts.yaml"
    )


def test_rules_pass_promtool_check() -> None:
    """`promtool check rules` accepts the rule file (valid PromQL, names, durations and templates)."""
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    """`promtool test rules` runs alerts_test.yaml and every case passes."""
    result = run_promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_stays_silent() -> None:
    """alerts_test.yaml expects each alert to fire in some case and to stay silent in another."""
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert sorted(names - fires) == [], "alerts never expected to fire"
    assert sorted(names - silent) == [], "alerts never expected to stay silent"
    assert sorted((fires | silent) - names) == [], "tests of alerts that do not exist"


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook() -> None:
    """Each alert routes by severity (critical pages, warning tickets) and says what broke and where to look."""
    assert alerts(), "no alert rules found"
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        # Where each link lands is checked against the built docs site (tests/docs/test_site.py).
        assert re.fullmatch(r"https://\S+/operations/#[a-z0-9-]+", annotations["runbook_url"]), name


def test_alerts_use_only_recording_rules_that_are_defined() -> None:
    """Every `gateway:` series an expression reads is recorded by a rule in the same file."""
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {name for expr in alert_expressions() for name in RECORDED_NAME.findall(expr)}
    assert used, "the burn-rate alerts should read the recorded error ratios"
    assert sorted(used - recorded) == []


# --- the dashboard ------------------------------------------------------------------------------------


def dashboard() -> Doc:
    loaded: Doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def data_panels(board: Doc) -> list[Doc]:
    """Every panel that shows data (rows only group panels; a collapsed row holds its own)."""
    found: list[Doc] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def dashboard_expressions(board: Doc) -> list[str]:
    return [target["expr"] for panel in data_panels(board) for target in panel["targets"]]


def template_variables(board: Doc) -> dict[str, Doc]:
    return {variable["name"]: variable for variable in board["templating"]["list"]}


def variable_query(variable: Doc) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else str(query)


def test_dashboard_parses_and_every_panel_queries_the_chosen_datasource() -> None:
    """The dashboard JSON parses; each data panel and each of its targets uses ${datasource} and has a query."""
    board = dashboard()
    assert board["uid"] and board["title"]
    assert board["schemaVersion"] >= 36
    panels = data_panels(board)
    assert len(panels) >= 10
    for panel in panels:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], title


def test_dashboard_layout_has_unique_ids_and_no_overlapping_panels() -> None:
    """Panel ids are unique and no two panels cover the same cell of Grafana's 24-column grid."""
    board = dashboard()
    everything = board["panels"] + [p for row in board["panels"] for p in row.get("panels", [])]
    ids = [panel["id"] for panel in everything]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in everything:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_dashboard_offers_a_datasource_and_a_provider_choice() -> None:
    """${datasource} picks any Prometheus and $provider lists the providers gateway_requests_total has seen."""
    variables = template_variables(dashboard())
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    provider = variables["provider"]
    assert re.fullmatch(
        r"label_values\(gateway_requests_total(\{[^}]*\})?, provider\)", variable_query(provider)
    )
    assert provider["multi"] and provider["includeAll"] and provider["allValue"] == ".*"


def test_every_dashboard_query_filters_by_the_chosen_provider_where_it_can() -> None:
    """Each selector of a metric with a provider label narrows to $provider, so the variable is honoured."""
    with_provider = {name for name, labels in declared_labels().items() if "provider" in labels}
    unfiltered = [
        f"{name}{{{matchers}}}"
        for expr in dashboard_expressions(dashboard())
        for name, matchers in SELECTOR.findall(expr)
        if family_of(name) in with_provider and 'provider=~"$provider"' not in matchers
    ]
    assert unfiltered == []


def test_dashboard_queries_are_valid_promql() -> None:
    """Every dashboard query, with Grafana's variables filled in, passes promtool's PromQL parser."""
    exprs = dashboard_expressions(dashboard())
    for placeholder, value in GRAFANA_VARIABLES.items():
        exprs = [expr.replace(placeholder, value) for expr in exprs]
    leftover = sorted({m for expr in exprs for m in re.findall(r"\$\w+", expr)})
    assert leftover == [], "variables this test does not know how to fill in"
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(exprs)
                ],
            }
        ]
    }
    result = run_promtool("check", "rules", "/dev/stdin", stdin=yaml.safe_dump(as_rules))
    assert result.returncode == 0, result.stdout + result.stderr


# --- against a live gateway ---------------------------------------------------------------------------


async def post_login(
    gateway: TestClient[Any, Any],
    key: str,
    provider: str = WECHAT,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    response = await gateway.post(
        f"/auth/{provider}",
        json=INPUTS[provider] if body is None else body,
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
    )
    await response.read()
    return response.status


async def scrape(gateway: TestClient[Any, Any]) -> str:
    response = await gateway.get("/metrics")
    assert response.status == 200
    return await response.text()


def wechat_user(open_id: str) -> dict[str, str]:
    return {**INPUTS[WECHAT], "wx_open_id": open_id}


@pytest.fixture
async def busy_gateway_metrics(
    start_gateway: StartGateway,  # noqa: F811 - the fixture imported above
    keys: Keys,  # noqa: F811 - the fixture imported above
    vendors: Vendors,  # noqa: F811 - the fixture imported above
) -> str:
    """/metrics of a gateway that has answered 2xx, 4xx and 5xx and seen hits, misses, bypasses, a
    refresh ahead, a stale serve and vendor failures, on a TOP and a Tencent provider."""
    # Fresh until 90 s; the refresh window starts between 70 and 80 s.
    vendors.state.token_ttl_s = 100
    clock = ShiftedClock()
    gateway = await start_gateway(clock=clock)
    assert (await gateway.get("/readyz")).status == 200
    key = keys.full
    assert await post_login(gateway, key, body=wechat_user("o-renewed")) == 200  # miss
    assert await post_login(gateway, key, body=wechat_user("o-goes-stale")) == 200  # miss
    assert await post_login(gateway, key, MINI_APP) == 200  # miss, TOP
    assert await post_login(gateway, key, body=wechat_user("o-renewed")) == 200  # hit
    no_cache = {"Cache-Control": "no-cache"}
    assert await post_login(gateway, key, body=wechat_user("o-bypass"), headers=no_cache) == 200
    assert await post_login(gateway, key, body={"nick_name": "no open id"}) == 400
    assert await post_login(gateway, keys.wechat_only, MINI_APP) == 403
    issued = len(vendors.state.issued_tokens)
    clock.offset = 85
    assert await post_login(gateway, key, body=wechat_user("o-renewed")) == 200  # refresh ahead
    await eventually(lambda: len(vendors.state.issued_tokens) == issued + 1)
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    clock.offset = 95
    assert await post_login(gateway, key, body=wechat_user("o-goes-stale")) == 200  # stale
    clock.offset = 101
    assert await post_login(gateway, key, body=wechat_user("o-goes-stale")) == 502
    return await scrape(gateway)


def families(exposition: str) -> dict[str, str]:
    """Metric family name -> type, from the exposition's `# TYPE` lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, flags=re.MULTILINE))


def sample_labels(exposition: str) -> dict[str, list[dict[str, str]]]:
    """Sample name -> the label sets of its samples."""
    found: dict[str, list[dict[str, str]]] = {}
    for line in exposition.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            found.setdefault(match.group(1), []).append(labels)
    return found


def family_of(name: str) -> str:
    """The family a series name belongs to (a histogram's _bucket/_sum/_count series to the histogram)."""
    for suffix in HISTOGRAM_SERIES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def declared_labels() -> dict[str, set[str]]:
    """Family name (as exposed) -> the label names gateway/metrics.py declares for it."""
    metrics = Metrics()
    declared: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        describe = getattr(collector, "describe", None)
        if describe is None:
            continue
        for family in describe():
            name = f"{family.name}_total" if family.type == "counter" else family.name
            declared[name] = set(getattr(collector, "_labelnames", ()))
    declared["gateway_build_info"] = {"version"}
    return declared


def referenced_names() -> Iterator[tuple[str, str]]:
    """(where, metric name) for every gateway_ metric named by an alert, a dashboard query or variable."""
    for rule in rules():
        for name in METRIC_NAME.findall(rule["expr"]):
            yield rule.get("alert") or rule["record"], name
    board = dashboard()
    for panel in data_panels(board):
        for target in panel["targets"]:
            for name in METRIC_NAME.findall(target["expr"]):
                yield panel["title"], name
    for variable in template_variables(board).values():
        if variable["type"] == "query":
            for name in METRIC_NAME.findall(variable_query(variable)):
                yield f"${variable['name']}", name


def all_selectors() -> list[tuple[str, str]]:
    exprs = alert_expressions() + dashboard_expressions(dashboard())
    return [match for expr in exprs for match in SELECTOR.findall(expr)]


@pytest.mark.redis
def test_every_label_value_a_busy_gateway_produced_is_one_it_initialises(
    busy_gateway_metrics: str,
) -> None:
    """Outcomes, results, reasons and operations seen after hits, misses, bypasses, a refresh, a stale
    serve, 4xx and 5xx are all in the sets gateway/metrics.py makes at 0 from the start."""
    known = {
        ("gateway_requests_total", "outcome"): set(REQUEST_OUTCOMES),
        ("gateway_vendor_calls_total", "outcome"): set(VENDOR_CALL_OUTCOMES),
        ("gateway_cache_lookups_total", "result"): set(CACHE_RESULTS),
        ("gateway_vendor_retries_denied_total", "reason"): set(RETRY_DENIAL_REASONS),
        ("gateway_store_errors_total", "operation"): set(STORE_OPERATIONS),
        ("gateway_store_errors_total", "reason"): set(STORE_ERROR_REASONS),
    }
    live = sample_labels(busy_gateway_metrics)
    unknown = [
        f"{name}{{{label}={labels[label]!r}}}"
        for (name, label), values in known.items()
        for labels in live.get(name, [])
        if labels[label] not in values
    ]
    assert live.get("gateway_requests_total"), "no request series to judge"
    assert unknown == []
    statuses = {
        (labels["outcome"], labels["status_class"]) for labels in live["gateway_requests_total"]
    }
    assert sorted(statuses - set(REQUEST_OUTCOMES.items())) == []


@pytest.mark.redis
def test_live_metrics_pass_promtool_check_metrics(busy_gateway_metrics: str) -> None:
    """A busy gateway's /metrics passes `promtool check metrics` with no problem reported."""
    assert "gateway_requests_total{" in busy_gateway_metrics
    result = run_promtool("check", "metrics", stdin=busy_gateway_metrics)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.redis
def test_every_metric_the_dashboard_and_alerts_read_is_exposed(busy_gateway_metrics: str) -> None:
    """Each gateway_ name in an alert, recording rule or dashboard query is a series a live gateway exposes:
    a counter by its _total name, a histogram only through _bucket, _sum or _count."""
    exposed = families(busy_gateway_metrics)
    unknown = []
    for where, name in referenced_names():
        if name in exposed and exposed[name] != "histogram":
            continue
        if name != family_of(name) and exposed.get(family_of(name)) == "histogram":
            continue
        unknown.append(f"{where}: {name}")
    assert sorted(set(unknown)) == []


@pytest.mark.redis
def test_every_label_the_queries_match_on_is_one_the_metric_carries(
    busy_gateway_metrics: str,
) -> None:
    """Each label a selector matches on is declared for that metric (or added by the scrape), and the
    result and status_class values it names are ones the live gateway produced."""
    declared = declared_labels()
    live = sample_labels(busy_gateway_metrics)
    problems = []
    for name, matchers in all_selectors():
        allowed = declared.get(family_of(name), set()) | TARGET_LABELS
        if name.endswith("_bucket"):
            allowed |= {"le"}
        for label, op, value in MATCHER.findall(matchers):
            if label not in allowed:
                problems.append(f"{name}: no label {label!r}")
            elif label in ("result", "status_class") and not value.startswith("$"):
                seen = {labels.get(label) for labels in live.get(name, [])}
                wanted = set(value.split("|")) if op in ("=~", "!~") else {value}
                problems += [f"{name}: {label}={v!r} never produced" for v in wanted - seen]
    assert problems == []


def test_every_outcome_the_queries_name_is_a_documented_problem_code() -> None:
    """Each `outcome` value an alert or panel names is `ok` or a problem code of the error catalogue."""
    codes = {entry.code for entry in ERROR_CATALOGUE}
    named = {
        value
        for _, matchers in all_selectors()
        for label, _, values in MATCHER.findall(matchers)
        if label == "outcome"
        for value in values.split("|")
    }
    assert named, "the vendor failure ratio should name the outcomes it leaves out"
    assert sorted(named - codes - {"ok"}) == []


@pytest.mark.redis
async def test_a_stale_serve_is_also_counted_as_a_miss(
    start_gateway: StartGateway,  # noqa: F811 - the fixture imported above
    keys: Keys,  # noqa: F811 - the fixture imported above
    vendors: Vendors,  # noqa: F811 - the fixture imported above
) -> None:
    """A stale serve adds one miss and one stale lookup and no hit, which is why the hit ratio the dashboard
    and the collapse alert compute is hit / (hit + miss), with stale left out of the denominator."""
    vendors.state.token_ttl_s = 100
    clock = ShiftedClock()
    gateway = await start_gateway(clock=clock)
    assert await post_login(gateway, keys.full) == 200
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    clock.offset = 95
    before = lookups(await scrape(gateway))
    assert await post_login(gateway, keys.full) == 200
    after = lookups(await scrape(gateway))
    assert {r: after.get(r, 0) - before.get(r, 0) for r in ("hit", "miss", "stale")} == {
        "hit": 0,
        "miss": 1,
        "stale": 1,
    }


def lookups(exposition: str) -> dict[str, float]:
    found = re.findall(
        rf'^gateway_cache_lookups_total\{{provider="{WECHAT}",result="(\w+)"\}} (\S+)$',
        exposition,
        flags=re.MULTILINE,
    )
    return {result: float(value) for result, value in found}


@pytest.mark.redis
async def test_a_healthy_gateway_reports_its_store_up(
    start_gateway: StartGateway,  # noqa: F811 - the fixture imported above
) -> None:
    """After /readyz found Redis answering, gateway_store_up reads 1 (else GatewayStoreDown would fire)."""
    gateway = await start_gateway()
    readiness = await gateway.get("/readyz")
    assert (await readiness.json())["store"] == "up"
    assert re.search(r"^gateway_store_up 1\.0$", await scrape(gateway), flags=re.MULTILINE)
