"""A vendor error echoing the app secret, a signature or a token (issue 19) reaches no caller, no log line
and no failure record: not in the 422/502 answer, not in the cooldown replay, not in Redis."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from gateway.api.keys import SERVICE
from gateway.cache.keys import KeySpace
from gateway.sandbox.faults import Fault, TencentError, TopError
from tests.api.conftest import (
    APIS,
    INPUTS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
)
from tests.api.test_no_leaks import leaks, render_logs

pytestmark = pytest.mark.redis

SIG64 = secrets.token_hex(32).upper()  # what a TOP hmac-sha256 `sign` looks like
PLAIN_APP = "test-plain-secret-app"
# Not shaped like a token (lower-case words and dashes): only the configured-secret rule can find it.
PLAIN_SECRET = "correct-horse-battery-staple-" + "".join(secrets.choice("klmnop") for _ in range(8))


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def post(
    gateway: TestClient, provider: str, body: dict[str, Any], key: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(f"/auth/{provider}", json=body, headers=auth(key, **headers))
    return response.status, await response.json()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The rendered log lines with the safety net off (no value redaction): what call sites log."""
    with render_logs() as buffer:
        yield buffer


async def stored_failures(raw_redis: aioredis.Redis, key_prefix: str) -> list[bytes]:
    """Every failure record the gateway wrote under this test's prefix, as stored."""
    found = [await raw_redis.get(k) async for k in raw_redis.scan_iter(match=key_prefix + "*:fail")]
    return [value for value in found if value is not None]


ECHO_CASES = ("top-422", "tencent-422", "top-502", "tencent-502")


def echo_faults(vendors: Vendors) -> list[tuple[str, Fault, int, str]]:
    """(provider, injected vendor error quoting the app secret and a signature, status, code)."""
    top, tencent = vendors.top_secret, vendors.tencent_secret
    return [
        (
            MINI_APP,
            TopError(
                50, "Remote service error", "isv.invalid-parameter", f"非法参数 {top} {SIG64}"
            ),
            422,
            "vendor_rejected_input",
        ),
        (
            WECHAT,
            TencentError("InvalidParameterValue", f"AppSecret {tencent} does not sign {SIG64}"),
            422,
            "vendor_rejected_input",
        ),
        (
            MINI_APP,
            TopError(25, f"Invalid signature: {SIG64} with {top}", "isv.invalid-signature"),
            502,
            "vendor_signature_rejected",
        ),
        (
            WECHAT,
            TencentError("FailedOperation.Unpublished", f"{tencent}/{SIG64}"),
            502,
            "vendor_error",
        ),
    ]


@pytest.mark.parametrize("case", [pytest.param(i, id=name) for i, name in enumerate(ECHO_CASES)])
async def test_vendor_echo_of_secret_or_signature_reaches_no_one(
    gateway: TestClient,
    keys: Keys,
    vendors: Vendors,
    raw_redis: aioredis.Redis,
    key_prefix: str,
    logs: io.StringIO,
    case: int,
) -> None:
    """A vendor error quoting the app secret and a 64-hex signature is answered (422/502), replayed and
    stored without either, and no log line holds them; the vendor's other words survive."""
    provider, fault, status, code = echo_faults(vendors)[case]
    vendors.state.inject(APIS[provider], fault, times=None)
    first_status, first = await post(gateway, provider, INPUTS[provider], keys.full)
    second_status, second = await post(gateway, provider, INPUTS[provider], keys.full)
    assert (first_status, first["code"]) == (status, code)
    assert (second_status, second["code"]) == (status, code)
    upstream = first["upstream"]
    assert "[redacted]" in orjson.dumps(upstream).decode()
    if provider == MINI_APP and status == 422:
        assert upstream == {
            "code": "50",
            "sub_code": "isv.invalid-parameter",
            "message": "非法参数 [redacted] [redacted]",
        }
    if status == 422:  # remembered: answered again from the failure record, the same redacted words
        assert vendors.calls(provider) == 1 and "remembered" in second["detail"]
        assert second["upstream"] == upstream
        [record] = await stored_failures(raw_redis, key_prefix)
        assert b"[redacted]" in record
    else:
        assert await stored_failures(raw_redis, key_prefix) == []
    secrets_seen = {"app secret": [vendors.top_secret, vendors.tencent_secret], "sign": [SIG64]}
    for where, text in [
        ("first answer", orjson.dumps(first).decode()),
        ("second answer", orjson.dumps(second).decode()),
        ("logs", logs.getvalue()),
        ("store", b"\n".join(await stored_failures(raw_redis, key_prefix)).decode()),
    ]:
        assert not leaks(secrets_seen, text), f"{where}: {leaks(secrets_seen, text)}"
    # The capture is real: both requests were logged through the production pipeline.
    events = [orjson.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    assert [e["status"] for e in events if e.get("event") == "request"] == [status, status]


@pytest.fixture
async def plain_secret_gateway(start_gateway: StartGateway, vendors: Vendors) -> TestClient:
    """A gateway whose WeChat provider has a secret that looks like words, not like a token."""
    vendors.state.tencent_apps[PLAIN_APP] = PLAIN_SECRET
    return await start_gateway(**{WECHAT: {"app_key": PLAIN_APP, "app_secret": PLAIN_SECRET}})


async def test_a_secret_not_shaped_like_a_token_is_redacted_by_name(
    plain_secret_gateway: TestClient,
    keys: Keys,
    vendors: Vendors,
    raw_redis: aioredis.Redis,
    key_prefix: str,
    logs: io.StringIO,
) -> None:
    """A secret no shape rule recognises is still taken out of the answer, the replay, the store and logs."""
    vendors.state.inject(
        APIS[WECHAT], TencentError("InvalidParameterValue", f"AppSecret {PLAIN_SECRET} rejected")
    )
    answers = [await post(plain_secret_gateway, WECHAT, INPUTS[WECHAT], keys.full) for _ in (1, 2)]
    assert [(status, body["code"]) for status, body in answers] == [
        (422, "vendor_rejected_input")
    ] * 2
    assert answers[0][1]["upstream"]["message"] == "AppSecret [redacted] rejected"
    assert answers[1][1]["upstream"] == answers[0][1]["upstream"]
    [record] = await stored_failures(raw_redis, key_prefix)
    everything = [orjson.dumps(answers).decode(), record.decode(), logs.getvalue()]
    assert not leaks({"secret": [PLAIN_SECRET]}, "\n".join(everything))


async def test_a_failure_record_holding_a_secret_is_replayed_redacted(
    plain_secret_gateway: TestClient,
    keys: Keys,
    vendors: Vendors,
    raw_redis: aioredis.Redis,
) -> None:
    """A failure record written before this redaction existed (secret and signature in it) is answered
    from the store without either, and the vendor is not called."""
    service = plain_secret_gateway.app[SERVICE]
    provider = service.providers[WECHAT]
    key = service.cache_key(provider, provider.parse_inputs(INPUTS[WECHAT]))
    record = {
        "code": "vendor_rejected_input",
        "detail": f"the vendor answered {PLAIN_SECRET}",
        "upstream": {"code": "InvalidParameterValue", "sub_code": None, "message": f"sign {SIG64}"},
        "until": time.time() + 30,
    }
    await raw_redis.set(KeySpace.failure(key), orjson.dumps(record), px=30_000)
    status, body = await post(plain_secret_gateway, WECHAT, INPUTS[WECHAT], keys.full)
    assert (status, body["code"]) == (422, "vendor_rejected_input")
    assert body["detail"].startswith("the vendor answered [redacted] (remembered")
    assert body["upstream"]["message"] == "sign [redacted]"
    assert vendors.calls(WECHAT) == 0
