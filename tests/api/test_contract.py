"""The contract, replayed: real exchanges with a gateway (real Redis, the sandbox over HTTP, faults
injected in it) for every status the server produces, each validated by a third-party validator
(openapi-core) against the document the same gateway serves. A member, header or status the document
does not declare fails here.

Not recorded here, and why: 400 `malformed_request` (made by the production listeners, which the
test server does not use; tests/api/test_edge.py) and 500 (a bug: nothing produces one on purpose).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest
from aiohttp.test_utils import TestClient
from auth_gateway_client.generated.api.auth import forget, list_providers, login
from auth_gateway_client.generated.api.operations import healthz, metrics, openapi, readyz
from auth_gateway_client.generated.client import Client
from auth_gateway_client.generated.models import LoginResult, Problem, Readiness
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from gateway.api.keys import LIFECYCLE
from gateway.app import create_app
from gateway.sandbox.faults import Hang, Html, HttpStatus, TopError
from tests.api.conftest import (
    ALIGENIE,
    APIS,
    BIND,
    INPUTS,
    KINDS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    closed_port,
    gateway_settings,
)
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis

# What each path answers other methods with is declared on the path's own operation (405).
DECLARED_METHOD = {"/auth/{provider}": "post"}
# openapi-core reads application/json only; a problem document is JSON too (RFC 9457).
CONFIG = Config(extra_media_type_deserializers={"application/problem+json": orjson.loads})
EVERY_STATUS = {200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 502, 503, 504}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    request_headers: Mapping[str, str]
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0]

    def validation_request(self) -> MockRequest:
        """The request to look the operation up by: for a 405, the method the path does take."""
        method = self.method.lower()
        if self.status == 405:
            method = "post" if self.path.startswith("/auth/") else "get"
        return MockRequest(
            "http://127.0.0.1", method, self.path, headers=dict(self.request_headers)
        )

    def validation_response(self) -> MockResponse:
        return MockResponse(self.body, self.status, dict(self.headers), self.content_type)


class Recorder:
    def __init__(self, gateway: TestClient, keys: Keys) -> None:
        self.gateway, self.keys = gateway, keys
        self.exchanges: list[Exchange] = []

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "full",
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {getattr(self.keys, key, key)}"
        if body is not None:
            raw, sent["Content-Type"] = orjson.dumps(body), "application/json"
        response = await self.gateway.request(method, path, data=raw, headers=sent)
        exchange = Exchange(
            method, path, sent, response.status, dict(response.headers), await response.read()
        )
        self.exchanges.append(exchange)
        return exchange

    def problem(self, exchange: Exchange) -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads(exchange.body)
        return document


async def record_every_status(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> tuple[Recorder, TestClient]:
    """One gateway, driven through every status it produces on purpose."""
    vendors.state.token_ttl_s = 100
    clock = ShiftedClock()
    gateway = await start_gateway(
        clock=clock,
        **{
            WECHAT: {
                "retry": {"max_attempts": 1},
                "breaker": {"min_calls": 3, "failure_ratio": 0.5, "open_s": 30, "window_s": 30},
            },
            BIND: {"timeout_s": 0.2, "deadline_s": 0.5},
        },
    )
    r = Recorder(gateway, keys)
    for path in ("/healthz", "/readyz", "/metrics", "/auth"):
        await r.send("GET", path)
    await r.send("GET", "/openapi.json", key=None)
    await r.send("GET", "/openapi.json")
    for key in (None, "not-a-key"):
        assert (await r.send("GET", "/auth", key=key)).status == 401
    for provider in KINDS:
        if provider != BIND:
            assert (await r.send("POST", f"/auth/{provider}", INPUTS[provider])).status == 200
    first = await r.send("POST", f"/auth/{WECHAT}", INPUTS[WECHAT], headers={"X-Request-ID": "c-1"})
    assert first.headers["X-Request-ID"] == "c-1" and orjson.loads(first.body)["cached"] is True
    assert (await r.send("DELETE", f"/auth/{MINI_APP}", INPUTS[MINI_APP])).status == 204

    # The caller's mistakes.
    await r.send(
        "POST", f"/auth/{WECHAT}", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    invalid = await r.send("POST", f"/auth/{WECHAT}", {"wx_open_id": ""})
    assert invalid.status == 400 and r.problem(invalid)["errors"]
    await r.send("POST", f"/auth/{WECHAT}", raw=b"x=1", headers={"Content-Type": "text/plain"})
    await r.send("POST", f"/auth/{WECHAT}", {"wx_open_id": "x" * 70_000})
    assert (await r.send("POST", f"/auth/{WECHAT}", INPUTS[WECHAT], key=None)).status == 401
    assert (
        await r.send("POST", f"/auth/{MINI_APP}", INPUTS[MINI_APP], key="wechat_only")
    ).status == 403
    assert (await r.send("POST", "/auth/no-such-provider", INPUTS[WECHAT])).status == 404
    assert (await r.send("PUT", f"/auth/{WECHAT}", INPUTS[WECHAT])).status == 405
    assert (await r.send("POST", "/healthz", {})).status == 405

    # The vendors' failures, injected in the sandbox.
    vendors.state.inject(
        APIS[ALIGENIE], TopError(41, "Invalid Arguments", "isv.invalid-parameter", "bad")
    )
    refused = {**INPUTS[ALIGENIE], "user_id": "refused-user"}
    assert (await r.send("POST", f"/auth/{ALIGENIE}", refused)).status == 422
    replayed = await r.send("POST", f"/auth/{ALIGENIE}", refused)  # remembered: not sent again
    assert replayed.status == 422 and "Retry-After" in replayed.headers
    vendors.state.inject(APIS[ALIGENIE], Html())
    unreadable = await r.send("POST", f"/auth/{ALIGENIE}", {**INPUTS[ALIGENIE], "user_id": "html"})
    assert r.problem(unreadable)["code"] == "vendor_bad_response"
    vendors.state.inject(APIS[MINI_APP], TopError.call_limited(30))
    assert (await r.send("POST", f"/auth/{MINI_APP}", INPUTS[MINI_APP])).status == 429
    vendors.state.inject(APIS[BIND], Hang(5), times=None)
    assert (await r.send("POST", f"/auth/{BIND}", INPUTS[BIND])).status == 504
    vendors.state.clear_faults()

    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    clock.offset = 95  # past refresh, before the vendor's expiry: the failure is covered
    stale = await r.send("POST", f"/auth/{WECHAT}", INPUTS[WECHAT])
    assert stale.status == 200 and orjson.loads(stale.body)["stale"] is True
    for i in range(5):
        answer = await r.send("POST", f"/auth/{WECHAT}", {**INPUTS[WECHAT], "wx_open_id": f"u-{i}"})
        if answer.status == 503:
            break
    assert r.problem(answer)["code"] == "vendor_circuit_open", r.problem(answer)

    gateway.server.app[LIFECYCLE].draining = True  # what SIGTERM sets (gateway/__main__.py)
    assert (await r.send("GET", "/readyz")).status == 503
    return r, gateway


async def record_store_down_and_stalled_body(
    aiohttp_client: Any, keys: Keys, vendors: Vendors, key_prefix: str, into: Recorder
) -> None:
    """A gateway whose Redis is not there (DELETE: 503 cache_unavailable), whose body timeout is
    short (a body that stalls: 408)."""
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    settings = gateway_settings(vendors, keys, redis_url, key_prefix)
    gateway = await aiohttp_client(create_app(settings.model_copy(update={"body_timeout_s": 0.3})))
    r = Recorder(gateway, keys)
    assert (await r.send("DELETE", f"/auth/{WECHAT}", INPUTS[WECHAT])).status == 503
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        f"POST /auth/{WECHAT} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {keys.full}\r\n"
        "Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{".encode()
    )  # and nothing more: the body stalls
    status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines if line)
    body = await reader.readexactly(int(headers["Content-Length"]))
    writer.close()
    r.exchanges.append(
        Exchange("POST", f"/auth/{WECHAT}", {}, int(status_line.split()[1]), headers, body)
    )
    assert r.exchanges[-1].status == 408
    into.exchanges += r.exchanges


async def test_every_recorded_answer_is_what_the_document_declares(
    start_gateway: StartGateway, aiohttp_client: Any, keys: Keys, vendors: Vendors, key_prefix: str
) -> None:
    recorder, gateway = await record_every_status(start_gateway, keys, vendors)
    await record_store_down_and_stalled_body(aiohttp_client, keys, vendors, key_prefix, recorder)
    statuses = {exchange.status for exchange in recorder.exchanges}
    assert statuses >= EVERY_STATUS, sorted(EVERY_STATUS - statuses)
    anonymous = await (await gateway.get("/openapi.json")).json()
    keyed = await (
        await gateway.get("/openapi.json", headers={"Authorization": f"Bearer {keys.full}"})
    ).json()
    for document in (anonymous, keyed):  # the generic operations, then the typed ones
        contract = OpenAPI.from_dict(document, config=CONFIG)
        failures = []
        for exchange in recorder.exchanges:
            try:
                contract.validate_response(
                    exchange.validation_request(), exchange.validation_response()
                )
            except Exception as error:  # openapi-core raises a family of validation errors
                failures.append(
                    f"{exchange.method} {exchange.path} {exchange.status}: {error!r} "
                    f"{error.__cause__!r}"
                )
        assert not failures, "\n".join(failures)


def generated_operation(exchange: Exchange) -> ModuleType:
    """The generated client's module for the operation an exchange was made to."""
    if exchange.path.startswith("/auth/"):
        return forget if exchange.method == "DELETE" else login
    return {
        "/auth": list_providers,
        "/healthz": healthz,
        "/readyz": readyz,
        "/metrics": metrics,
        "/openapi.json": openapi,
    }[exchange.path]


async def test_the_generated_client_parses_every_recorded_answer(
    start_gateway: StartGateway, aiohttp_client: Any, keys: Keys, vendors: Vendors, key_prefix: str
) -> None:
    """clients/python's generated code reads each answer as its declared type: a problem as a
    Problem with its code, a login as a LoginResult (stale included), /readyz draining as Readiness."""
    recorder, _ = await record_every_status(start_gateway, keys, vendors)
    await record_store_down_and_stalled_body(aiohttp_client, keys, vendors, key_prefix, recorder)
    client = Client(base_url="http://127.0.0.1", raise_on_unexpected_status=True)
    for exchange in recorder.exchanges:
        response = httpx.Response(exchange.status, headers=exchange.headers, content=exchange.body)
        parsed = generated_operation(exchange)._parse_response(client=client, response=response)
        where = f"{exchange.method} {exchange.path} {exchange.status}"
        if exchange.content_type == "application/problem+json":
            assert isinstance(parsed, Problem), where
            assert parsed.code.value == orjson.loads(exchange.body)["code"], where
        elif exchange.path.startswith("/auth/") and exchange.status == 200:
            assert isinstance(parsed, LoginResult), where
            assert parsed.to_dict() == orjson.loads(exchange.body), where
        elif exchange.path == "/readyz":
            assert isinstance(parsed, Readiness), where
        elif exchange.status != 204:
            assert parsed is not None, where


async def test_the_contract_check_catches_an_undeclared_member_status_or_header(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """The validator is strict enough to fail CI: an extra member, an undeclared status, a missing
    X-Request-ID each fail against the served document."""
    gateway = await start_gateway()
    recorder = Recorder(gateway, keys)
    login = await recorder.send("POST", f"/auth/{WECHAT}", INPUTS[WECHAT])
    contract = OpenAPI.from_dict(await (await gateway.get("/openapi.json")).json(), config=CONFIG)
    contract.validate_response(login.validation_request(), login.validation_response())
    broken = [
        replace(login, body=orjson.dumps({**orjson.loads(login.body), "surprise": 1})),
        replace(login, status=418),
        replace(login, headers={"Content-Type": "application/json"}),
    ]
    for exchange in broken:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any validation error will do
            contract.validate_response(
                exchange.validation_request(), exchange.validation_response()
            )
