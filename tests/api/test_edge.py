"""The HTTP edge against slow, broken and hostile clients: header and body timeouts, the connection
cap, parser errors that echo and log nothing of the request, and bodies that cannot be decoded.

Every test talks to the real listener (`gateway.api.listeners.start_listeners`, what `serve` runs) on a
loopback port, mostly over raw sockets, because aiohttp's TestServer is not that listener and an HTTP
client would not send these bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import signal
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
import structlog

from gateway.api.keys import METRICS
from gateway.api.listeners import EdgeLimits, Listeners, start_listeners
from gateway.app import create_app
from gateway.logging import configure_logging
from gateway.metrics import Metrics
from gateway.settings import Settings
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors, closed_port, gateway_settings
from tests.api.test_lifecycle import serve, wait_ready, write_config
from tests.api.test_no_leaks import forget_cached_loggers

pytestmark = pytest.mark.redis
PROBLEM = "application/problem+json"
LOGIN = f"/auth/{WECHAT}"


@dataclass
class Edge:
    """A gateway on its real listener, and the registry its /metrics shows."""

    listeners: Listeners
    metrics: Metrics
    settings: Settings

    @property
    def port(self) -> int:
        return self.listeners.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"listener": "service", **labels})
        return 0.0 if value is None else value


StartEdge = Callable[..., Awaitable[Edge]]


@pytest_asyncio.fixture
async def start_edge(
    vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> AsyncIterator[StartEdge]:
    """Start gateways the way `serve` does (start_listeners) on free loopback ports; closed at the end."""
    started: list[Listeners] = []

    async def start(*, quiet_s: float = 10.0, **settings: Any) -> Edge:
        config = gateway_settings(vendors, keys, redis_url, key_prefix).model_copy(
            update={"port": 0, "shutdown_timeout_s": 2.0, **settings}
        )
        app = create_app(config)
        limits = replace(EdgeLimits.from_settings(config), quiet_s=quiet_s)
        listeners = await start_listeners(app, config, limits=limits)
        started.append(listeners)
        return Edge(listeners, app[METRICS], config)

    yield start
    for listeners in started:
        await listeners.close()


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[str]]]:
    """Everything written to stdout under the production log set-up (`configure_logging` as `serve`
    calls it, JSON); calling the fixture returns all lines so far."""
    forget_cached_loggers()
    root = logging.getLogger()
    saved = list(root.handlers), root.level, logging.getLogger("aiohttp.access").level
    configure_logging("info", json=True)
    capsys.readouterr()
    lines: list[str] = []

    def read() -> list[str]:
        lines.extend(capsys.readouterr().out.splitlines())
        return lines

    try:
        yield read
    finally:
        structlog.reset_defaults()
        forget_cached_loggers()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("aiohttp.access").setLevel(saved[2])


def events(lines: list[str], event: str) -> list[dict[str, Any]]:
    return [entry for entry in map(orjson.loads, lines) if entry.get("event") == event]


def assert_json_and_clean(lines: list[str], *secrets: str) -> None:
    """Every line is one JSON document (no stray traceback lines), none at error level, none with a
    traceback or any of `secrets`."""
    for line in lines:
        entry = orjson.loads(line)
        assert entry.get("level") != "error", line
        assert "Traceback" not in line, line
        assert not any(secret in line for secret in secrets), line


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == PROBLEM, self.raw
        document: dict[str, Any] = orjson.loads(self.body)
        assert document["status"] == self.status
        assert document["type"] == f"urn:auth-gateway:problem:{document['code']}"
        return document


async def read_response(reader: asyncio.StreamReader, timeout_s: float = 10.0) -> RawResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, value in (field.split(":", 1) for field in fields if field)
    }
    length = int(headers["content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), timeout_s)
    return RawResponse(int(status_line.split()[1]), headers, body, head + body)


async def closed_within(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """What the server sent before it closed the connection (b"" for a silent close)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout_s)
    except ConnectionResetError:
        return b""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def login_head(key: str, **headers: str) -> bytes:
    lines = [
        f"POST {LOGIN} HTTP/1.1",
        "Host: gateway",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def post_login(
    edge: Edge, key: str, body: bytes | None = None, **headers: str
) -> tuple[int, str, dict[str, Any]]:
    """POST a login with aiohttp's client: (status, content type, JSON answer)."""
    data = orjson.dumps(INPUTS[WECHAT]) if body is None else body
    sent = {**bearer(key), "Content-Type": "application/json"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    async with (
        aiohttp.ClientSession() as session,
        session.post(edge.url + LOGIN, data=data, headers=sent) as response,
    ):
        return response.status, response.content_type, await response.json(content_type=None)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_slowloris_sockets_are_closed_after_the_header_timeout(
    start_edge: StartEdge, keys: Keys
) -> None:
    """Twenty sockets trickling a request head byte by byte, and two sending nothing, are each closed
    without a byte of answer about header_timeout_s after they opened; a login made meanwhile gets its
    200, and /metrics counts the 22 closures."""
    edge = await start_edge(header_timeout_s=1.0)
    head = f"POST {LOGIN} HTTP/1.1\r\nHost: gateway\r\nX-Slow: ".encode()

    async def slowloris(trickle: bool) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        opened = time.monotonic()
        closed = asyncio.ensure_future(closed_within(reader, 15.0))
        sent = 0
        while trickle and not closed.done() and time.monotonic() - opened < 15.0:
            writer.write(head[sent : sent + 1] if sent < len(head) else b"a")
            sent += 1
            await asyncio.sleep(0.05)
        answer = await closed
        writer.close()
        return time.monotonic() - opened, answer

    attack = asyncio.gather(*(slowloris(trickle=i < 20) for i in range(22)))
    await until(lambda: edge.sample("gateway_http_connections") >= 22, timeout_s=5.0)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            edge.url + LOGIN, json=INPUTS[WECHAT], headers=bearer(keys.full)
        ) as r:
            assert r.status == 200
        results = await attack
        async with session.get(edge.url + "/metrics") as r:
            exposition = await r.text()
    assert [answer for _, answer in results] == [b""] * 22
    assert all(0.9 <= held <= 6.0 for held, _ in results), results
    assert (
        'gateway_http_connections_rejected_total{listener="service",reason="header_timeout"} 22.0'
        in exposition
    )
    assert edge.sample("gateway_http_connections") <= 1  # only the session's own, if still open


async def test_keepalive_idle_outlives_the_header_timeout_but_a_started_head_does_not(
    start_edge: StartEdge,
) -> None:
    """Between requests a keep-alive connection may idle past header_timeout_s and is closed after
    keepalive_timeout_s; once the next request's first byte arrives, its head must again be complete
    within header_timeout_s."""
    edge = await start_edge(header_timeout_s=1.0, keepalive_timeout_s=3.0)
    healthz = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"

    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(healthz)
    assert (await read_response(reader)).status == 200
    await asyncio.sleep(1.6)  # idle longer than the header timeout
    writer.write(healthz)
    assert (await read_response(reader)).status == 200
    writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # a head begun, never finished
    started = time.monotonic()
    assert await closed_within(reader, 10.0) == b""
    assert 0.9 <= time.monotonic() - started < 2.5  # the header timeout, not keep-alive's 3 s
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(healthz)
    assert (await read_response(reader)).status == 200
    idle_from = time.monotonic()
    assert await closed_within(reader, 15.0) == b""
    assert 2.8 <= time.monotonic() - idle_from <= 8.0
    writer.close()
    assert edge.sample("gateway_http_connections_rejected_total", reason="header_timeout") == 1


async def test_connections_past_the_cap_are_closed_at_once(
    start_edge: StartEdge, keys: Keys
) -> None:
    """With max_connections 4 and four connections open, three more are closed at once without a
    byte and counted; the four are unaffected, and once they close a login works again."""
    edge = await start_edge(max_connections=4, header_timeout_s=30.0)
    held = [await asyncio.open_connection("127.0.0.1", edge.port) for _ in range(4)]
    await until(lambda: edge.sample("gateway_http_connections") == 4)
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        started = time.monotonic()
        assert await closed_within(reader, 10.0) == b""
        assert time.monotonic() - started < 2.0
        writer.close()
    assert edge.sample("gateway_http_connections_rejected_total", reason="cap") == 3
    assert edge.sample("gateway_http_connections") == 4

    reader, writer = held[0]
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
    assert (await read_response(reader)).status == 200
    for _, writer in held:
        writer.close()
    await until(lambda: edge.sample("gateway_http_connections") == 0)
    assert (await post_login(edge, keys.full))[0] == 200
    assert edge.sample("gateway_http_connections_rejected_total", reason="cap") == 3


async def test_a_body_that_comes_too_slowly_gets_408(
    start_edge: StartEdge, keys: Keys, vendors: Vendors
) -> None:
    """A login whose body trickles in slower than body_timeout_s allows gets a 408 request_timeout
    problem about then; the vendor is not called."""
    edge = await start_edge(body_timeout_s=1.0)
    body = orjson.dumps(INPUTS[WECHAT])
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(login_head(keys.full, Content_Length=str(len(body))))

    async def trickle() -> None:
        for i in range(len(body)):
            writer.write(body[i : i + 1])
            await asyncio.sleep(0.2)

    sending = asyncio.ensure_future(trickle())
    started = time.monotonic()
    try:
        response = await read_response(reader)
    finally:
        sending.cancel()
        writer.close()
    assert response.status == 408
    document = response.problem()
    assert (document["code"], document["retryable"]) == ("request_timeout", True)
    assert 0.9 <= time.monotonic() - started <= 6.0
    assert vendors.state.requests == []


def malformed_control_character(key: str) -> bytes:
    return f"POST {LOGIN} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {key}\x01\r\n\r\n".encode()


def malformed_folded_line(key: str) -> bytes:
    return f"POST {LOGIN} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer\r\n {key}\r\n\r\n".encode()


def malformed_bare_lf(key: str) -> bytes:
    return f"POST {LOGIN} HTTP/1.1\nHost: gateway\nAuthorization: Bearer {key}\n\n".encode()


@pytest.mark.parametrize(
    "malformed", [malformed_control_character, malformed_folded_line, malformed_bare_lf]
)
async def test_a_request_the_parser_refuses_gets_a_problem_that_quotes_nothing(
    start_edge: StartEdge,
    keys: Keys,
    log_lines: Callable[[], list[str]],
    malformed: Callable[[str], bytes],
) -> None:
    """A control character in Authorization, a folded header line or bare LFs get a problem+json 400
    malformed_request in which the key does not appear, and no log line holds the key or a
    traceback; the one line logged names the peer and the kind of fault."""
    edge = await start_edge()
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(malformed(keys.full))
    response = await read_response(reader)
    assert await closed_within(reader, 5.0) == b""  # and the connection is closed
    writer.close()
    assert response.status == 400
    assert response.problem()["code"] == "malformed_request"
    assert keys.full.encode() not in response.raw
    await asyncio.sleep(0.1)
    lines = log_lines()
    assert_json_and_clean(lines, keys.full)
    [logged] = events(lines, "http_parser_error")
    assert logged["peer"] == "127.0.0.1" and logged["reason"].isidentifier()
    assert logged["request_id"] == response.headers["x-request-id"]
    assert edge.sample("gateway_http_parser_errors_total") == 1


async def test_a_flood_of_malformed_requests_costs_a_couple_of_log_lines(
    start_edge: StartEdge, keys: Keys, log_lines: Callable[[], list[str]]
) -> None:
    """Fifty malformed requests from one peer are each answered 400 and counted, and log one line at
    the first and one summary with repeated=49 after the quiet period; none holds the key."""
    edge = await start_edge(quiet_s=2.0)
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(malformed_control_character(keys.full))
        assert (await read_response(reader)).status == 400
        writer.close()
    assert edge.sample("gateway_http_parser_errors_total") == 50

    def repeats() -> int:
        return sum(entry.get("repeated", 0) for entry in events(log_lines(), "http_parser_error"))

    await until(lambda: repeats() == 49, timeout_s=10.0)
    lines = log_lines()
    first, *summaries = events(lines, "http_parser_error")
    assert "repeated" not in first and len(summaries) <= 2  # one, unless the flood outlasted 2 s
    assert {(s["peer"], s["reason"], s["window_s"]) for s in summaries} == {
        ("127.0.0.1", first["reason"], 2.0)
    }
    assert_json_and_clean(lines, keys.full)


@pytest.mark.parametrize(
    ("coding", "body", "status", "code"),
    [
        ("gzip", orjson.dumps(INPUTS[WECHAT]), 400, "invalid_body"),
        ("deflate", orjson.dumps(INPUTS[WECHAT]), 400, "invalid_body"),
        ("compress", orjson.dumps(INPUTS[WECHAT]), 415, "unsupported_media_type"),
        (
            "gzip, gzip",
            gzip.compress(gzip.compress(orjson.dumps(INPUTS[WECHAT]))),
            415,
            "unsupported_media_type",
        ),
    ],
    ids=["plain-labelled-gzip", "plain-labelled-deflate", "compress", "gzip-twice"],
)
async def test_a_body_not_in_its_content_encoding_is_a_4xx_problem(
    start_edge: StartEdge,
    keys: Keys,
    vendors: Vendors,
    log_lines: Callable[[], list[str]],
    coding: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    """A plain JSON body labelled gzip or deflate is a 400 invalid_body problem and a coding the gateway
    does not decode a 415, never a 500: nothing logged as an error or with a traceback, no vendor call."""
    edge = await start_edge()
    answer = await post_login(edge, keys.full, body, Content_Encoding=coding)
    assert answer[:2] == (status, PROBLEM)
    assert answer[2]["code"] == code
    await asyncio.sleep(0.1)
    assert_json_and_clean(log_lines(), keys.full)
    assert [e["status"] for e in events(log_lines(), "request")] == [status]
    assert vendors.state.requests == []


async def test_deflate_cut_short_with_its_head_is_400_invalid_body(
    start_edge: StartEdge, keys: Keys, log_lines: Callable[[], list[str]]
) -> None:
    """A deflate body cut short, sent in one segment with its head, fails inside aiohttp's parser
    before any handler runs: still a 400 invalid_body problem, logged once without the key."""
    edge = await start_edge()
    body = zlib.compress(orjson.dumps(INPUTS[WECHAT]))[:-2]  # no complete checksum: no stream end
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(
        login_head(keys.full, Content_Encoding="deflate", Content_Length=str(len(body))) + body
    )
    response = await read_response(reader)
    writer.close()
    assert (response.status, response.problem()["code"]) == (400, "invalid_body")
    await asyncio.sleep(0.1)
    lines = log_lines()
    assert_json_and_clean(lines, keys.full)
    assert [e["reason"] for e in events(lines, "http_parser_error")] == ["ContentEncodingError"]


async def test_a_gzip_bomb_is_413_once_decoded_past_the_limit(
    start_edge: StartEdge, keys: Keys, vendors: Vendors
) -> None:
    """A 10 KB gzip body that expands to 10 MB, well under max_body_bytes compressed, is answered 413
    body_too_large; the vendor is not called."""
    edge = await start_edge()
    bomb = gzip.compress(b'{"wx_open_id": "' + b"a" * 10_000_000 + b'"}', compresslevel=9)
    assert len(bomb) < edge.settings.max_body_bytes
    status, _, document = await post_login(edge, keys.full, bomb, Content_Encoding="gzip")
    assert (status, document["code"]) == (413, "body_too_large")
    assert vendors.state.requests == []


def chunked(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


async def test_a_chunked_body_that_arrived_whole_is_read_and_held_to_the_limit(
    start_edge: StartEdge, keys: Keys, vendors: Vendors
) -> None:
    """A body with no Content-Length that arrives with its head, all of it, is read at once (no wait):
    within max_body_bytes it logs in (one vendor call); past it, 413 body_too_large, no vendor call."""
    edge = await start_edge()
    for body, expected in [
        (orjson.dumps(INPUTS[WECHAT]), 200),
        (b'{"pad": "' + b"x" * edge.settings.max_body_bytes + b'"}', 413),
    ]:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(login_head(keys.full, Transfer_Encoding="chunked") + chunked(body))
        response = await read_response(reader)
        writer.close()
        assert response.status == expected
    assert response.problem()["code"] == "body_too_large"
    assert len(vendors.state.requests) == 1


async def test_a_truncated_chunked_body_is_a_4xx_never_a_500(
    start_edge: StartEdge, keys: Keys, log_lines: Callable[[], list[str]]
) -> None:
    """A chunk shorter than its size line, arriving while the handler reads the body, gets a 400
    invalid_body problem at once; a chunked body cut short by the client closing is logged as 400
    invalid_body; neither is a 500 or logs a traceback."""
    edge = await start_edge()
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(login_head(keys.full, Transfer_Encoding="chunked"))
    await asyncio.sleep(0.3)  # the handler is reading the body now
    writer.write(b'a\r\n{"x"\r\n0\r\n\r\n')  # 10 bytes announced: the terminator is eaten as data
    started = time.monotonic()
    response = await read_response(reader)
    writer.close()
    assert (response.status, response.problem()["code"]) == (400, "invalid_body")
    assert time.monotonic() - started < 2.0  # not the body timeout

    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(login_head(keys.full, Transfer_Encoding="chunked") + b'10\r\n{"wx_')
    await asyncio.sleep(0.3)
    writer.close()  # the client goes away mid-body
    await until(lambda: len(events(log_lines(), "request")) == 2)
    assert [(e["status"], e["outcome"]) for e in events(log_lines(), "request")] == [
        (400, "invalid_body"),
        (400, "invalid_body"),
    ]
    assert_json_and_clean(log_lines(), keys.full)
    counted: dict[str, float] = {}
    for family in edge.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "gateway_requests_total" and sample.value:  # every child exists, at 0
                status_class = sample.labels["status_class"]
                counted[status_class] = counted.get(status_class, 0.0) + sample.value
    assert counted == {"4xx": 2.0}


async def test_the_served_process_has_the_defences_on_both_ports(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """`python -m gateway serve` (uvloop, the CLI's own path): a silent socket on the service port and
    one on metrics_port are closed after header_timeout_s, a control character in Authorization gets
    the 400 problem, /metrics counts all three, and the process log is JSON without the key."""
    port, metrics_port = closed_port(), closed_port()
    while metrics_port == port:
        metrics_port = closed_port()
    config = write_config(
        tmp_path,
        vendors,
        keys,
        redis_url,
        key_prefix,
        drain_delay_s=0,
        metrics_port=metrics_port,
        header_timeout_s=1.0,
    )
    log = tmp_path / "gw.log"
    process = serve(config, port, log)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{port}/healthz")
            await wait_ready(session, f"http://127.0.0.1:{metrics_port}/metrics")
            for target in (port, metrics_port):
                reader, writer = await asyncio.open_connection("127.0.0.1", target)
                started = time.monotonic()
                assert await closed_within(reader, 10.0) == b""
                assert 0.9 <= time.monotonic() - started <= 6.0
                writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(malformed_control_character(keys.full))
            response = await read_response(reader)
            writer.close()
            assert (response.status, response.problem()["code"]) == (400, "malformed_request")
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                exposition = await r.text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    for listener in ("service", "metrics"):
        assert (
            f'gateway_http_connections_rejected_total{{listener="{listener}",'
            f'reason="header_timeout"}} 1.0' in exposition
        )
    assert 'gateway_http_parser_errors_total{listener="service"} 1.0' in exposition
    lines = log.read_text().splitlines()
    assert_json_and_clean(lines, keys.full)
    assert len(events(lines, "http_parser_error")) == 1


def test_aiohttp_records_are_json_lines_with_bearer_values_redacted(
    log_lines: Callable[[], list[str]],
) -> None:
    """A record aiohttp logs itself, traceback included, is one JSON line whose exception text keeps
    `Bearer` but not the key after it."""
    key = "k3y-" + "x" * 20
    try:
        raise ValueError(f"bad header b'Authorization: Bearer {key}'")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "10.0.0.9")
    [line] = log_lines()
    entry = orjson.loads(line)
    assert (entry["logger"], entry["level"]) == ("aiohttp.server", "error")
    assert entry["event"] == "Error handling request from 10.0.0.9"
    assert "Bearer [redacted]" in entry["exception"] and key not in line
