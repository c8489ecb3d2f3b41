"""GET /auth, health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import INPUTS, KINDS, WECHAT, Keys

pytestmark = pytest.mark.redis


async def test_list_providers_shows_only_allowed_ones_with_schema(
    gateway: TestClient, keys: Keys
) -> None:
    """A key sees the providers it may use, each with its kind and input JSON Schema."""
    response = await gateway.get("/auth", headers={"Authorization": f"Bearer {keys.wechat_only}"})
    assert response.status == 200
    [entry] = (await response.json())["providers"]
    assert (entry["provider"], entry["kind"]) == (WECHAT, KINDS[WECHAT])
    schema = entry["input_schema"]
    assert schema["required"] == ["wx_open_id", "nick_name", "avatar"]
    assert schema["additionalProperties"] is False
    everything = await (
        await gateway.get("/auth", headers={"Authorization": f"Bearer {keys.full}"})
    ).json()
    assert {p["provider"] for p in everything["providers"]} == set(KINDS)
    aligenie = next(p for p in everything["providers"] if p["provider"] == "aligenie-login")
    assert "schema" in aligenie["input_schema"]["properties"]  # the wire name, not the Python one


async def test_list_providers_needs_a_key(gateway: TestClient) -> None:
    """GET /auth without a key is a 401 problem."""
    response = await gateway.get("/auth")
    assert response.status == 401


async def test_health_and_readiness(gateway: TestClient) -> None:
    """healthz answers ok; readyz reports the store up."""
    assert await (await gateway.get("/healthz")).json() == {"status": "ok"}
    for _ in range(100):  # the invalidation subscription comes up in the background at start-up
        ready = await (await gateway.get("/readyz")).json()
        if ready["invalidation"] == "live":
            break
        await asyncio.sleep(0.02)
    assert ready["status"] == "ready"
    assert (ready["store"], ready["invalidation"]) == ("up", "live")
    assert isinstance(ready["store_state_for_s"], float)


async def test_metrics_count_requests_without_identities(gateway: TestClient, keys: Keys) -> None:
    """/metrics counts a login by provider, outcome and status class, and never shows the identity."""
    await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {keys.full}"}
    )
    await gateway.post(
        "/auth/unknown-thing", json={}, headers={"Authorization": f"Bearer {keys.full}"}
    )
    text = await (await gateway.get("/metrics")).text()
    assert (
        f'gateway_requests_total{{outcome="ok",provider="{WECHAT}",status_class="2xx"}} 1.0' in text
    )
    assert f'gateway_vendor_calls_total{{outcome="ok",provider="{WECHAT}"}} 1.0' in text
    assert f'gateway_cache_lookups_total{{provider="{WECHAT}",result="miss"}} 1.0' in text
    assert "unknown-thing" not in text
    assert INPUTS[WECHAT]["wx_open_id"] not in text
