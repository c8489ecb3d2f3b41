"""The four kinds end to end: real HTTP to the sandbox, credentials cached in a real Redis."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from tests.api.conftest import (
    ALIGENIE,
    ALIGENIE_TTL_S,
    BIND,
    INPUTS,
    KINDS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
)

pytestmark = pytest.mark.redis


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def login(
    gateway: TestClient, keys: Keys, provider: str, **headers: str
) -> dict[str, object]:
    response = await gateway.post(
        f"/auth/{provider}", json=INPUTS[provider], headers={**auth(keys.full), **headers}
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, object] = await response.json()
    return body


async def test_wechat_login_then_cached(gateway: TestClient, keys: Keys, vendors: Vendors) -> None:
    """The first call reaches Tencent and returns its token and expiry; the identical second call is cached."""
    before = int(time.time())
    first = await login(gateway, keys, WECHAT)
    assert first == {
        "provider": WECHAT,
        "kind": KINDS[WECHAT],
        "token": vendors.state.issued_tokens[0],
        "expires_at": first["expires_at"],
        "cached": False,
        "data": {},
        "upstream_request_id": vendors.state.requests[0].params["RequestId"],
    }
    assert before + 7200 <= int(first["expires_at"]) <= int(time.time()) + 7200  # type: ignore[call-overload]
    second = await login(gateway, keys, WECHAT)
    assert second == {**first, "cached": True}
    assert vendors.calls(WECHAT) == 1


async def test_miniapp_session(gateway: TestClient, keys: Keys, vendors: Vendors) -> None:
    """Zebra mini-app auth returns the session id with session_expire as Unix seconds."""
    body = await login(gateway, keys, MINI_APP)
    assert body["token"] == vendors.state.issued_tokens[0]
    assert abs(int(body["expires_at"]) - (time.time() + 7200)) < 5  # type: ignore[call-overload]
    assert (await login(gateway, keys, MINI_APP))["cached"] is True
    assert vendors.calls(MINI_APP) == 1


async def test_aligenie_login_uses_configured_lifetime(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """AliGenie returns no expiry: the provider's token_ttl_s sets it, and the user fields are normalized."""
    body = await login(gateway, keys, ALIGENIE)
    assert body["token"] == vendors.state.issued_tokens[0]
    assert abs(int(body["expires_at"]) - (time.time() + ALIGENIE_TTL_S)) < 5  # type: ignore[call-overload]
    data = body["data"]
    assert isinstance(data, dict)
    assert set(data) == {"user_id", "is_new", "is_temp_user", "is_authenticated", "device_ids"}
    assert isinstance(data["user_id"], str) and data["user_id"]


async def test_bind_check_caches_only_bound(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """bound=false is never cached (the app keeps polling); bound=true is."""
    vendors.state.bind_after_polls = 1
    first = await login(gateway, keys, BIND)
    assert (first["token"], first["expires_at"], first["data"], first["cached"]) == (
        None,
        None,
        {"bound": False},
        False,
    )
    second = await login(gateway, keys, BIND)
    assert (second["data"], second["cached"]) == ({"bound": True}, False)
    third = await login(gateway, keys, BIND)
    assert (third["data"], third["cached"]) == ({"bound": True}, True)
    assert vendors.calls(BIND) == 2


async def test_delete_forgets_the_credential(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """DELETE answers 204 and the next call goes to the vendor for a new token."""
    first = await login(gateway, keys, WECHAT)
    response = await gateway.delete(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    assert response.status == 204
    again = await login(gateway, keys, WECHAT)
    assert again["cached"] is False and again["token"] != first["token"]
    assert vendors.calls(WECHAT) == 2


async def test_no_cache_forces_a_fresh_call_and_updates_the_cache(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """Cache-Control: no-cache calls the vendor even on a hit, and later hits serve the new token."""
    first = await login(gateway, keys, WECHAT)
    fresh = await login(gateway, keys, WECHAT, **{"Cache-Control": "no-cache"})
    assert fresh["cached"] is False and fresh["token"] != first["token"]
    assert (await login(gateway, keys, WECHAT))["token"] == fresh["token"]
    assert vendors.calls(WECHAT) == 2


async def test_identity_fields_decide_the_cache_entry(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """Another WeChat user gets its own login; a changed nickname for the same user is a hit."""
    await login(gateway, keys, WECHAT)
    other = {**INPUTS[WECHAT], "wx_open_id": "o-user-other"}
    response = await gateway.post(f"/auth/{WECHAT}", json=other, headers=auth(keys.full))
    assert (await response.json())["cached"] is False
    renamed = {**INPUTS[WECHAT], "nick_name": "renamed"}
    response = await gateway.post(f"/auth/{WECHAT}", json=renamed, headers=auth(keys.full))
    assert (await response.json())["cached"] is True
    assert vendors.calls(WECHAT) == 2


async def test_concurrent_identical_misses_share_one_vendor_call(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """Twenty identical cold requests in one process make one vendor call and get one token."""
    vendors.state.latency_s = 0.3
    bodies = await asyncio.gather(*(login(gateway, keys, WECHAT) for _ in range(20)))
    assert vendors.calls(WECHAT) == 1
    assert {b["token"] for b in bodies} == {vendors.state.issued_tokens[0]}


async def test_redis_holds_no_plain_identifier_and_keeps_until_vendor_expiry(
    gateway: TestClient, keys: Keys, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    """The Redis key is a keyed hash (no open id in it); it lives until the vendor's expiry, served
    as fresh until min(60 s, 10 %) before it."""
    body = await login(gateway, keys, WECHAT)
    found = [k async for k in raw_redis.scan_iter(match=key_prefix + "*cred")]
    assert len(found) == 1
    key = found[0].decode()
    assert INPUTS[WECHAT]["wx_open_id"] not in key and "wechat" not in key
    assert key.startswith(key_prefix + "v1:{") and key.endswith("}:cred")
    lifetime = int(body["expires_at"]) - time.time()  # type: ignore[call-overload]
    ttl_s = await raw_redis.pttl(key) / 1000
    assert lifetime - 3 < ttl_s <= lifetime + 1
    stored = orjson.loads(await raw_redis.get(key))
    assert stored["serve_until"] == pytest.approx(stored["expires_at"] - 60, abs=0.01)
    assert INPUTS[WECHAT]["wx_open_id"] not in orjson.dumps(stored).decode()


async def test_short_lifetime_gets_a_proportional_margin(
    gateway: TestClient, keys: Keys, vendors: Vendors, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    """A 30 s token is served as fresh for 27 s (10 % margin), not 'born expired' by a fixed 60 s."""
    vendors.state.token_ttl_s = 30
    await login(gateway, keys, WECHAT)
    [key] = [k async for k in raw_redis.scan_iter(match=key_prefix + "*cred")]
    stored = orjson.loads(await raw_redis.get(key))
    assert stored["serve_until"] - stored["issued_at"] == pytest.approx(27, abs=1.01)
    assert stored["serve_until"] == pytest.approx(stored["expires_at"] - 3, abs=0.1)


async def test_store_down_still_answers_from_the_vendor(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """With Redis unreachable a login still succeeds, the in-process cache answers the repeat,
    and DELETE says 503."""
    from tests.api.conftest import closed_port

    gateway = await start_gateway(redis=f"redis://127.0.0.1:{closed_port()}/0")
    first = await login(gateway, keys, WECHAT)
    assert first["cached"] is False
    assert await login(gateway, keys, WECHAT) == {**first, "cached": True}
    assert vendors.calls(WECHAT) == 1
    response = await gateway.delete(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    assert response.status == 503
    problem = await response.json()
    assert (problem["code"], problem["retryable"]) == ("cache_unavailable", True)
    ready = await (await gateway.get("/readyz")).json()
    assert (ready["status"], ready["store"], ready["invalidation"]) == ("ready", "down", "down")
