"""Caller authentication by the SHA-256 of the key: a known key found at once on every request, an
unknown or removed one refused at once, no raw key kept, and the callers' rate buckets on the app's
clock (tests move it instead of sleeping)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.api import use_clients
from gateway.api.auth import CallerAuth, new_api_key, sha256_hex
from gateway.app import create_app
from gateway.errors import MissingApiKey, UnknownApiKey
from gateway.settings import ClientSettings
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors, gateway_settings
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis

LIMITED = new_api_key()


def clients(**keys: str | list[str]) -> dict[str, ClientSettings]:
    """Clients named as the arguments, each with its key (or keys), allowed every provider."""
    return {
        name: ClientSettings(
            api_key_sha256=[sha256_hex(k) for k in ([key] if isinstance(key, str) else key)],
            providers=["*"],
        )
        for name, key in keys.items()
    }


def bearer(key: str) -> str:
    return f"Bearer {key}"


def test_the_same_key_twice_is_the_same_caller() -> None:
    key, other = new_api_key(), new_api_key()
    auth = CallerAuth(clients(app=key, other=other))
    first, again = auth.authenticate(bearer(key)), auth.authenticate(bearer(key))
    assert again is first
    assert (first.name, first.key_id) == ("app", key[: len("agw_") + 8])
    assert auth.authenticate(bearer(other)).name == "other"


def test_a_key_removed_by_a_reload_is_refused_at_once_and_a_kept_one_sees_the_new_settings() -> (
    None
):
    kept, removed = new_api_key(), new_api_key()
    auth = CallerAuth(clients(app=[kept, removed]))
    before = auth.authenticate(bearer(kept))
    auth.authenticate(bearer(removed))
    auth.use({"app": ClientSettings(api_key_sha256=[sha256_hex(kept)], providers=[WECHAT])})
    with pytest.raises(UnknownApiKey):
        auth.authenticate(bearer(removed))
    after = auth.authenticate(bearer(kept))
    assert after is not before and after.settings.providers == [WECHAT]
    assert after.bucket is before.bucket  # a client kept keeps its rate buckets


@pytest.mark.parametrize(
    ("authorization", "refused"),
    [
        (None, MissingApiKey),
        ("", MissingApiKey),
        ("Basic abc", MissingApiKey),
        ("Bearer   ", MissingApiKey),
        (f"Bearer {new_api_key()}", UnknownApiKey),
        ("Bearer not-a-key", UnknownApiKey),
    ],
)
def test_no_key_or_an_unknown_key_is_refused(
    authorization: str | None, refused: type[Exception]
) -> None:
    auth = CallerAuth(clients(app=new_api_key()))
    for _ in range(2):  # the second time too: nothing about a refused key is remembered
        with pytest.raises(refused):
            auth.authenticate(authorization)


def strings_in(value: Any, seen: set[int] | None = None) -> list[str | bytes]:
    """Every str and bytes reachable from `value` through attributes, slots and containers."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, dict):
        parts: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        parts = list(value)
    else:
        parts = list(getattr(value, "__dict__", {}).values())
        for cls in type(value).__mro__:
            parts += [getattr(value, s) for s in getattr(cls, "__slots__", ()) if hasattr(value, s)]
    return [found for part in parts for found in strings_in(part, seen)]


def test_no_raw_key_is_kept_anywhere_on_the_authenticator() -> None:
    generated, own = new_api_key(), "my-own-long-secret-key-0123456789"
    auth = CallerAuth(clients(app=generated, mine=own))
    callers = [auth.authenticate(bearer(key)) for key in (generated, own, generated, own)]
    kept = strings_in(auth)
    assert any(isinstance(s, bytes) for s in kept) and "app" in kept  # the walk reaches the tables
    for key in (generated, own):
        secret_part = key.split("_", 2)[-1]
        assert not [s for s in kept if (secret_part in s if isinstance(s, str) else False)]
        assert not [s for s in kept if isinstance(s, bytes) and secret_part.encode() in s]
    assert {c.key_id for c in callers} == {
        generated[: len("agw_") + 8],
        "sha256:" + sha256_hex(own)[:8],
    }


async def start(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    clock: ShiftedClock,
) -> TestClient:
    """The usual gateway, plus a client `limited` to one request per second with key LIMITED."""
    settings = gateway_settings(vendors, keys, redis_url, key_prefix)
    limited = ClientSettings(
        api_key_sha256=[sha256_hex(LIMITED)],
        providers=[WECHAT],
        rate_limit_per_s=1,
        rate_limit_burst=1,
    )
    settings = settings.model_copy(update={"clients": {**settings.clients, "limited": limited}})
    client: TestClient = await aiohttp_client(create_app(settings, clock=clock))
    return client


async def test_over_http_a_removed_key_is_401_at_once_and_a_kept_one_is_served(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    gateway = await start(aiohttp_client, vendors, keys, redis_url, key_prefix, ShiftedClock())

    async def login(key: str) -> tuple[int, str | None]:
        response = await gateway.post(
            f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": bearer(key)}
        )
        body = await response.json()
        return response.status, body.get("code")

    assert await login(keys.full) == (200, None)
    assert await login(keys.full) == (200, None)
    assert await login(new_api_key()) == (401, "invalid_api_key")
    use_clients(
        gateway.app,
        {
            "billing-app": ClientSettings(
                api_key_sha256=[sha256_hex(keys.wechat_only)], providers=["*"]
            )
        },
    )
    assert await login(keys.full) == (401, "invalid_api_key")
    assert await login(keys.wechat_only) == (200, None)


async def test_a_callers_rate_runs_on_the_app_clock(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """One request per second: the second at once is 429; a second later by the app's clock (no
    sleep), served again."""
    clock = ShiftedClock()
    gateway = await start(aiohttp_client, vendors, keys, redis_url, key_prefix, clock)

    async def login() -> int:
        response = await gateway.post(
            f"/auth/{WECHAT}",
            json=INPUTS[WECHAT],
            headers={"Authorization": bearer(LIMITED)},
        )
        return response.status

    assert [await login(), await login()] == [200, 429]
    clock.advance(1.0)
    assert [await login(), await login()] == [200, 429]
