"""Fault injection over real loopback HTTP: every kind, stages, times, probability, control routes, CLI."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import random
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.sandbox import CannedResponse, SandboxState, cli, create_sandbox_app, start_sandbox
from gateway.sandbox.fault_specs import Injection, injection_from_json, parse_fault_spec
from gateway.sandbox.faults import (
    BindInternalError,
    Empty,
    Fault,
    FaultPlan,
    Hang,
    Html,
    HttpStatus,
    Latency,
    OneOf,
    Reset,
    TencentError,
    TopError,
    Truncated,
)
from gateway.signing import tencent_iot as tencent_signing
from gateway.signing import top as top_signing

TOP_KEY, TOP_SECRET = "12345678", "helloworld"
TENCENT_KEY, TENCENT_SECRET = "ahPxdKTGrejdQ0001", "ServiceAppSecret"
NOW = 1_700_000_000
FORM = "application/x-www-form-urlencoded;charset=utf-8"
TOP_PATH = "/router/rest"
TENCENT_PATH = "/api/exploreropen/appapi"

LOGIN = "taobao.ailab.aicloud.top.auth.get"
CHECKBIND = "alibaba.ailabs.iot.device.inside.checkbind.invoke"
ACTION = "AppGetTokenByWeiXin"
BUSINESS = {
    LOGIN: {"user_id": "13911112222", "utd_id": "V944n0Hr", "schema": "s-1", "app_type": "IOS"},
    CHECKBIND: {
        "open_id": "1jpASH5X",
        "product_key": "a171ldg",
        "trace_id": "t1",
        "user_type": "u",
    },
}
REPO_ROOT = Path(__file__).resolve().parents[2]

Client = TestClient[Any, Any]


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(
        top_apps={TOP_KEY: TOP_SECRET},
        tencent_apps={TENCENT_KEY: TENCENT_SECRET},
        clock=lambda: NOW,
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, state: SandboxState) -> Client:
    return await aiohttp_client(create_sandbox_app(state))


@pytest.fixture
async def served(state: SandboxState) -> AsyncIterator[str]:
    """The sandbox on a real loopback port, as another process would reach it; its base URL."""
    runner, base_url = await start_sandbox(state)
    try:
        yield base_url
    finally:
        await runner.cleanup()


def top_form(
    method: str | None = LOGIN, *, secret: str = TOP_SECRET, now: float = NOW, fmt: str = "json"
) -> str:
    """A signed TOP request body (hmac-sha256, JSON) for `method` and its business parameters."""
    params = {
        "app_key": TOP_KEY,
        "timestamp": top_signing.top_timestamp(now),
        "v": "2.0",
        "sign_method": "hmac-sha256",
        "format": fmt,
        **({"method": method, **BUSINESS[method]} if method else {}),
    }
    return urlencode({**params, "sign": top_signing.sign(params, secret, "hmac-sha256")})


async def post_top(
    client: Client, method: str | None = LOGIN, *, client_timeout_s: float = 5, fmt: str = "json"
) -> aiohttp.ClientResponse:
    """POST a signed TOP request; the response is read before returning."""
    response = await client.post(
        TOP_PATH,
        data=top_form(method, fmt=fmt),
        headers={"Content-Type": FORM},
        timeout=aiohttp.ClientTimeout(total=client_timeout_s),
    )
    await response.read()
    return response


async def top_json(client: Client, method: str | None = LOGIN) -> dict[str, Any]:
    """A TOP answer's JSON body (asserting HTTP 200)."""
    response = await post_top(client, method)
    assert response.status == 200
    body: dict[str, Any] = json.loads(await response.read())
    return body


async def post_tencent(client: Client) -> aiohttp.ClientResponse:
    """POST a signed AppGetTokenByWeiXin request with a fresh nonce."""
    fields: dict[str, Any] = {
        "Action": ACTION,
        "RequestId": "req-1",
        "AppKey": TENCENT_KEY,
        "Timestamp": NOW,
        "Nonce": random.randint(1, 2**31 - 1),
        "WxOpenID": "0123456789",
        "NickName": "tests",
        "Avatar": "http://example.com/a.jpg",
    }
    fields["Signature"] = tencent_signing.sign(fields, TENCENT_SECRET)
    response = await client.post(TENCENT_PATH, json=fields)
    await response.read()
    return response


def is_login_success(body: dict[str, Any]) -> bool:
    return (
        body.get("ailab_aicloud_top_auth_get_response", {}).get("result", {}).get("is_success")
        is True
    )


# --- transport faults -----------------------------------------------------------------------------


async def test_latency_answers_normally_but_late(client: Client, state: SandboxState) -> None:
    """Latency delays the answer by its seconds and otherwise changes nothing."""
    state.inject(LOGIN, Latency(0.15))
    started = time.monotonic()
    assert is_login_success(await top_json(client))
    assert time.monotonic() - started >= 0.15
    assert state.faults.active == ()


async def test_hang_lasts_until_the_client_gives_up(served: str, state: SandboxState) -> None:
    """Hang never answers; once the client's own timeout fires, the handler ends and serving goes on."""
    # Served by start_sandbox, as the CLI and dev mode are: there aiohttp does not cancel a handler
    # whose client left (aiohttp's TestServer would, hiding a handler that hangs on).
    state.inject(LOGIN, Hang())
    before = asyncio.all_tasks()
    started = time.monotonic()
    async with aiohttp.ClientSession(served) as session:
        with pytest.raises(TimeoutError):
            await session.post(
                TOP_PATH,
                data=top_form(),
                headers={"Content-Type": FORM},
                timeout=aiohttp.ClientTimeout(total=0.2),
            )
        assert time.monotonic() - started < 2
        for _ in range(50):  # the hanging handler notices that the client left, and ends
            if not asyncio.all_tasks() - before:
                break
            await asyncio.sleep(0.02)
        assert asyncio.all_tasks() - before == set()
        async with session.post(TOP_PATH, data=top_form(), headers={"Content-Type": FORM}) as ok:
            assert is_login_success(await ok.json(content_type=None))
    assert state.calls(LOGIN) == 2


async def test_hang_does_not_hold_up_shutdown(state: SandboxState) -> None:
    """Stopping the sandbox ends a hang at once: the waiting client is disconnected."""
    state.inject(LOGIN, Hang())
    runner, base_url = await start_sandbox(state)
    try:
        async with aiohttp.ClientSession(base_url) as session:
            call = asyncio.ensure_future(
                session.post(TOP_PATH, data=top_form(), headers={"Content-Type": FORM})
            )
            for _ in range(500):  # until the request is in
                if state.calls(LOGIN):
                    break
                await asyncio.sleep(0.01)
            started = time.monotonic()
            await runner.cleanup()
            assert time.monotonic() - started < 2
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await call
    finally:
        await runner.cleanup()


async def test_hang_is_bounded_then_closes(client: Client, state: SandboxState) -> None:
    """A Hang past its bound closes the connection without an answer."""
    state.inject(LOGIN, Hang(seconds=0.1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_top(client, client_timeout_s=5)


async def test_reset_closes_the_connection(client: Client, state: SandboxState) -> None:
    """Reset closes the TCP connection without HTTP: aiohttp raises ServerDisconnectedError."""
    state.inject(LOGIN, Reset())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post_top(client)


async def test_reset_rst_is_connection_reset_by_peer(client: Client, state: SandboxState) -> None:
    """Reset("rst") sends a TCP RST: aiohttp raises ClientOSError with ECONNRESET."""
    state.inject(LOGIN, Reset("rst"))
    with pytest.raises(aiohttp.ClientOSError) as raised:
        await post_top(client)
    assert raised.value.errno == errno.ECONNRESET


async def test_http_status_sends_the_proxy_error_page(client: Client, state: SandboxState) -> None:
    """HttpStatus answers its status with the proxy's HTML error page by default."""
    state.inject(LOGIN, HttpStatus(502))
    response = await post_top(client)
    assert response.status == 502
    assert response.headers["Content-Type"] == "text/html;charset=utf-8"
    assert b"<h1>502 Bad Gateway</h1>" in await response.read()


async def test_http_status_with_a_custom_body(client: Client, state: SandboxState) -> None:
    """HttpStatus sends exactly the body and Content-Type it is given."""
    state.inject(None, HttpStatus(500, b'{"oops":1}', "application/json"))
    response = await post_tencent(client)
    assert (response.status, response.headers["Content-Type"]) == (500, "application/json")
    assert await response.read() == b'{"oops":1}'


async def test_html_is_200_with_an_html_page(client: Client, state: SandboxState) -> None:
    """Html answers HTTP 200 with an HTML page that does not parse as JSON."""
    state.inject(ACTION, Html())
    response = await post_tencent(client)
    body = await response.read()
    assert (response.status, response.headers["Content-Type"]) == (200, "text/html;charset=utf-8")
    assert body.startswith(b"<!DOCTYPE html>")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


async def test_truncated_cuts_the_real_answer(client: Client, state: SandboxState) -> None:
    """Truncated sends the vendor's own answer cut in half, with a matching Content-Length."""
    state.inject(LOGIN, Truncated())
    response = await post_top(client)
    body = await response.read()
    assert response.status == 200
    assert int(response.headers["Content-Length"]) == len(body)
    assert body.startswith(b'{"ailab_aicloud_top_auth_get_response":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert len(state.issued_tokens) == 1  # the vendor did issue a token the client never saw


async def test_empty_is_200_without_a_body(client: Client, state: SandboxState) -> None:
    """Empty answers HTTP 200, a JSON Content-Type and zero bytes, and the vendor does nothing."""
    state.inject(LOGIN, Empty())
    response = await post_top(client)
    assert (response.status, await response.read()) == (200, b"")
    assert response.headers["Content-Type"].startswith("application/json")
    assert state.issued_tokens == []


async def test_transport_fault_fires_before_the_checks(client: Client, state: SandboxState) -> None:
    """A transport fault hits even a badly signed request, which is still counted."""
    state.inject(LOGIN, HttpStatus(503))
    response = await client.post(
        TOP_PATH, data=top_form(secret="wrong"), headers={"Content-Type": FORM}
    )
    assert response.status == 503
    assert state.calls(LOGIN) == 1


# --- vendor faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            TopError.call_limited(71),
            {
                "code": 7,
                "msg": "App Call Limited",
                "sub_code": "accesscontrol.limited-by-app-access-count",
                "sub_msg": "This ban will last for 71 more seconds",
            },
        ),
        (
            TopError.remote_timeout(),
            {
                "code": 15,
                "msg": "Remote service error",
                "sub_code": "isp.top-remote-connection-timeout",
                "sub_msg": "远程服务调用超时",
            },
        ),
        (TopError.unavailable(), {"code": 10, "msg": "Service Currently Unavailable"}),
    ],
)
async def test_top_error_is_an_error_response(
    client: Client, state: SandboxState, fault: TopError, expected: dict[str, Any]
) -> None:
    """A TopError fault answers HTTP 200 with exactly that error_response and a request_id."""
    state.inject(LOGIN, fault)
    error = (await top_json(client))["error_response"]
    assert re.fullmatch(r"[0-9a-z]{13}", error.pop("request_id"))
    assert error == expected


async def test_top_error_follows_the_requested_format(client: Client, state: SandboxState) -> None:
    """Without format=json a TopError is written in the platform's default XML."""
    state.inject(LOGIN, TopError(50, "Remote service error", "isp.service-error"))
    response = await post_top(client, fmt="xml")
    root = ET.fromstring(await response.read())  # noqa: S314 - the sandbox's own output
    assert (root.tag, root.findtext("code"), root.findtext("sub_code")) == (
        "error_response",
        "50",
        "isp.service-error",
    )


@pytest.mark.parametrize("envelope", ["documented", "official"])
async def test_tencent_error_in_the_configured_envelope(
    client: Client, state: SandboxState, envelope: Any
) -> None:
    """A TencentError fault is HTTP 200 with Error {Code, Message} in the configured envelope."""
    state.tencent_envelope = envelope
    state.inject(ACTION, TencentError())
    response = await post_tencent(client)
    body = json.loads(await response.read())
    inner = body["Response"] if envelope == "documented" else body["data"]
    assert response.status == 200
    assert inner == {
        "Error": {
            "Code": "InternalError",
            "Message": "An internal error has occurred. Retry your request.",
        },
        "RequestId": "req-1",
    }
    if envelope == "official":
        assert body["code"] == -1000


async def test_bind_internal_error_only_hits_checkbind(client: Client, state: SandboxState) -> None:
    """BindInternalError leaves other methods alone and answers checkbind result=false, 331001."""
    state.inject(None, BindInternalError())
    assert is_login_success(await top_json(client))
    answer = (await top_json(client, CHECKBIND))[
        "alibaba_ailabs_iot_device_inside_checkbind_invoke_response"
    ]
    assert answer["result"] is False
    assert answer["ret_value"] is False
    assert (answer["ret_code"], answer["message"]) == (331001, "系统内部未知错误")
    assert state.faults.active == ()


async def test_vendor_faults_only_hit_their_vendor(client: Client, state: SandboxState) -> None:
    """A TopError for every API leaves Tencent alone, and a TencentError leaves TOP alone."""
    state.inject(None, TopError.unavailable())
    state.inject(None, TencentError("InternalError", "boom"))
    tencent = json.loads(await (await post_tencent(client)).read())
    assert tencent["Response"]["Error"] == {"Code": "InternalError", "Message": "boom"}
    assert (await top_json(client))["error_response"]["code"] == 10
    assert state.faults.active == ()


async def test_vendor_fault_waits_for_the_checks(client: Client, state: SandboxState) -> None:
    """A badly signed request gets the signature error and leaves the vendor fault in place."""
    state.inject(LOGIN, TopError.call_limited(5))
    response = await client.post(
        TOP_PATH, data=top_form(secret="wrong"), headers={"Content-Type": FORM}
    )
    assert json.loads(await response.read())["error_response"]["code"] == 25
    assert [entry.remaining for entry in state.faults.active] == [1]
    assert (await top_json(client))["error_response"]["code"] == 7


async def test_vendor_fault_comes_before_a_canned_answer(
    client: Client, state: SandboxState
) -> None:
    """A vendor fault answers first; the queued canned answer waits for the next call."""
    state.enqueue(LOGIN, CannedResponse.json({"canned": True}))
    state.inject(LOGIN, TopError.unavailable())
    assert (await top_json(client))["error_response"]["code"] == 10
    assert state.canned_left(LOGIN) == 1
    assert await top_json(client) == {"canned": True}


# --- matching, times, probability -----------------------------------------------------------------


async def test_times_counts_down_and_calls_count_faults(
    client: Client, state: SandboxState
) -> None:
    """times=2 fails exactly two calls; every call, faulted or not, is counted."""
    state.inject(LOGIN, HttpStatus(503), times=2)
    statuses = [(await post_top(client)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert state.calls(LOGIN) == 3
    assert state.faults.fired == 2


async def test_times_none_lasts_until_cleared(client: Client, state: SandboxState) -> None:
    """times=None keeps firing until clear_faults, which reports how many faults it removed."""
    state.inject(LOGIN, Empty(), times=None)
    for _ in range(3):
        assert await (await post_top(client)).read() == b""
    assert state.clear_faults() == 1
    assert is_login_success(await top_json(client))


async def test_faults_match_their_api(client: Client, state: SandboxState) -> None:
    """A fault bound to one API leaves the other APIs and vendors alone."""
    state.inject(CHECKBIND, HttpStatus(503))
    assert is_login_success(await top_json(client))
    assert (await post_tencent(client)).status == 200
    assert (await post_top(client, CHECKBIND)).status == 503


async def test_unreadable_api_only_meets_every_api_faults(
    client: Client, state: SandboxState
) -> None:
    """A request without a method is only hit by faults injected for every API."""
    state.inject(LOGIN, HttpStatus(503))
    assert (await top_json(client, None))["error_response"]["code"] == 21
    state.inject(None, HttpStatus(502))
    assert (await post_top(client, None)).status == 502
    assert state.call_counts() == {None: 2}


async def test_concurrent_requests_consume_a_fault_once(
    client: Client, state: SandboxState
) -> None:
    """Eight simultaneous requests share one times=1 Reset: exactly one of them is dropped."""
    state.inject(LOGIN, Reset())
    results = await asyncio.gather(*(post_top(client) for _ in range(8)), return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], aiohttp.ServerDisconnectedError)


async def test_one_fault_per_stage_and_latency_composes(
    client: Client, state: SandboxState
) -> None:
    """Per request, latency and the first matching transport fault both fire; later ones wait."""
    state.inject(None, Latency(0.05))
    state.inject(LOGIN, HttpStatus(502))
    state.inject(LOGIN, HttpStatus(503))
    started = time.monotonic()
    assert (await post_top(client)).status == 502
    assert time.monotonic() - started >= 0.05
    assert (await post_top(client)).status == 503


def draws(plan: FaultPlan, calls: int) -> list[bool]:
    """Which of `calls` LOGIN calls a plan's transport stage fails."""
    return [plan.take("transport", "top", LOGIN) is not None for _ in range(calls)]


def test_probability_is_seeded_and_repeatable() -> None:
    """The same fault_seed gives the same failing calls; another seed gives others."""
    patterns = []
    for seed in (7, 7, 8):
        state = SandboxState(fault_seed=seed)
        state.inject(None, Reset(), times=None, probability=0.5)
        patterns.append(draws(state.faults, 200))
    assert patterns[0] == patterns[1] != patterns[2]
    assert 60 < sum(patterns[0]) < 140


def test_probability_bounds_and_times_with_probability() -> None:
    """Probability 0 never fires; times counts firings, not draws."""
    plan = FaultPlan(random.Random(1))
    plan.inject(None, Reset(), times=None, probability=0.0)
    assert not any(draws(plan, 100))
    plan.clear()
    plan.inject(None, Reset(), times=3, probability=0.2)
    assert sum(draws(plan, 500)) == 3
    assert plan.active == ()


def test_chaos_fails_the_requested_fraction_with_transient_faults() -> None:
    """chaos(0.3) fails about 30 % of the calls, half transport, half vendor, all transient."""
    plan = FaultPlan(random.Random(3))
    plan.chaos(0.3)
    seen: list[Fault] = []
    for _ in range(4000):
        fault = plan.take("transport", "top", LOGIN) or plan.take("vendor", "top", LOGIN)
        if fault is not None:
            seen.append(fault)
    assert 0.27 < len(seen) / 4000 < 0.33
    kinds = {type(fault) for fault in seen}
    assert kinds == {HttpStatus, Reset, TopError}
    assert {fault.code for fault in seen if isinstance(fault, TopError)} == {10, 15}
    assert {fault.status for fault in seen if isinstance(fault, HttpStatus)} == {500, 502, 503}
    tencent = [plan.take("vendor", "tencent", ACTION) for _ in range(200)]
    assert {type(fault) for fault in tencent if fault is not None} == {TencentError}


def test_one_of_picks_among_the_choices_that_apply() -> None:
    """OneOf only picks choices that fit the call, and only matches when one does."""
    plan = FaultPlan()
    plan.inject(None, OneOf((TopError.unavailable(), BindInternalError())), times=None)
    assert plan.take("vendor", "tencent", ACTION) is None
    assert {plan.take("vendor", "top", LOGIN) for _ in range(20)} == {TopError.unavailable()}
    picks = {plan.take("vendor", "top", CHECKBIND) for _ in range(50)}
    assert picks == {TopError.unavailable(), BindInternalError()}


@pytest.mark.parametrize(
    "build",
    [
        lambda: Latency(-1),
        lambda: Latency(float("nan")),
        lambda: Hang(301),
        lambda: Reset("half"),  # type: ignore[arg-type]
        lambda: HttpStatus(204),
        lambda: HttpStatus(700),
        lambda: OneOf(()),
        lambda: OneOf((Latency(1), Reset())),
        lambda: TopError("7", "x"),  # type: ignore[arg-type]
        lambda: FaultPlan().inject(None, Reset(), times=0),
        lambda: FaultPlan().inject(None, Reset(), probability=1.5),
        lambda: FaultPlan().inject("", Reset()),
    ],
)
def test_bad_faults_are_refused(build: Any) -> None:
    """Out-of-range or ill-typed fault parameters raise at construction or injection."""
    with pytest.raises((TypeError, ValueError)):
        build()


# --- control routes -------------------------------------------------------------------------------


async def test_control_routes_round_trip(served: str, state: SandboxState) -> None:
    """POST injects, GET lists, a call fires it, stats count it, DELETE clears everything."""
    async with aiohttp.ClientSession(served) as session:
        spec = {"api": LOGIN, "kind": "call_limited", "args": {"ban_s": 60}}
        async with session.post("/_sandbox/faults", json=spec) as response:
            assert response.status == 201
            injected = await response.json()
        entry = {
            "api": LOGIN,
            "kind": "top_error",
            "args": {
                "code": 7,
                "msg": "App Call Limited",
                "sub_code": "accesscontrol.limited-by-app-access-count",
                "sub_msg": "This ban will last for 60 more seconds",
            },
            "times": 1,
            "probability": 1.0,
            "fired": 0,
        }
        assert injected == {"injected": [entry]}
        async with session.get("/_sandbox/faults") as response:
            assert await response.json() == {"faults": [entry]}
        async with session.post(
            TOP_PATH, data=top_form(), headers={"Content-Type": FORM}
        ) as response:
            assert (await response.json(content_type=None))["error_response"]["code"] == 7
        async with session.post(
            TOP_PATH, data=top_form(), headers={"Content-Type": FORM}
        ) as response:
            assert response.status == 200
        chaos = {"kind": "chaos", "probability": 0.2}
        async with session.post("/_sandbox/faults", json=chaos) as response:
            assert [e["kind"] for e in (await response.json())["injected"]] == ["one_of"] * 2
        async with session.delete("/_sandbox/faults") as response:
            assert await response.json() == {"cleared": 2}
        async with session.get("/_sandbox/stats") as response:
            stats = await response.json()
    assert stats == {"calls": {LOGIN: 2}, "issued_tokens": 1, "faults_fired": 1}
    assert [request.api for request in state.requests] == [LOGIN, LOGIN]


async def test_control_accepts_every_kind_as_json(served: str, state: SandboxState) -> None:
    """Each fault's JSON form (as listed) can be posted back and builds an equal fault."""
    samples: list[Fault] = [
        Latency(0.5),
        Hang(10),
        Reset("rst"),
        HttpStatus(502, b"<p>down</p>"),
        Html(),
        Truncated(),
        Empty(),
        TopError.remote_timeout(),
        TencentError(),
        BindInternalError(),
        OneOf((HttpStatus(500), Reset())),
    ]
    async with aiohttp.ClientSession(served) as session:
        for fault in samples:
            spec = {**fault.to_json(), "times": None, "probability": 0.25}
            async with session.post("/_sandbox/faults", json=spec) as response:
                assert response.status == 201, await response.text()
    assert [entry.fault for entry in state.faults.active] == samples
    assert {(entry.remaining, entry.probability) for entry in state.faults.active} == {(None, 0.25)}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"kind": "meteor"}',
        b'{"kind": "latency"}',
        b'{"kind": "latency", "args": {"seconds": "soon"}}',
        b'{"kind": "latency", "args": {"seconds": 1, "extra": 2}}',
        b'{"kind": "reset", "time": 1}',
        b'{"kind": "reset", "times": 0}',
        b'{"kind": "reset", "probability": true}',
        b'{"kind": "reset", "api": ""}',
        b'{"kind": "chaos", "probability": 0.3, "times": 2}',
        b'{"kind": "one_of", "args": {"choices": [{"kind": "latency", "args": {"seconds": 1}},'
        b' {"kind": "reset"}]}}',
    ],
)
async def test_control_rejects_bad_injections(
    served: str, state: SandboxState, body: bytes
) -> None:
    """Malformed or invalid injection requests get 400 with an error message and change nothing."""
    async with (
        aiohttp.ClientSession(served) as session,
        session.post("/_sandbox/faults", data=body) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]
    assert state.faults.active == ()


# --- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reset", Injection(Reset(), None, None, 1.0)),
        ("reset:rst%0.1", Injection(Reset("rst"), None, None, 0.1)),
        ("http_status:502@AppGetTokenByWeiXin*3", Injection(HttpStatus(502), ACTION, 3, 1.0)),
        ("latency:0.5@" + LOGIN + "*2%0.5", Injection(Latency(0.5), LOGIN, 2, 0.5)),
        ("call_limited:60*1", Injection(TopError.call_limited(60), None, 1, 1.0)),
        (
            "top_error:15:Remote service error:isp.top-remote-connection-timeout",
            Injection(
                TopError(15, "Remote service error", "isp.top-remote-connection-timeout"),
                None,
                None,
                1.0,
            ),
        ),
        ("tencent_error", Injection(TencentError(), None, None, 1.0)),
        ("bind_internal_error@" + CHECKBIND, Injection(BindInternalError(), CHECKBIND, None, 1.0)),
        ("html:<p>busy</p>", Injection(Html(b"<p>busy</p>"), None, None, 1.0)),
        ("chaos%0.3", Injection(None, None, None, 0.3)),
    ],
)
def test_parse_fault_spec(text: str, expected: Injection) -> None:
    """KIND[:ARG...][@API][*TIMES][%PROBABILITY] parses into the injection it names."""
    assert parse_fault_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("meteor", "unknown fault kind 'meteor'"),
        ("latency", "missing 1 required positional argument: 'seconds'"),
        ("latency:x", "could not convert string to float"),
        ("reset:half", "mode must be close or rst"),
        ("empty:1", "empty takes at most 0 arguments"),
        ("reset*0", "times must be >= 1"),
        ("reset%2", "probability must be in 0..1"),
        ("chaos:1", "chaos takes no arguments"),
    ],
)
def test_parse_fault_spec_rejects(text: str, why: str) -> None:
    """Unknown kinds, missing or bad arguments, and bad times or probabilities are refused."""
    with pytest.raises(ValueError, match=re.escape(why)):
        parse_fault_spec(text)


def test_injection_from_json_defaults_to_one_time() -> None:
    """Over JSON, times defaults to 1 (like inject); chaos has no times."""
    assert injection_from_json({"kind": "empty"}) == Injection(Empty(), None, 1, 1.0)
    assert injection_from_json({"kind": "chaos"}) == Injection(None, None, None, 1.0)


def sandbox_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser


def test_cli_sets_faults_chaos_and_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """--fault, --chaos and --fault-seed build the state's fault plan, which is printed."""
    args = sandbox_parser().parse_args(
        [
            *("--fault", f"reset@{LOGIN}*2", "--fault", "latency:0.1%0.5", "--chaos", "0.3"),
            *("--fault-seed", "42", "--top-app", "k:s", "--tencent-app", "K:S"),
        ]
    )
    state = cli.state_from_args(args)
    active = state.faults.active
    assert [(entry.api, entry.fault, entry.remaining) for entry in active[:2]] == [
        (LOGIN, Reset(), 2),
        (None, Latency(0.1), None),
    ]
    assert [entry.fault.kind for entry in active[2:]] == ["one_of", "one_of"]
    assert state.fault_seed == 42
    assert state.faults.rng.random() == random.Random(42).random()
    assert capsys.readouterr().out.count("Fault: {") == 4


@pytest.mark.parametrize(
    "argv", [["--fault", "meteor"], ["--chaos", "1.5"], ["--chaos", "nan"], ["--fault-seed", "x"]]
)
def test_cli_rejects_bad_fault_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad fault specs, chaos probabilities and seeds are refused by the option parser."""
    with pytest.raises(SystemExit):
        sandbox_parser().parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_cli_help_documents_every_kind() -> None:
    """--help names the spec grammar and every fault kind."""
    text = sandbox_parser().format_help()
    for word in ("KIND[:ARG...][@API][*TIMES][%PROBABILITY]", "http_status", "call_limited"):
        assert word in text
    for word in ("bind_internal_error", "tencent_error", "truncated", "--chaos", "--fault-seed"):
        assert word in text


_CLI = (
    "import argparse, sys\n"
    "from gateway.sandbox import cli\n"
    "parser = argparse.ArgumentParser()\n"
    "cli.add_arguments(parser)\n"
    "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
)


async def test_cli_fault_out_of_process() -> None:
    """A --fault given on the command line hits the first call; /_sandbox/stats counts both calls."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLI,
        "--port",
        "0",
        "--top-app",
        f"{TOP_KEY}:{TOP_SECRET}",
        "--fault",
        f"http_status:503@{LOGIN}*1",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("Press Ctrl+C"):
            line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
            assert line, f"sandbox exited early: {lines}"
            lines.append(line.decode().strip())
        base_url = re.findall(r"TOP endpoint: +(\S+)/router/rest", "\n".join(lines))[0]
        async with aiohttp.ClientSession(base_url) as session:
            statuses = []
            for _ in range(2):
                body = top_form(now=time.time())  # the subprocess runs on the real clock
                async with session.post(
                    TOP_PATH, data=body, headers={"Content-Type": FORM}
                ) as response:
                    statuses.append(response.status)
            async with session.get("/_sandbox/stats") as response:
                stats = await response.json()
        assert statuses == [503, 200]
        assert stats == {"calls": {LOGIN: 2}, "issued_tokens": 1, "faults_fired": 1}
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
