"""The canonical request line as a running gateway writes it on stdout: every field, in order, redacted
as every other line is, equal to what structlog's chain renders for the same event, one write() each,
and only at `info` or below."""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import structlog
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.log_context import new_log_context
from gateway.logging import configure_logging, secret_values
from gateway.redaction import REDACTED, Redactor
from gateway.request_line import REQUEST_LINE, JsonRequestLine, StructlogRequestLine
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors, gateway_settings

pytestmark = pytest.mark.redis

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TOKEN_SHAPED = "Zq8Lm2Xv9Rt4Wy6Bn1Kp3Hs7"  # 24 letters and digits of both cases: a token's shape
# The request's own fields, as the middleware passes them.
FIELDS = ("method", "path", "status", "outcome", "provider", "duration_ms")
# ISO 8601 UTC with milliseconds (gateway.log_processors.IsoTimestamp).
TIMESTAMP_SHAPE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@dataclass
class Stdout:
    """What the gateway writes on stdout, under `configure_logging` as `serve` calls it."""

    capsys: pytest.CaptureFixture[str]

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines written since the last call."""
        out = self.capsys.readouterr().out.splitlines()
        return [orjson.loads(line) for line in out if line.startswith("{")]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == "request"]


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str]) -> Iterator[Stdout]:
    """Logging as it was afterwards: structlog's defaults, the root handlers, the request line's route."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access_level = logging.getLogger("aiohttp.access").level
    line = REQUEST_LINE.line
    try:
        yield Stdout(capsys)
    finally:
        REQUEST_LINE.use(line)
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("aiohttp.access").setLevel(access_level)


StartLogged = Callable[..., Any]


@pytest.fixture
def start_logged(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> StartLogged:
    """A gateway whose log lines are configured as `serve` configures them: one Redactor for the app and
    the log lines, knowing the settings' secrets."""

    async def start(level: str = "info") -> TestClient:
        settings = gateway_settings(vendors, keys, redis_url, key_prefix)
        redactor = Redactor(secret_values(settings))
        configure_logging(level, json=True, redactor=redactor)
        client: TestClient = await aiohttp_client(create_app(settings, redactor=redactor))
        return client

    return start


def key_id_of(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]


async def test_a_miss_and_a_hit_write_every_field_in_order(
    start_logged: StartLogged, stdout: Stdout, keys: Keys
) -> None:
    gateway = await start_logged()
    stdout.lines()
    for request_id in ("req-miss", "req-hit"):
        response = await gateway.post(
            f"/auth/{WECHAT}",
            json=INPUTS[WECHAT],
            headers={
                "Authorization": f"Bearer {keys.full}",
                "X-Request-ID": request_id,
                "traceparent": TRACEPARENT,
            },
        )
        assert response.status == 200
    miss, hit = stdout.requests()
    common = {
        "trace_id": TRACE_ID,
        "client": "billing-app",
        "key_id": key_id_of(keys.full),
        "kind": "tencent-iot:AppGetTokenByWeiXin",
        "method": "POST",
        "path": f"/auth/{WECHAT}",
        "status": 200,
        "outcome": "ok",
        "provider": WECHAT,
        "event": "request",
        "level": "info",
    }
    head = ["request_id", "trace_id", "span_id", "client", "key_id", "kind", "cache"]
    tail = ["method", "path", "status", "outcome", "provider", "duration_ms", "event", "level"]
    assert list(miss) == [*head, "vendor_ms", *tail, "timestamp"]
    assert list(hit) == [*head, *tail, "timestamp"]
    assert {k: miss[k] for k in common} == common == {k: hit[k] for k in common}
    assert (miss["request_id"], miss["cache"], hit["request_id"], hit["cache"]) == (
        "req-miss",
        "miss",
        "req-hit",
        "hit",
    )
    for line in (miss, hit):
        assert len(line["span_id"]) == 16 and int(line["span_id"], 16) >= 0
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
        assert re.match(TIMESTAMP_SHAPE, line["timestamp"])
    assert isinstance(miss["vendor_ms"], float) and miss["duration_ms"] >= miss["vendor_ms"] > 0


async def test_a_line_outside_any_route_has_no_caller_fields_and_a_null_provider(
    start_logged: StartLogged, stdout: Stdout
) -> None:
    gateway = await start_logged()
    stdout.lines()
    response = await gateway.get("/no-such-route", headers={"X-Request-ID": "r-404"})
    assert response.status == 404
    [line] = stdout.requests()
    assert {k: v for k, v in line.items() if k not in ("span_id", "trace_id", "timestamp")} == {
        "request_id": "r-404",
        "method": "GET",
        "path": "/no-such-route",
        "status": 404,
        "outcome": "not_found",
        "provider": None,
        "duration_ms": line["duration_ms"],
        "event": "request",
        "level": "info",
    }


async def test_a_configured_secret_and_a_token_shape_are_redacted_from_the_line(
    start_logged: StartLogged, stdout: Stdout, vendors: Vendors, keys: Keys
) -> None:
    """The path is the caller's: a secret or a token in it is not written. The request id keeps a
    token's shape (ids look like tokens) but loses a configured secret."""
    gateway = await start_logged()
    stdout.lines()
    auth = {"Authorization": f"Bearer {keys.full}"}
    for path, request_id in (
        (f"/auth/{vendors.top_secret}", f"id-{vendors.tencent_secret}"),
        (f"/auth/{TOKEN_SHAPED}", TOKEN_SHAPED),
    ):
        headers = {**auth, "X-Request-ID": request_id}
        response = await gateway.post(path, json={}, headers=headers)
        assert response.status == 404
    secret_line, token_line = stdout.requests()
    assert (secret_line["path"], secret_line["request_id"]) == (
        f"/auth/{REDACTED}",
        f"id-{REDACTED}",
    )
    # The slashes are in the token alphabet (base64): the path is one run, replaced whole.
    assert (token_line["path"], token_line["request_id"]) == (REDACTED, TOKEN_SHAPED)
    assert secret_line["outcome"] == token_line["outcome"] == "unknown_provider"


@pytest.mark.parametrize(
    "fields",
    [
        {},  # outside a request: no context
        {"request_id": "r-1", "trace_id": TRACE_ID, "span_id": "00f067aa0ba902b7"},
        {
            "request_id": "x-s3cret-in-an-id",  # only configured secrets leave an id
            "trace_id": TOKEN_SHAPED,
            "span_id": "00f067aa0ba902b7",
            "client": "billing-app s3cret-in-an-id",
            "key_id": "agw_0a1b2c3d",
            "kind": f"echo Bearer {TOKEN_SHAPED}",
            "cache": "hit",
            "vendor_ms": 12.5,
            "token": "never-logged",  # a redacted key
            "method": "a context field the call overrides",
        },
    ],
    ids=["no-context", "ids", "secrets-shapes-keys"],
)
def test_the_line_is_the_one_the_structlog_chain_renders(
    stdout: Stdout, fields: dict[str, Any]
) -> None:
    """The same event through structlog's configured chain and through the request line: the same
    keys in the same order and the same values (the timestamp's millisecond aside)."""
    configure_logging("info", json=True, secrets=["s3cret-in-an-id"])
    assert isinstance(REQUEST_LINE.line, JsonRequestLine)
    call = ("PUT", f"/auth/{TOKEN_SHAPED}", 403, "provider_forbidden", None, 0.25)

    def both() -> None:
        new_log_context(**fields)
        structlog.get_logger("gateway.access").info(
            "request", **dict(zip(FIELDS, call, strict=True))
        )
        REQUEST_LINE.write(dict(zip(FIELDS, call, strict=True)))

    stdout.lines()
    contextvars.copy_context().run(both)
    chain, direct = stdout.lines()
    assert list(direct) == list(chain)
    assert {**direct, "timestamp": None} == {**chain, "timestamp": None}
    assert re.match(TIMESTAMP_SHAPE, direct["timestamp"]) and re.match(
        TIMESTAMP_SHAPE, chain["timestamp"]
    )
    assert (direct["path"], direct["level"]) == (REDACTED, "info")
    if "token" in fields:
        assert (direct["token"], direct["request_id"]) == (REDACTED, f"x-{REDACTED}")
        assert (direct["trace_id"], direct["client"]) == (TOKEN_SHAPED, f"billing-app {REDACTED}")
        assert (direct["kind"], direct["method"]) == (f"echo Bearer {REDACTED}", "PUT")


@pytest.mark.parametrize("level", ["warning", "error"])
async def test_above_info_no_request_line_is_written(
    start_logged: StartLogged, stdout: Stdout, keys: Keys, level: str
) -> None:
    gateway = await start_logged(level)
    stdout.lines()
    response = await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    assert response.status == 200
    structlog.get_logger("gateway").error("still_written")
    events = [line["event"] for line in stdout.lines()]
    assert "request" not in events and "still_written" in events


async def test_at_debug_the_request_line_is_written(
    start_logged: StartLogged, stdout: Stdout
) -> None:
    gateway = await start_logged("debug")
    stdout.lines()
    assert (await gateway.get("/nowhere", headers={"X-Request-ID": "r-debug"})).status == 404
    assert [line["request_id"] for line in stdout.requests()] == ["r-debug"]


async def test_each_request_line_is_one_write_with_its_newline(
    start_logged: StartLogged, stdout: Stdout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One write() per line, newline included: the workers of `serve --workers` share stdout."""
    gateway = await start_logged()
    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    monkeypatch.setattr(sys, "stdout", Recorder())
    for n in range(3):
        assert (await gateway.get("/nowhere", headers={"X-Request-ID": f"w-{n}"})).status == 404
    monkeypatch.undo()
    requests = [w for w in writes if orjson.loads(w).get("event") == "request"]
    assert [orjson.loads(w)["request_id"] for w in requests] == ["w-0", "w-1", "w-2"]
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in requests)


async def test_on_a_terminal_the_line_goes_through_the_console_renderer(
    start_logged: StartLogged, stdout: Stdout, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = await start_logged()
    configure_logging("info", json=False)
    assert isinstance(REQUEST_LINE.line, StructlogRequestLine)
    capsys.readouterr()
    marker = secrets.token_hex(4)
    assert (await gateway.get(f"/nowhere-{marker}")).status == 404
    [line] = [line for line in capsys.readouterr().out.splitlines() if marker in line]
    assert not line.startswith("{") and "request" in line and "status" in line
