"""Careless and hostile callers against the vendor quota: the default limits, and bind checks that wait
(`wait_s`) — each test counts the vendor calls the sandbox received."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.api.conftest import (
    BIND,
    INPUTS,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    gateway_settings,
    provider_config,
    sha256_hex,
)

pytestmark = pytest.mark.redis


async def post(
    gateway: TestClient, key: str, provider: str, **changes: Any
) -> tuple[int, dict[str, Any], Any]:
    response = await gateway.post(
        f"/auth/{provider}",
        json={**INPUTS[provider], **changes},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status, await response.json(), response.headers


def default_limits_settings(vendors: Vendors, keys: Keys, redis_url: str, prefix: str) -> Settings:
    """The tests' providers and two clients with every limit left at its default."""
    providers = provider_config(vendors)
    for config in providers.values():
        del config["limits"]
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix.rstrip(":"),
        providers=providers,
        clients={
            "flooder": {"api_key_sha256": sha256_hex(keys.full), "providers": ["*"]},
            "neighbour": {"api_key_sha256": sha256_hex(keys.wechat_only), "providers": [WECHAT]},
        },
    )


async def test_default_limits_stop_one_clients_flood_and_spare_the_other_client(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """With the default config, 300 distinct-identity logins at once from one client get 429 once past
    its default vendor-call limit (the vendor sees only the burst), while another client's logins keep
    succeeding; cached answers are not limited."""
    gateway = await aiohttp_client(
        create_app(default_limits_settings(vendors, keys, redis_url, key_prefix))
    )
    flood = await asyncio.gather(
        *(post(gateway, keys.full, WECHAT, wx_open_id=f"flood-{n}") for n in range(300))
    )
    statuses = Counter(status for status, _, _ in flood)
    assert set(statuses) == {200, 429}, statuses
    assert statuses[200] <= 60, statuses  # the default burst (40) and 20/s of refill meanwhile
    limited = [body for status, body, _ in flood if status == 429]
    assert {body["code"] for body in limited} == {"client_rate_limited"}
    assert all(int(headers["Retry-After"]) >= 1 for status, _, headers in flood if status == 429)
    assert vendors.calls(WECHAT) == statuses[200]

    for n in range(5):
        status, _, _ = await post(gateway, keys.wechat_only, WECHAT, wx_open_id=f"neighbour-{n}")
        assert status == 200
    # Hits are free: the flooder's first, now cached, identity answers again and again.
    first_ok = next(n for n, (status, _, _) in enumerate(flood) if status == 200)
    for _ in range(50):
        status, body, _ = await post(gateway, keys.full, WECHAT, wx_open_id=f"flood-{first_ok}")
        assert (status, body["cached"]) == (200, True)


async def test_a_short_wait_joining_a_longer_poll_returns_on_its_own_deadline(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A wait_s=1 bind check for an identity another caller polls with wait_s=4 shares that poll but
    answers "not bound yet" within ~1.5 s; the longer one goes on until no poll fits in its wait."""
    vendors.state.bind_after_polls = 100
    started = time.monotonic()
    longer = asyncio.ensure_future(post(gateway, keys.full, BIND, wait_s=4))
    await asyncio.sleep(0.1)
    status, body, _ = await post(gateway, keys.full, BIND, wait_s=1)
    shorter_took = time.monotonic() - started - 0.1
    assert (status, body["data"]) == (200, {"bound": False})
    assert shorter_took < 1.5, shorter_took
    status, body, _ = await longer
    assert (status, body["data"]) == (200, {"bound": False})
    assert 2.0 <= time.monotonic() - started < 4.5  # the last poll fitting in 4 s is at ~2.4 s
    assert (
        vendors.calls(BIND) <= 5
    )  # one loop's polls at 0, 0.5, 1.25, 2.4 and ~4 s, not two loops'


async def test_waiting_polls_beyond_the_clients_cap_get_429_and_the_vendor_sees_only_the_capped(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """100 concurrent wait_s=5 bind checks for distinct identities from one client: past the default
    cap of 20 waiting polls they get 429 polls_limited with Retry-After, and the vendor sees at most
    20 x (polls per wait_s) calls."""
    vendors.state.bind_after_polls = 1000
    answers = await asyncio.gather(
        *(post(gateway, keys.full, BIND, open_id=f"device-{n}", wait_s=5) for n in range(100))
    )
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {200: 20, 429: 80}, statuses
    limited = [(body, headers) for status, body, headers in answers if status == 429]
    assert {body["code"] for body, _ in limited} == {"polls_limited"}
    assert all(1 <= int(headers["Retry-After"]) <= 6 for _, headers in limited)
    assert vendors.calls(BIND) <= 20 * 5, vendors.calls(BIND)


async def test_each_poll_is_charged_to_the_clients_vendor_call_limit(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """A client allowed 2 vendor calls (burst 2, hardly any refill) polls a never-bound device: its
    third poll is refused, the caller gets 429 client_rate_limited, and the vendor saw 2 calls."""
    settings = gateway_settings(vendors, keys, redis_url, key_prefix)
    tight = settings.clients["billing-app"].model_copy(
        update={"vendor_calls_per_s": 0.01, "vendor_calls_burst": 2}
    )
    clients = {**settings.clients, "billing-app": tight}
    gateway = await aiohttp_client(create_app(settings.model_copy(update={"clients": clients})))
    vendors.state.bind_after_polls = 1000
    status, body, headers = await post(gateway, keys.full, BIND, wait_s=5)
    assert (status, body["code"]) == (429, "client_rate_limited")
    assert int(headers["Retry-After"]) >= 1
    assert vendors.calls(BIND) == 2


async def test_a_providers_cap_on_waiting_polls_holds_across_clients(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """With max_concurrent_polls 3 for the bind check, a fourth waiting poll (whichever client) gets 429
    polls_limited at once; the three keep polling."""
    vendors.state.bind_after_polls = 1000
    gateway = await start_gateway(**{BIND: {"max_concurrent_polls": 3}})
    waiting = [
        asyncio.ensure_future(post(gateway, keys.full, BIND, open_id=f"d-{n}", wait_s=2))
        for n in range(3)
    ]
    await asyncio.sleep(0.2)
    status, body, headers = await post(gateway, keys.full, BIND, open_id="d-4", wait_s=2)
    assert (status, body["code"]) == (429, "polls_limited")
    assert 1 <= int(headers["Retry-After"]) <= 3
    assert [status for status, _, _ in await asyncio.gather(*waiting)] == [200, 200, 200]
