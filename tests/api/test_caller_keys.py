"""Caller keys: several active keys per client for rotation, a loggable key id, `hash-key`, and
per-client rate limits."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import Any

import pytest

from gateway.api.auth import key_id, new_api_key, sha256_hex
from gateway.app import create_app
from gateway.settings import ClientSettings
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors, gateway_settings

pytestmark = pytest.mark.redis


async def start(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    **clients: Any,
) -> Any:
    settings = gateway_settings(vendors, keys, redis_url, key_prefix)
    settings = settings.model_copy(
        update={"clients": {name: ClientSettings(**spec) for name, spec in clients.items()}}
    )
    return await aiohttp_client(create_app(settings))


async def test_two_active_keys_for_one_client(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """During a rotation both the old and the new key of a client are accepted; a removed key is not."""
    old, new = new_api_key(), new_api_key()
    gateway = await start(
        aiohttp_client,
        vendors,
        keys,
        redis_url,
        key_prefix,
        app={"api_key_sha256": [sha256_hex(old), sha256_hex(new)], "providers": ["*"]},
    )
    for key in (old, new):
        response = await gateway.post(
            f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status == 200
    response = await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {new_api_key()}"}
    )
    assert response.status == 401


async def test_client_rate_limit_is_429_for_that_client_only(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """A client over its rate_limit_per_s gets 429 client_rate_limited with Retry-After; others do not."""
    limited, free = new_api_key(), new_api_key()
    gateway = await start(
        aiohttp_client,
        vendors,
        keys,
        redis_url,
        key_prefix,
        limited={
            "api_key_sha256": sha256_hex(limited),
            "providers": ["*"],
            "rate_limit_per_s": 1,
            "rate_limit_burst": 2,
        },
        free={"api_key_sha256": sha256_hex(free), "providers": ["*"]},
    )
    statuses = []
    for _ in range(3):
        response = await gateway.post(
            f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {limited}"}
        )
        statuses.append(response.status)
    assert statuses == [200, 200, 429]
    body = await response.json()
    assert (body["code"], response.headers["Retry-After"]) == ("client_rate_limited", "1")
    for _ in range(5):
        response = await gateway.post(
            f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {free}"}
        )
        assert response.status == 200


def test_key_id_is_the_public_prefix_or_a_fingerprint() -> None:
    """Generated keys log as agw_<id>; other keys as a short sha256 fingerprint, never the key."""
    key = new_api_key()
    assert key_id(key) == key[: len("agw_") + 8]
    assert key_id(key) not in key.split("_", 2)[2]
    assert key_id("my-own-long-secret-key") == "sha256:" + sha256_hex("my-own-long-secret-key")[:8]
    digest = hashlib.sha256(b"my-own-long-secret-key").digest()  # what authenticate already has
    assert key_id("my-own-long-secret-key", digest) == key_id("my-own-long-secret-key")


def test_hash_key_command() -> None:
    """`hash-key` hashes the key read from stdin; `--new` prints a key whose hash it also prints."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "hash-key"],
        input="abc\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == sha256_hex("abc")
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "hash-key", "--new"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    fields = dict(line.split(":", 1) for line in made.stdout.splitlines())
    key = fields["key"].strip()
    assert fields["api_key_sha256"].strip() == sha256_hex(key)
    assert fields["key id (loggable)"].strip() == key_id(key)
