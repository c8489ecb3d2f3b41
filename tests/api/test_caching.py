"""Credential cache behaviour end to end: refresh ahead, stale serving, failure cooldown, encryption
at rest, invalidation across replicas, vendor clock skew — real HTTP, real Redis."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from gateway.api.keys import SERVICE
from gateway.app import create_app
from gateway.sandbox.faults import HttpStatus, TencentError
from tests.api.conftest import APIS, INPUTS, WECHAT, Keys, StartGateway, Vendors, gateway_settings
from tests.helpers import ShiftedClock, eventually

pytestmark = pytest.mark.redis


async def login(
    gateway: TestClient, keys: Keys, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(
        f"/auth/{WECHAT}",
        json=body or INPUTS[WECHAT],
        headers={"Authorization": f"Bearer {keys.full}"},
    )
    return response.status, await response.json()


async def test_refresh_ahead_serves_at_once_and_renews_in_background(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """Inside the refresh window a hit answers with the current token and one background call renews it."""
    vendors.state.token_ttl_s = 100  # fresh until 90 s; refresh window starts between 70 and 80 s
    clock = ShiftedClock()
    gateway = await start_gateway(clock=clock)
    _, first = await login(gateway, keys)
    clock.offset = 85
    vendors.state.hold = asyncio.Event()  # the renewal cannot finish until the test lets it
    async with asyncio.timeout(5):  # a hit that waited for the renewal would wait for ever
        answers = await asyncio.gather(*(login(gateway, keys) for _ in range(10)))
    assert all(status == 200 and body == {**first, "cached": True} for status, body in answers)
    await eventually(lambda: vendors.calls(WECHAT) == 2)  # the renewal is at the (held) vendor
    service = gateway.app[SERVICE]
    provider = service.provider(WECHAT)
    key = service.cache_key(provider, provider.parse_inputs(INPUTS[WECHAT]))
    vendors.state.hold.set()

    def renewed_in_cache() -> bool:
        entry = service.cache.local_entry(key)
        return entry is not None and entry.token in vendors.state.issued_tokens[1:]

    await eventually(renewed_in_cache)
    _, renewed = await login(gateway, keys)
    assert renewed["token"] == vendors.state.issued_tokens[1] != first["token"]
    assert renewed["cached"] is True
    assert vendors.calls(WECHAT) == 2


async def test_stale_credential_covers_a_failing_vendor_until_its_expiry(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """Past serve-until but before expiry a vendor failure is answered with the old token, marked stale;
    past the vendor's expiry the failure shows."""
    vendors.state.token_ttl_s = 100
    clock = ShiftedClock()
    gateway = await start_gateway(clock=clock)
    _, first = await login(gateway, keys)
    vendors.state.inject(APIS[WECHAT], HttpStatus(503), times=None)
    clock.offset = 95
    status, stale = await login(gateway, keys)
    assert status == 200
    assert stale == {**first, "cached": True, "stale": True}
    clock.offset = 101
    status, problem = await login(gateway, keys)
    assert (status, problem["code"]) == (502, "vendor_http_error")


async def test_caller_class_failure_is_remembered_per_identity(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A 422 from the vendor is answered again from memory (with Retry-After) without a vendor call;
    another identity is unaffected; DELETE clears the memory."""
    vendors.state.inject(APIS[WECHAT], TencentError("InvalidParameterValue", "bad avatar"))
    status, first = await login(gateway, keys)
    assert (status, first["code"]) == (422, "vendor_rejected_input")
    response = await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    again = await response.json()
    assert response.status == 422 and 1 <= int(response.headers["Retry-After"]) <= 30
    assert again["upstream"] == first["upstream"] and "remembered" in again["detail"]
    assert vendors.calls(WECHAT) == 1
    status, _ = await login(gateway, keys, {**INPUTS[WECHAT], "wx_open_id": "someone-else"})
    assert status == 200
    await gateway.delete(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    status, _ = await login(gateway, keys)
    assert status == 200
    assert vendors.calls(WECHAT) == 3


async def test_encryption_keys_leave_no_token_in_redis(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    raw_redis: aioredis.Redis,
) -> None:
    """With encryption_keys set, nothing in Redis contains the token, and the cached answer still reads."""
    settings = gateway_settings(vendors, keys, redis_url, key_prefix).model_copy(
        update={
            "encryption_keys": [
                __import__("pydantic").SecretStr("k1:" + base64.b64encode(os.urandom(32)).decode())
            ]
        }
    )
    gateway = await aiohttp_client(create_app(settings))
    _, first = await login(gateway, keys)
    values = [await raw_redis.get(k) async for k in raw_redis.scan_iter(match=key_prefix + "*")]
    assert values and all(first["token"].encode() not in v for v in values if v)
    assert all(INPUTS[WECHAT]["wx_open_id"].encode() not in v for v in values if v)
    # A second replica with the same key reads what the first sealed.
    other = await aiohttp_client(create_app(settings))
    _, second = await login(other, keys)
    assert second == {**first, "cached": True}
    assert vendors.calls(WECHAT) == 1


async def test_delete_on_one_replica_is_honoured_by_another(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """Replica B's in-process cache drops the credential replica A forgot, as soon as A's announcement
    arrives: B's next login goes to the vendor."""
    a, b = await start_gateway(), await start_gateway()
    for replica in (a, b):  # both subscriptions live
        await eventually(lambda r=replica: r.app[SERVICE].invalidation.live)
    _, first = await login(a, keys)
    _, seen_by_b = await login(b, keys)
    assert seen_by_b["cached"] is True
    dropped = b.app[SERVICE].invalidation.dropped  # A's announcements B has handled so far
    response = await a.delete(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    assert response.status == 204
    await eventually(lambda: b.app[SERVICE].invalidation.dropped == dropped + 1)
    _, after = await login(b, keys)
    assert after["cached"] is False and after["token"] != first["token"]
    assert vendors.calls(WECHAT) == 2


async def test_refresh_on_one_replica_replaces_the_other_replicas_copy(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """A forced refresh on replica A is what replica B serves next, not B's older in-process copy."""
    a, b = await start_gateway(), await start_gateway()
    for replica in (a, b):
        await eventually(lambda r=replica: r.app[SERVICE].invalidation.live)
    await login(a, keys)
    await login(b, keys)
    dropped = b.app[SERVICE].invalidation.dropped
    response = await a.post(
        f"/auth/{WECHAT}",
        json=INPUTS[WECHAT],
        headers={"Authorization": f"Bearer {keys.full}", "Cache-Control": "no-cache"},
    )
    refreshed = await response.json()
    await eventually(lambda: b.app[SERVICE].invalidation.dropped == dropped + 1)  # A's refresh
    _, from_b = await login(b, keys)
    assert from_b["token"] == refreshed["token"] and from_b["cached"] is True


async def test_a_replica_skips_its_own_invalidation_and_keeps_the_entry_it_wrote(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """Replica A's writes are announced: B drops its copy each time, while A gets its own message back
    and skips it — the entry in A's in-process cache is still the very object A wrote."""
    a, b = await start_gateway(), await start_gateway()
    service_a, service_b = a.app[SERVICE], b.app[SERVICE]
    await eventually(lambda: service_a.invalidation.live and service_b.invalidation.live)
    provider = service_a.provider(WECHAT)
    key = service_a.cache_key(provider, provider.parse_inputs(INPUTS[WECHAT]))
    await login(a, keys)  # a cold miss on A: written and announced
    await eventually(
        lambda: (service_a.invalidation.ignored, service_b.invalidation.dropped) == (1, 1)
    )
    _, on_b = await login(b, keys)  # B's hit from Redis, now in B's in-process cache too
    assert on_b["cached"] is True and service_b.cache.local_entry(key) is not None
    response = await a.post(
        f"/auth/{WECHAT}",
        json=INPUTS[WECHAT],
        headers={"Authorization": f"Bearer {keys.full}", "Cache-Control": "no-cache"},
    )
    refreshed = await response.json()
    written = service_a.cache.local_entry(key)
    assert written is not None and written.token == refreshed["token"] != on_b["token"]
    await eventually(
        lambda: (service_a.invalidation.ignored, service_b.invalidation.dropped) == (2, 2)
    )
    assert service_a.cache.local_entry(key) is written  # A's own message left its entry alone
    assert service_b.cache.local_entry(key) is None
    assert (service_a.invalidation.dropped, service_b.invalidation.ignored) == (0, 0)
    _, from_b = await login(b, keys)
    assert (from_b["token"], from_b["cached"]) == (refreshed["token"], True)
    assert vendors.calls(WECHAT) == 2


async def test_vendor_clock_skew_is_corrected_from_its_date_header(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """A vendor whose clock runs an hour ahead: its absolute ExpireAt is shifted into our clock."""
    vendors.state.clock = lambda: time.time() + 3600
    vendors.state.tencent_skew_s = 7200  # let the skewed vendor accept our timestamps
    gateway = await start_gateway()
    _, body = await login(gateway, keys)
    assert abs(body["expires_at"] - (time.time() + 7200)) < 5  # not +3600 more


async def test_store_round_trips_of_a_cold_miss_and_of_another_replicas_hit(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors, redis_url: str, key_prefix: str
) -> None:
    """Another replica's hit is one plain GET: no script, no lease, no failure or ban record. A cold
    miss sends Redis four commands: that GET, finding nothing; one script that takes the lease and reads
    the entry (again: it may have been written since), the cooldown and ban records; one that takes a
    slot of the provider's outbound rate (on by default); one that writes the answer, hands back the
    lease and announces it."""
    first, second = await start_gateway(), await start_gateway()
    await login(first, keys, {**INPUTS[WECHAT], "wx_open_id": "warm-up"})  # scripts now loaded
    observer = aioredis.from_url(redis_url)
    sent: list[list[str]] = []
    try:
        async with observer.monitor() as monitor:

            async def record() -> None:
                async for info in monitor.listen():
                    if info["client_type"] != "lua" and key_prefix in info["command"]:
                        sent[-1].append(info["command"])

            recorder = asyncio.ensure_future(record())
            answers = []
            for replica in (first, second):
                sent.append([])
                answers.append(await login(replica, keys, {**INPUTS[WECHAT], "wx_open_id": "cold"}))
                # MONITOR reports in order: once this marker GET shows, all before it did.
                marker = f"{key_prefix}marker-{len(sent)}"
                await observer.get(marker)
                await eventually(lambda m=marker: any(m in command for command in sent[-1]))
                sent[-1] = [command.split()[0].upper() for command in sent[-1][:-1]]
            recorder.cancel()
    finally:
        await observer.aclose()
    assert [(status, body["cached"]) for status, body in answers] == [(200, False), (200, True)]
    assert answers[0][1]["token"] == answers[1][1]["token"]
    assert sent == [["GET", "EVALSHA", "EVALSHA", "EVALSHA"], ["GET"]], sent
    assert vendors.calls(WECHAT) == 2
