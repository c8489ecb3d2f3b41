"""W3C trace context through a live gateway: the caller's trace continues in the log line, the problem
document and the exported spans (OpenTelemetry's in-memory exporter), and without OTEL_* nothing of
OpenTelemetry is imported."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.app import create_app
from gateway.logging import configure_logging
from gateway.sandbox.faults import HttpStatus
from gateway.tracing import parent_of
from gateway.tracing_otel import OtelTracer
from tests.api.conftest import APIS, INPUTS, WECHAT, Keys, Vendors, gateway_settings

pytestmark = pytest.mark.redis

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def exported() -> Iterator[tuple[OtelTracer, InMemorySpanExporter]]:
    """A tracer exporting to memory, as the `otel` extra would to an OTLP collector."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OtelTracer(provider), exporter
    provider.shutdown()


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """The JSON log lines written since the last call of the returned function."""
    configure_logging("info", json=True)

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out.splitlines()
        return [orjson.loads(line) for line in out if line.startswith("{")]

    try:
        yield read
    finally:
        structlog.reset_defaults()


async def traced_gateway(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, prefix: str, tracer: Any
) -> TestClient:
    settings = gateway_settings(vendors, keys, redis_url, prefix)
    client: TestClient = await aiohttp_client(create_app(settings, tracer=tracer))
    return client


async def test_a_callers_trace_continues_in_the_log_line_and_in_the_spans(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    exported: tuple[OtelTracer, InMemorySpanExporter],
    log_lines: Any,
) -> None:
    """A login with a traceparent: the canonical log line carries its trace id and the server span's
    id; the server span is a child of the caller's span, the vendor call a client span under it, and
    the store calls are events on the server span."""
    tracer, exporter = exported
    gateway = await traced_gateway(aiohttp_client, vendors, keys, redis_url, key_prefix, tracer)
    log_lines()
    response = await gateway.post(
        f"/auth/{WECHAT}",
        json=INPUTS[WECHAT],
        headers={"Authorization": f"Bearer {keys.full}", "traceparent": TRACEPARENT},
    )
    assert response.status == 200
    [line] = [entry for entry in log_lines() if entry.get("event") == "request"]
    spans = {span.kind: span for span in exporter.get_finished_spans()}
    server, client = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert line["trace_id"] == TRACE_ID == f"{server.context.trace_id:032x}"
    assert line["span_id"] == f"{server.context.span_id:016x}" != CALLER_SPAN
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN
    assert server.name == "POST /auth/{provider}"
    assert server.attributes["http.response.status_code"] == 200
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    assert client.attributes["gateway.provider"] == WECHAT
    operations = [event.attributes["store.operation"] for event in server.events]
    assert "read" in operations and "write" in operations, operations
    # Nothing of the trace went to the vendor: it is a third party.
    assert "traceparent" not in {name.lower() for name in vendors.state.requests[-1].headers}


async def test_each_vendor_attempt_is_its_own_client_span_and_a_failure_marks_it(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    exported: tuple[OtelTracer, InMemorySpanExporter],
) -> None:
    """A transient 502 then a success: two client spans, the first with an error status naming the
    failure, the second ok."""
    tracer, exporter = exported
    gateway = await traced_gateway(aiohttp_client, vendors, keys, redis_url, key_prefix, tracer)
    vendors.state.inject(APIS[WECHAT], HttpStatus(502))
    response = await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    assert response.status == 200
    clients = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [_status(s) for s in clients] == [
        (StatusCode.ERROR, "vendor_http_error"),
        (StatusCode.UNSET, None),
    ]


async def test_a_problem_names_the_span_and_a_request_without_trace_starts_one(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    exported: tuple[OtelTracer, InMemorySpanExporter],
    log_lines: Any,
) -> None:
    """Without a traceparent (or with a malformed one) the gateway starts a trace: the 401 problem's
    instance and the log line name the new trace and span, and the exported server span is a root."""
    tracer, exporter = exported
    gateway = await traced_gateway(aiohttp_client, vendors, keys, redis_url, key_prefix, tracer)
    for traceparent in (None, "00-not-a-trace-01", f"00-{'0' * 32}-{CALLER_SPAN}-01"):
        log_lines()
        headers = {"traceparent": traceparent} if traceparent else {}
        response = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=headers)
        problem = await response.json()
        [line] = [entry for entry in log_lines() if entry.get("event") == "request"]
        assert response.status == 401
        assert problem["instance"] == f"urn:trace:{line['trace_id']}:{line['span_id']}"
        assert re.fullmatch("[0-9a-f]{32}", line["trace_id"]) and line["trace_id"] != "0" * 32
        [server] = exporter.get_finished_spans()
        assert server.parent is None and f"{server.context.trace_id:032x}" == line["trace_id"]
        exporter.clear()


def test_traceparent_parsing_follows_the_w3c_rules() -> None:
    """Valid headers give (trace id, parent id, flags); forbidden or malformed ones start a trace."""
    assert parent_of(TRACEPARENT) == (TRACE_ID, CALLER_SPAN, "01")
    assert parent_of(f"01-{TRACE_ID}-{CALLER_SPAN}-01-future") == (TRACE_ID, CALLER_SPAN, "01")
    for bad in (
        None,
        "",
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",  # version ff is forbidden
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",  # version 00 has four fields
        f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01",  # lower-case hex only
        f"00-{TRACE_ID}-{'0' * 16}-01",
    ):
        assert parent_of(bad) is None, bad


@pytest.mark.parametrize(
    ("environment", "imported"),
    [
        ({}, False),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
            False,
        ),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, True),
    ],
)
def test_the_exporter_is_loaded_only_when_otel_variables_ask_for_export(
    environment: dict[str, str], imported: bool
) -> None:
    """Building the app loads the gateway's OpenTelemetry exporter (and the SDK's span processors)
    only when OTEL_* asks for export. (redis-py imports parts of OpenTelemetry's API on its own when
    it is installed; without the extra nothing of it is there to import.)"""
    probe = (
        "import sys\n"
        "from gateway.app import create_app\n"
        "from gateway.settings import Settings\n"
        "create_app(Settings(redis_url='memory://'))\n"
        "loaded = {'gateway.tracing_otel', 'opentelemetry.sdk.trace.export'} & set(sys.modules)\n"
        "print(bool(loaded))\n"
    )
    env = {"PATH": "/usr/bin:/bin", **environment}
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert answer.stdout.split() == [str(imported)]


def test_without_the_extra_a_request_for_export_is_a_warning_not_a_failure() -> None:
    """OTEL_* asking for export with OpenTelemetry not installed: the app starts, says so, and
    answers with trace ids as usual (nothing exported)."""
    probe = (
        "import asyncio, sys\n"
        "class NoOtel:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry' or name.startswith('opentelemetry.'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoOtel())\n"
        "from aiohttp.test_utils import TestClient, TestServer\n"
        "from gateway.app import create_app\n"
        "from gateway.logging import configure_logging\n"
        "from gateway.settings import Settings\n"
        "configure_logging('info', json=True)\n"
        "async def main():\n"
        "    client = TestClient(TestServer(create_app(Settings(redis_url='memory://'))))\n"
        "    await client.start_server()\n"
        "    response = await client.post('/auth/x', json={})\n"
        "    print(response.status, (await response.json())['instance'][:10])\n"
        "    await client.close()\n"
        "asyncio.run(main())\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    lines = answer.stdout.splitlines()
    assert lines[-1] == "401 urn:trace:"
    events = [orjson.loads(line) for line in lines if line.startswith("{")]
    [warning] = [event for event in events if event["event"] == "tracing_unavailable"]
    assert "auth-gateway[otel]" in warning["reason"]


def _status(span: ReadableSpan) -> tuple[StatusCode, str | None]:
    return span.status.status_code, span.status.description
