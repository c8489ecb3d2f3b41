"""The client against a live dev-mode gateway: log in, hit the cache, forget, and every problem a client
team meets (400/401/403/404/422/429/502/503/504), with what each cost in vendor calls and waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from auth_gateway_client import AsyncGateway, Gateway, GatewayProblem, RetryPolicy
from auth_gateway_client.generated.api.auth import login
from auth_gateway_client.generated.api.operations import readyz
from auth_gateway_client.generated.client import AuthenticatedClient, Client
from auth_gateway_client.generated.models import (
    AiCloudLoginInputs,
    Kind,
    Problem,
    ProblemCode,
    Readiness,
    ReadinessStatus,
    WeChatLoginInputs,
)
from conftest import ALIGENIE, BIND, MINI_APP, WECHAT, LiveGateway

from gateway.sandbox.faults import Hang, Html, HttpStatus, TopError

WECHAT_USER = {
    "wx_open_id": "o-client-1",
    "nick_name": "client",
    "avatar": "https://example.com/a.png",
}
ALIGENIE_USER = {"user_id": "u-client-1", "utd_id": "utd-1", "schema": "s-1", "app_type": "IOS"}


def raised_by(call: Callable[[], object]) -> GatewayProblem:
    with pytest.raises(GatewayProblem) as raised:
        call()
    return raised.value


def test_providers_are_listed_typed_and_only_those_the_key_may_use(live: LiveGateway) -> None:
    with Gateway(live.url, live.key) as gateway:
        listed = {p.provider: p.kind for p in gateway.providers()}
    assert listed[WECHAT] is Kind.TENCENT_IOTAPPGETTOKENBYWEIXIN
    assert {WECHAT, MINI_APP, ALIGENIE, BIND} <= set(listed)
    with Gateway(live.url, live.wechat_key) as gateway:
        [only] = gateway.providers()
    assert only.provider == WECHAT
    assert only.input_schema.additional_properties["required"] == [
        "wx_open_id",
        "nick_name",
        "avatar",
    ]


def test_login_hits_the_cache_and_forget_drops_it(live: LiveGateway) -> None:
    before = live.calls()
    with Gateway(live.url, live.key) as gateway:
        first = gateway.login(WECHAT, WeChatLoginInputs(**WECHAT_USER))
        again = gateway.login(WECHAT, WECHAT_USER)  # a plain mapping is a body too
        assert live.calls() - before == 1
        gateway.forget(WECHAT, WECHAT_USER)
        renewed = gateway.login(WECHAT, WECHAT_USER)
        fresh = gateway.login(WECHAT, WECHAT_USER, fresh=True)
    assert (first.cached, again.cached, renewed.cached, fresh.cached) == (False, True, False, False)
    assert again.token == first.token != renewed.token
    assert first.kind is Kind.TENCENT_IOTAPPGETTOKENBYWEIXIN and isinstance(first.expires_at, int)
    assert live.calls() - before == 3


def test_the_caller_s_mistakes_are_raised_with_their_code_and_cost_no_vendor_call(
    live: LiveGateway,
) -> None:
    before = live.calls()
    with Gateway(live.url, live.key) as gateway:
        invalid = raised_by(lambda: gateway.login(WECHAT, {"wx_open_id": "x"}))
        unknown = raised_by(lambda: gateway.login("no-such-provider", WECHAT_USER))
    with Gateway(live.url, "not-a-key") as gateway:
        unauthorized = raised_by(lambda: gateway.login(WECHAT, WECHAT_USER))
    with Gateway(live.url, live.wechat_key) as gateway:
        forbidden = raised_by(lambda: gateway.login(ALIGENIE, ALIGENIE_USER))
    assert (invalid.status, invalid.code) == (400, "invalid_input")
    assert invalid.problem is not None
    assert [e.field for e in invalid.problem.errors] == ["nick_name", "avatar"]
    assert (unauthorized.status, unauthorized.code) == (401, "invalid_api_key")
    assert (forbidden.status, forbidden.code) == (403, "provider_forbidden")
    assert (unknown.status, unknown.code) == (404, "unknown_provider")
    assert not any(p.retryable for p in (invalid, unauthorized, forbidden, unknown))
    assert live.calls() == before


def test_a_vendor_refusal_is_422_and_remembered(live: LiveGateway) -> None:
    live.state.inject(None, TopError(41, "Invalid Arguments", "isv.invalid-parameter", "bad"))
    before, waits = live.calls(), []
    user = AiCloudLoginInputs(**{**ALIGENIE_USER, "user_id": "refused"})
    with Gateway(live.url, live.key, sleep=waits.append) as gateway:
        refused = raised_by(lambda: gateway.login(ALIGENIE, user))
        replayed = raised_by(lambda: gateway.login(ALIGENIE, user))
    assert (refused.status, refused.code) == (replayed.status, replayed.code)
    assert (refused.status, refused.code) == (422, "vendor_rejected_input")
    assert refused.problem is not None and refused.problem.upstream is not None
    assert refused.problem.upstream.sub_code == "isv.invalid-parameter"
    assert replayed.retry_after_s is not None and replayed.retry_after_s >= 1
    assert (live.calls() - before, waits) == (1, [])  # the replay did not reach the vendor


def test_a_rate_limited_caller_waits_retry_after_once_and_succeeds(live: LiveGateway) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        """The client's wait, passed on the gateway's clock (its rate limit reads that clock)."""
        waits.append(seconds)
        live.clock.advance(seconds)

    with Gateway(live.url, live.slow_key, sleep=sleep) as gateway:
        gateway.login(WECHAT, WECHAT_USER)
        result = gateway.login(WECHAT, WECHAT_USER)  # 429 Retry-After: 1, then served
    assert result.cached is True and waits == [1.0]
    with Gateway(live.url, live.slow_key, retry=RetryPolicy(max_retries=0)) as gateway:
        gateway.providers()  # GET /auth is not rate limited
        live.clock.advance(1.05)
        gateway.login(WECHAT, WECHAT_USER)
        limited = raised_by(lambda: gateway.login(WECHAT, WECHAT_USER))
    assert (limited.status, limited.code, limited.retry_after_s) == (429, "client_rate_limited", 1)
    assert limited.retryable


def test_a_vendor_quota_ban_longer_than_the_wait_limit_is_raised_at_once(live: LiveGateway) -> None:
    live.state.inject(None, TopError.call_limited(30))
    before, waits = live.calls(), []
    user = {**ALIGENIE_USER, "user_id": "banned"}
    with Gateway(live.url, live.key, sleep=waits.append) as gateway:
        banned = raised_by(lambda: gateway.login(ALIGENIE, user))
        detailed = login.sync_detailed(
            ALIGENIE, client=gateway.client, body=AiCloudLoginInputs(**user)
        )
    assert (banned.status, banned.code, banned.retry_after_s) == (429, "vendor_quota_exceeded", 30)
    assert detailed.status_code == 429 and 28 <= int(detailed.headers["Retry-After"]) <= 30
    assert (live.calls() - before, waits) == (1, [])  # banned on the gateway: no second call


def test_vendor_failures_are_502_503_504_and_the_open_circuit_costs_no_call(
    live: LiveGateway,
) -> None:
    waits: list[float] = []
    with Gateway(live.url, live.key, sleep=waits.append) as gateway:
        live.state.inject(None, Html())
        unreadable = raised_by(lambda: gateway.login(WECHAT, {**WECHAT_USER, "wx_open_id": "html"}))
        live.state.inject(None, Hang(5), times=None)
        timed_out = raised_by(
            lambda: gateway.login(BIND, {"open_id": "o-1", "product_key": "p", "user_type": "u"})
        )
        live.state.clear_faults()
        live.state.inject(None, HttpStatus(503), times=None)
        before = live.calls()
        for user in ("m-1", "m-2"):
            failed = raised_by(lambda user=user: gateway.login(MINI_APP, {"mini_app_id": user}))
            assert (failed.status, failed.code) == (502, "vendor_http_error")
        circuit = raised_by(lambda: gateway.login(MINI_APP, {"mini_app_id": "m-3"}))
    assert (unreadable.status, unreadable.code) == (502, "vendor_bad_response")
    assert (timed_out.status, timed_out.code, timed_out.retryable) == (504, "vendor_timeout", True)
    assert (circuit.status, circuit.code) == (503, "vendor_circuit_open")
    assert circuit.retry_after_s is not None and circuit.retry_after_s > 5  # beyond the wait limit
    assert live.calls() - before == 2 and waits == []


def test_the_generated_client_parses_a_405_and_a_draining_readiness(live: LiveGateway) -> None:
    """Answers no typed call of this client provokes, parsed by the generated code all the same."""
    client = AuthenticatedClient(base_url=live.url, token=live.key)
    wrong_method = httpx.put(f"{live.url}/auth/{WECHAT}", json=WECHAT_USER, timeout=10)
    parsed = login._parse_response(client=client, response=wrong_method)
    assert isinstance(parsed, Problem) and parsed.code is ProblemCode.METHOD_NOT_ALLOWED
    assert wrong_method.headers["X-Request-ID"] == parsed.request_id
    with live.draining():
        readiness = readyz.sync_detailed(client=Client(base_url=live.url))
    assert readiness.status_code == 503
    assert isinstance(readiness.parsed, Readiness)
    assert readiness.parsed.status is ReadinessStatus.DRAINING


def test_the_async_client_logs_in_and_raises_problems_alike(live: LiveGateway) -> None:
    async def scenario() -> tuple[bool, str]:
        async with AsyncGateway(live.url, live.key) as gateway:
            result = await gateway.login(WECHAT, {**WECHAT_USER, "wx_open_id": "o-async"})
            try:
                await gateway.login(WECHAT, {"wx_open_id": "x"})
            except GatewayProblem as problem:
                return result.cached, problem.code
        raise AssertionError("no problem raised")

    assert asyncio.run(scenario()) == (False, "invalid_input")
