"""Cache-Control is parsed as directives: names case-insensitive, optional values, whitespace tolerated."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.api.cache_control import directives, wants_fresh
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors


def test_directives_are_split_lower_cased_and_unquoted() -> None:
    """Each directive is found by name, with its value (unquoted) or None; the first of a repeat wins."""
    found = directives([' No-Cache , max-age = "0",private,, x=1', "max-age=5, ext"])
    assert found == {"no-cache": None, "max-age": "0", "private": None, "x": "1", "ext": None}


@pytest.mark.parametrize(
    ("values", "fresh"),
    [
        ([], False),
        ([""], False),
        (["no-cachex"], False),
        (["x-no-cache"], False),
        (["no-store"], False),
        (["max-age=60"], False),
        (["max-age=abc"], False),
        (["max-age=-0"], False),
        (["max-age=٠"], False),  # an Arabic-Indic zero is a digit to str.isdigit, not to RFC 9111
        (["no-cache"], True),
        (["NO-CACHE"], True),
        (["private", "no-cache"], True),  # the header sent twice
        (["max-age=0"], True),
        (['max-age="0"'], True),
        (["max-age=00"], True),
    ],
)
def test_which_headers_force_a_fresh_call(values: list[str], fresh: bool) -> None:
    """`no-cache` and `max-age=0` force a vendor call; lookalikes and other directives do not."""
    assert wants_fresh(values) is fresh


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def post(
    gateway: TestClient, provider: str, body: dict[str, Any], key: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(f"/auth/{provider}", json=body, headers=auth(key, **headers))
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("cache_control", "fresh"),
    [
        ("no-cachex", False),
        ("x-no-cache", False),
        ("no-store", False),
        ("max-age=60", False),
        ("no-cache", True),
        ("No-Cache", True),
        ("max-age=0, no-cache", True),
        (" max-age = 0 ", True),
        ('foo="a", NO-CACHE', True),
    ],
)
@pytest.mark.redis
async def test_cache_control_is_read_as_directives(
    gateway: TestClient, keys: Keys, vendors: Vendors, cache_control: str, fresh: bool
) -> None:
    """Only a real `no-cache` (or `max-age=0`) directive forces a vendor call; lookalikes are hits."""
    _, first = await post(gateway, WECHAT, INPUTS[WECHAT], keys.full)
    status, again = await post(
        gateway, WECHAT, INPUTS[WECHAT], keys.full, **{"Cache-Control": cache_control}
    )
    assert status == 200
    assert again["cached"] is not fresh
    assert vendors.calls(WECHAT) == (2 if fresh else 1)
    assert (again["token"] == first["token"]) is not fresh
