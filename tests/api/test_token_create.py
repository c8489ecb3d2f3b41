"""The TOP code exchange through a live gateway and the sandbox: a code is single-use at the vendor, so
the gateway caches by code and a retry gets the same token instead of "code already used"."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.signing import top as top_signing
from tests.api.conftest import TOP_KEY, Keys, Vendors, sha256_hex

pytestmark = pytest.mark.redis


@pytest.fixture
async def oauth_gateway(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> Any:
    settings = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix.rstrip(":"),
        providers={
            "taobao-oauth": {
                "kind": "top:taobao.top.auth.token.create",
                "endpoint": vendors.url + "/router/rest",
                "app_key": TOP_KEY,
                "app_secret": vendors.top_secret,
            }
        },
        clients={"app": {"api_key_sha256": sha256_hex(keys.full), "providers": ["*"]}},
    )
    return await aiohttp_client(create_app(settings))


async def exchange(gateway: Any, keys: Keys, code: str, **headers: str) -> Any:
    return await gateway.post(
        "/auth/taobao-oauth",
        json={"code": code},
        headers={"Authorization": f"Bearer {keys.full}", **headers},
    )


async def test_a_code_is_exchanged_once_and_a_retry_gets_the_same_token(
    oauth_gateway: Any, vendors: Vendors, keys: Keys
) -> None:
    first = await exchange(oauth_gateway, keys, "auth-code-1")
    assert first.status == 200, await first.text()
    body = await first.json()
    assert body["token"] == vendors.state.issued_tokens[0]
    assert body["kind"] == "top:taobao.top.auth.token.create"
    assert body["data"]["taobao_user_id"] == "2200000000001"
    retry = await exchange(oauth_gateway, keys, "auth-code-1")
    assert (await retry.json())["token"] == body["token"]
    assert vendors.state.calls("taobao.top.auth.token.create") == 1
    # What the cache saves the caller from: the sandbox, like TOP, refuses a used code.
    forced = await exchange(oauth_gateway, keys, "auth-code-1", **{"Cache-Control": "no-cache"})
    problem = await forced.json()
    assert (forced.status, problem["code"]) == (422, "vendor_rejected_input")
    assert vendors.state.calls("taobao.top.auth.token.create") == 2


async def test_the_sandbox_verified_the_signature_of_what_was_sent(
    oauth_gateway: Any, vendors: Vendors, keys: Keys
) -> None:
    """The sandbox checked the request before answering; checked here again from the recorded
    fields (hmac-sha256, the default), upper-case hex over the sorted fields."""
    assert (await exchange(oauth_gateway, keys, "auth-code-2")).status == 200
    [request] = vendors.state.requests
    fields = {k: str(v) for k, v in request.params.items()}
    sign = fields.pop("sign")
    assert fields["method"] == "taobao.top.auth.token.create"
    assert fields["code"] == "auth-code-2"
    assert sign == top_signing.sign(fields, vendors.top_secret, "hmac-sha256")
    assert sign == sign.upper()
    assert len(sign) == 64
