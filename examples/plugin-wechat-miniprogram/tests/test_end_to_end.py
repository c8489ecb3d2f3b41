"""Through a live gateway and the sandbox over loopback, as `make run` serves them with the plug-in
installed: dev mode configures `wechat-miniprogram`, the sandbox serves WeChat's endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from gateway.app import create_app
from gateway.devmode import DevEnvironment, start_dev_environment
from gateway.sandbox.app import SANDBOX_STATE
from gateway.sandbox.state import CannedResponse

PROVIDER = "wechat-miniprogram"


@pytest_asyncio.fixture
async def dev() -> AsyncIterator[DevEnvironment]:
    environment = await start_dev_environment("127.0.0.1", 0)
    yield environment
    await environment.sandbox.cleanup()


@pytest_asyncio.fixture
async def gateway(dev: DevEnvironment, aiohttp_client: Any) -> Any:
    return await aiohttp_client(create_app(dev.settings))


def sandbox_state(dev: DevEnvironment) -> Any:
    return dev.sandbox.app[SANDBOX_STATE]


async def login(gateway: Any, dev: DevEnvironment, code: str, **headers: str) -> Any:
    return await gateway.post(
        f"/auth/{PROVIDER}",
        json={"js_code": code},
        headers={"Authorization": f"Bearer {dev.client_key}", **headers},
    )


async def test_dev_mode_configures_the_plugin_kind(dev: DevEnvironment) -> None:
    settings = dev.settings.providers[PROVIDER]
    assert settings.kind == "wechat:jscode2session"
    assert settings.endpoint.endswith("/sns/jscode2session")


async def test_a_login_returns_the_openid_and_a_retry_replays_it(
    dev: DevEnvironment, gateway: Any
) -> None:
    """The sandbox refuses a second use of a code (40163), as WeChat does; the gateway's cache under
    the code makes a retry answer the same login instead, with one vendor call in all."""
    state = sandbox_state(dev)
    first = await login(gateway, dev, "code-e2e-1")
    assert first.status == 200, await first.text()
    body = await first.json()
    assert body["provider"] == PROVIDER
    assert body["kind"] == "wechat:jscode2session"
    assert body["data"]["openid"].startswith("o")
    assert "session_key" not in body["data"]
    again = await login(gateway, dev, "code-e2e-1")
    assert (await again.json())["data"] == body["data"]
    assert state.calls("jscode2session") == 1
    # Forcing a vendor call shows what the cache saved the caller from.
    forced = await login(gateway, dev, "code-e2e-1", **{"Cache-Control": "no-cache"})
    problem = await forced.json()
    assert (forced.status, problem["code"], problem["upstream"]["code"]) == (
        422,
        "vendor_rejected_input",
        "40163",
    )
    assert state.calls("jscode2session") == 2


async def test_the_vendor_sees_the_signed_in_app_and_its_secret(
    dev: DevEnvironment, gateway: Any
) -> None:
    state = sandbox_state(dev)
    await login(gateway, dev, "code-e2e-2")
    [request] = [r for r in state.requests if r.api == "jscode2session"]
    settings = dev.settings.providers[PROVIDER]
    assert (request.method, request.path) == ("GET", "/sns/jscode2session")
    assert request.params == {
        "appid": settings.app_key,
        "js_code": "code-e2e-2",
        "secret": settings.secret(),
        "grant_type": "authorization_code",
    }


async def test_a_minute_quota_answer_is_a_429_with_retry_after(
    dev: DevEnvironment, gateway: Any
) -> None:
    state = sandbox_state(dev)
    state.enqueue("jscode2session", CannedResponse.json({"errcode": 45011, "errmsg": "limit"}))
    response = await login(gateway, dev, "code-e2e-3")
    assert response.status == 429
    assert (await response.json())["code"] == "vendor_quota_exceeded"
    assert int(response.headers["Retry-After"]) > 0
