"""Probing for providers (issue 19): a key limited to some providers cannot tell a provider that does not
exist from one it may not use."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import INPUTS, MINI_APP, Keys, Vendors

pytestmark = pytest.mark.redis


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def post(
    gateway: TestClient, provider: str, body: dict[str, Any], key: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(f"/auth/{provider}", json=body, headers=auth(key, **headers))
    return response.status, await response.json()


async def test_a_restricted_key_cannot_tell_unknown_from_forbidden(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """For a key limited to one provider, an unknown provider and a forbidden one get identical 403
    problems (same request id sent; only `instance`, each request's own span, differs), naming neither;
    the vendor is not called."""
    bodies = []
    for method in ("POST", "DELETE"):
        for name in ("no-such-provider", MINI_APP):
            response = await gateway.request(
                method,
                f"/auth/{name}",
                json=INPUTS[MINI_APP],
                headers=auth(keys.wechat_only, **{"X-Request-ID": "probe-1"}),
            )
            assert response.status == 403
            document = orjson.loads(await response.read())
            assert document.pop("instance").startswith("urn:trace:")
            bodies.append(orjson.dumps(document))
    assert len(set(bodies)) == 1
    document = orjson.loads(bodies[0])
    assert document == {
        "type": "urn:auth-gateway:problem:provider_forbidden",
        "title": "Provider not allowed for this key",
        "status": 403,
        "detail": "the key of 'wechat-app' may not use this provider",
        "code": "provider_forbidden",
        "provider": None,
        "retryable": False,
        "upstream": None,
        "request_id": "probe-1",
    }
    assert vendors.state.requests == []


async def test_an_unrestricted_key_still_hears_unknown_provider(
    gateway: TestClient, keys: Keys
) -> None:
    """A key that may use every provider gets 404 unknown_provider for a name that does not exist."""
    status, document = await post(gateway, "no-such-provider", {}, keys.full)
    assert (status, document["code"]) == (404, "unknown_provider")
