"""A gateway over real HTTP, pointed at the in-process vendor sandbox, caching in a real Redis."""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.sandbox.app import start_sandbox
from gateway.sandbox.state import SandboxState
from gateway.settings import Settings

TOP_KEY, TENCENT_KEY = "test-top-app", "test-tencent-app"
MINI_APP, ALIGENIE, BIND, WECHAT = (
    "zebra-miniapp",
    "aligenie-login",
    "tmallgenie-bind",
    "tencent-wechat",
)
KINDS = {
    MINI_APP: "top:yunos.aiot.thirdminiapp.auth.get",
    ALIGENIE: "top:taobao.ailab.aicloud.top.auth.get",
    BIND: "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
    WECHAT: "tencent-iot:AppGetTokenByWeiXin",
}
INPUTS: dict[str, dict[str, Any]] = {
    MINI_APP: {"mini_app_id": "2021001170634349", "device_id": "A70E1664E02EC41AFCFE75388B653153"},
    ALIGENIE: {
        "user_id": "13911112222",
        "utd_id": "V944n0HrnZ4DAAtOStvvDat7",
        "schema": "36653b6e-f41a-11e6-bc64-92361f002671",
        "app_type": "IOS",
    },
    BIND: {"open_id": "1jpASH5XXU2c", "product_key": "a171ldgFX4m", "user_type": "ilop"},
    WECHAT: {
        "wx_open_id": "o-user-0123456789",
        "nick_name": "tests",
        "avatar": "http://example.com/a.jpg",
    },
}
APIS = {
    MINI_APP: "yunos.aiot.thirdminiapp.auth.get",
    ALIGENIE: "taobao.ailab.aicloud.top.auth.get",
    BIND: "alibaba.ailabs.iot.device.inside.checkbind.invoke",
    WECHAT: "AppGetTokenByWeiXin",
}
ALIGENIE_TTL_S = 900


@dataclass
class Vendors:
    state: SandboxState
    url: str
    top_secret: str
    tencent_secret: str

    def calls(self, provider: str) -> int:
        return self.state.calls(APIS[provider])


@dataclass(frozen=True)
class Keys:
    full: str  # may use every provider
    wechat_only: str


@pytest_asyncio.fixture
async def vendors() -> AsyncIterator[Vendors]:
    top_secret, tencent_secret = secrets.token_hex(16), secrets.token_hex(16)
    state = SandboxState(top_apps={TOP_KEY: top_secret}, tencent_apps={TENCENT_KEY: tencent_secret})
    runner, url = await start_sandbox(state)
    yield Vendors(state, url, top_secret, tencent_secret)
    if state.hold is not None:
        state.hold.set()  # a test that failed while holding the vendor must not stall the clean-up
    await runner.cleanup()


@pytest.fixture
def keys() -> Keys:
    return Keys(full=secrets.token_urlsafe(24), wechat_only=secrets.token_urlsafe(24))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def provider_config(vendors: Vendors, **overrides: Any) -> dict[str, dict[str, Any]]:
    top = {
        "endpoint": vendors.url + "/router/rest",
        "app_key": TOP_KEY,
        "app_secret": vendors.top_secret,
    }
    tencent = {
        "endpoint": vendors.url + "/api/exploreropen/appapi",
        "app_key": TENCENT_KEY,
        "app_secret": vendors.tencent_secret,
    }
    # Generous outbound limits: these tests log in in bursts (the defaults are tested on their own).
    limits = {"limits": {"rate_per_s": 1000, "burst": 1000}}
    config = {
        name: {"kind": kind, **(tencent if name == WECHAT else top), **limits}
        for name, kind in KINDS.items()
    }
    config[ALIGENIE]["token_ttl_s"] = ALIGENIE_TTL_S
    config[ALIGENIE]["sign_method"] = "md5"
    config[BIND]["sign_method"] = "hmac"
    for name, values in overrides.items():
        config[name] = {**config[name], **values}
    return config


def gateway_settings(
    vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str, **provider_overrides: Any
) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=key_prefix.rstrip(":"),
        providers=provider_config(vendors, **provider_overrides),
        clients={
            "billing-app": {
                "api_key_sha256": sha256_hex(keys.full),
                "providers": ["*"],
                "vendor_calls_per_s": 1000,  # these tests log in in bursts
                "vendor_calls_burst": 1000,
            },
            "wechat-app": {"api_key_sha256": sha256_hex(keys.wechat_only), "providers": [WECHAT]},
        },
    )


StartGateway = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def start_gateway(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> StartGateway:
    """Start a gateway (optionally with other settings or a skewed clock) on a loopback port."""

    async def start(
        *,
        clock: Clock = SYSTEM_CLOCK,
        redis: str | None = None,
        **provider_overrides: Any,
    ) -> TestClient:
        settings = gateway_settings(
            vendors, keys, redis or redis_url, key_prefix, **provider_overrides
        )
        client: TestClient = await aiohttp_client(create_app(settings, clock=clock))
        return client

    return start


@pytest_asyncio.fixture
async def gateway(start_gateway: StartGateway) -> TestClient:
    return await start_gateway()


@pytest_asyncio.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
