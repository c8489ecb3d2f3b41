"""When vendors misbehave: retries, deadlines, shared quota bans, circuit breaking, outbound limits,
bind polling and a chaos run — against the sandbox's fault injection over real HTTP, real Redis."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.sandbox.faults import BindInternalError, HttpStatus, Reset, TencentError, TopError
from tests.api.conftest import APIS, BIND, INPUTS, MINI_APP, WECHAT, Keys, StartGateway, Vendors
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis


def auth(keys: Keys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.full}"}


async def post(
    gateway: TestClient, keys: Keys, provider: str, **changes: Any
) -> tuple[int, dict[str, Any], Any]:
    response = await gateway.post(
        f"/auth/{provider}", json={**INPUTS[provider], **changes}, headers=auth(keys)
    )
    return response.status, await response.json(), response.headers


@pytest.mark.parametrize(
    ("provider", "fault"),
    [
        (WECHAT, HttpStatus(502)),
        (WECHAT, Reset()),
        (WECHAT, TencentError("InternalError", "busy")),
        (MINI_APP, TopError.remote_timeout()),
        (MINI_APP, TopError.unavailable()),
        (BIND, BindInternalError()),
    ],
)
async def test_transient_failure_is_retried_with_a_fresh_signature(
    gateway: TestClient, keys: Keys, vendors: Vendors, provider: str, fault: Any
) -> None:
    """One transient fault is absorbed by a retry whose timestamp/nonce/request id and signature are new."""
    vendors.state.inject(APIS[provider], fault)
    status, body, _ = await post(gateway, keys, provider)
    assert status == 200, body
    sent = [r.params for r in vendors.state.requests]
    assert len(sent) == 2
    if provider == WECHAT:
        assert sent[0]["Nonce"] != sent[1]["Nonce"] and sent[0]["RequestId"] != sent[1]["RequestId"]
        assert sent[0]["Signature"] != sent[1]["Signature"]
    else:  # TOP has no nonce: the retry is rebuilt at send time (a later second signs differently)
        assert sent[1]["timestamp"] >= sent[0]["timestamp"]
    metrics = await (await gateway.get("/metrics")).text()
    assert f'gateway_vendor_retries_total{{provider="{provider}"}} 1.0' in metrics


async def test_persistent_transient_failure_gives_up_after_max_attempts(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A vendor that keeps answering 503 is tried max_attempts (5) times, then the caller gets 502."""
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    status, body, _ = await post(gateway, keys, WECHAT)
    assert (status, body["code"], body["retryable"]) == (502, "vendor_http_error", True)
    assert vendors.calls(WECHAT) == 5


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (
            TopError(41, "Invalid Arguments", "isv.invalid-parameter", "bad"),
            422,
            "vendor_rejected_input",
        ),
        (TopError(27, "Invalid session"), 422, "vendor_credential_invalid"),
        (TopError(25, "Invalid signature"), 502, "vendor_signature_rejected"),
        (TopError(31, "Invalid Timestamp"), 502, "vendor_clock_skew"),
        (
            TopError(11, "Insufficient isv permissions", "isv.permission-api-package-empty"),
            502,
            "vendor_permission_denied",
        ),
    ],
)
async def test_caller_credential_and_configuration_errors_are_never_retried(
    gateway: TestClient, keys: Keys, vendors: Vendors, fault: TopError, status: int, code: str
) -> None:
    """Errors of the caller, credential and configuration classes reach the caller after one vendor call."""
    vendors.state.inject(APIS[MINI_APP], fault)
    got, body, _ = await post(gateway, keys, MINI_APP)
    assert (got, body["code"]) == (status, code)
    assert vendors.calls(MINI_APP) == 1


async def test_deadline_bounds_retries_of_a_hanging_vendor(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """A vendor that never answers: attempts of timeout_s each, all within deadline_s, then 504."""
    vendors.state.latency_s = 5
    gateway = await start_gateway(**{WECHAT: {"timeout_s": 0.3, "deadline_s": 0.8}})
    started = time.monotonic()
    status, body, _ = await post(gateway, keys, WECHAT)
    elapsed = time.monotonic() - started
    assert (status, body["code"]) == (504, "vendor_timeout")
    assert 0.6 <= elapsed < 1.3
    assert 2 <= vendors.calls(WECHAT) <= 3


async def test_call_limited_bans_the_app_key_across_replicas(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """TOP code 7 bans the provider for the advertised seconds: every replica answers 429 at once, no
    vendor call, for any identity."""
    a, b = await start_gateway(), await start_gateway()
    vendors.state.inject(APIS[MINI_APP], TopError.call_limited(30))
    status, body, headers = await post(a, keys, MINI_APP)
    assert (status, body["code"], headers["Retry-After"]) == (429, "vendor_quota_exceeded", "30")
    for replica in (a, b):
        status, body, headers = await post(replica, keys, MINI_APP, mini_app_id="another-app")
        assert (status, body["code"]) == (429, "vendor_quota_exceeded")
        assert 28 <= int(headers["Retry-After"]) <= 30
    assert vendors.calls(MINI_APP) == 1
    assert (
        f'gateway_quota_ban_active{{provider="{MINI_APP}"}} 1.0'
        in await (await b.get("/metrics")).text()
    )
    status, _, _ = await post(a, keys, WECHAT)  # other providers are not banned
    assert status == 200


async def test_breaker_opens_serves_503_then_probes_and_closes(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """After min_calls failures the circuit opens (503 + Retry-After, no vendor call); after open_s one
    probe goes through and closes it."""
    breaker = {"min_calls": 4, "failure_ratio": 0.5, "open_s": 0.5, "window_s": 30}
    clock = ShiftedClock()
    gateway = await start_gateway(
        clock=clock, **{WECHAT: {"breaker": breaker, "retry": {"max_attempts": 1}}}
    )
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    for i in range(4):
        status, _, _ = await post(gateway, keys, WECHAT, wx_open_id=f"user-{i}")
        assert status == 502
    status, body, headers = await post(gateway, keys, WECHAT, wx_open_id="user-4")
    assert (status, body["code"], headers["Retry-After"]) == (503, "vendor_circuit_open", "1")
    assert vendors.calls(WECHAT) == 4
    assert (
        f'gateway_breaker_state{{provider="{WECHAT}"}} 2.0'
        in await (await gateway.get("/metrics")).text()
    )
    vendors.state.clear_faults()
    clock.advance(0.6)  # past open_s
    status, _, _ = await post(gateway, keys, WECHAT, wx_open_id="user-5")
    assert status == 200
    assert (
        f'gateway_breaker_state{{provider="{WECHAT}"}} 0.0'
        in await (await gateway.get("/metrics")).text()
    )


async def test_concurrency_cap_turns_excess_into_429_within_the_deadline(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """With max_concurrency 1 and a slow vendor, a second concurrent login waits, then gets 429 at its
    deadline without reaching the vendor."""
    vendors.state.latency_s = 0.6
    gateway = await start_gateway(
        **{WECHAT: {"limits": {"max_concurrency": 1}, "deadline_s": 0.4, "timeout_s": 2}}
    )
    results = await asyncio.gather(
        post(gateway, keys, WECHAT, wx_open_id="a"), post(gateway, keys, WECHAT, wx_open_id="b")
    )
    codes = sorted(body.get("code", "ok") for _, body, _ in results)
    assert "outbound_limited" in codes
    assert vendors.calls(WECHAT) == 1


async def test_rate_limit_is_shared_and_keeps_the_vendor_under_it(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """rate_per_s 5 with burst 2 over two replicas: 10 logins in a burst reach the vendor at most at that
    rate; the rest wait or get 429 outbound_limited."""
    limits = {"limits": {"rate_per_s": 5, "burst": 2}, "deadline_s": 0.5}
    a, b = await start_gateway(**{WECHAT: limits}), await start_gateway(**{WECHAT: limits})
    started = time.monotonic()
    results = await asyncio.gather(
        *(post((a, b)[i % 2], keys, WECHAT, wx_open_id=f"rate-{i}") for i in range(10))
    )
    elapsed = time.monotonic() - started
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {200, 429}
    assert vendors.calls(WECHAT) == statuses[200]
    assert (
        statuses[200] <= 2 + 5 * elapsed + 1
    )  # burst + rate over the elapsed time (+1 for rounding)
    assert statuses[429] >= 1


async def test_bind_polling_waits_until_bound_and_shares_one_loop(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """wait_s makes the gateway poll until bound; five concurrent waiters share one poll loop."""
    vendors.state.bind_after_polls = 2
    results = await asyncio.gather(*(post(gateway, keys, BIND, wait_s=5) for _ in range(5)))
    assert all(status == 200 and body["data"] == {"bound": True} for status, body, _ in results)
    assert vendors.calls(BIND) == 3


async def test_bind_polling_ends_with_the_wait(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """If the device is not bound within wait_s, the answer is bound: false after about wait_s."""
    vendors.state.bind_after_polls = 100
    started = time.monotonic()
    status, body, _ = await post(gateway, keys, BIND, wait_s=1)
    assert (status, body["data"]) == (200, {"bound": False})
    assert 0.4 <= time.monotonic() - started < 1.6
    assert 2 <= vendors.calls(BIND) <= 3


async def test_bind_wait_over_the_configured_cap_is_400(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """wait_s above bind_wait_max_s is refused naming the field; the vendor is not called."""
    status, body, _ = await post(gateway, keys, BIND, wait_s=60)
    assert (status, body["code"], body["errors"][0]["field"]) == (400, "invalid_input", "wait_s")
    assert vendors.state.requests == []


async def test_chaos_30_percent_transient_faults(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """With 30 % of vendor calls failing transiently, >= 99 % of valid requests succeed and vendor calls
    stay <= 1.5 x requests (400 distinct identities, 20 at a time)."""
    vendors.state.faults.chaos(0.3)
    requests = 400
    statuses: Counter[int] = Counter()
    semaphore = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with semaphore:
            status, _, _ = await post(gateway, keys, WECHAT, wx_open_id=f"chaos-{i}")
            statuses[status] += 1

    await asyncio.gather(*(one(i) for i in range(requests)))
    assert statuses[200] >= 0.99 * requests, statuses
    assert vendors.calls(WECHAT) <= 1.5 * requests
