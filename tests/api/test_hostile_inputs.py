"""Careless callers (issue 19): identities made of invisible characters, several spellings of one
identity, full-width free text, and the Python name of a field instead of its wire name."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ALIGENIE, INPUTS, WECHAT, Keys, Vendors

pytestmark = pytest.mark.redis


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def post(
    gateway: TestClient, provider: str, body: dict[str, Any], key: str, **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await gateway.post(f"/auth/{provider}", json=body, headers=auth(key, **headers))
    return response.status, await response.json()


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u2060", "\u3164"])
async def test_an_invisible_identity_is_refused_before_the_vendor(
    gateway: TestClient, keys: Keys, vendors: Vendors, invisible: str
) -> None:
    """An identity made only of an invisible character is a 400 naming the field; nothing is sent."""
    status, body = await post(
        gateway, WECHAT, {**INPUTS[WECHAT], "wx_open_id": invisible}, keys.full
    )
    assert (status, body["code"]) == (400, "invalid_input")
    assert body["errors"] == [
        {
            "field": "wx_open_id",
            "message": "Value error, must not be blank (empty, whitespace or invisible characters only)",
        }
    ]
    assert vendors.state.requests == []


async def test_spellings_of_one_identity_share_one_login(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """Full-width u1 (U+FF55 U+FF11), `u1`, `u1` with a zero-width space and with a BOM are one
    identity: the vendor is asked once, for `u1`, and the others are cache hits with the same token."""
    answers = [
        await post(gateway, WECHAT, {**INPUTS[WECHAT], "wx_open_id": spelling}, keys.full)
        for spelling in ("ｕ１", "u1", "u1\u200b", "\ufeffu1 ")
    ]
    assert [(status, body["cached"]) for status, body in answers] == [
        (200, False),
        (200, True),
        (200, True),
        (200, True),
    ]
    assert len({body["token"] for _, body in answers}) == 1
    assert [request.params["WxOpenID"] for request in vendors.state.requests] == ["u1"]


async def test_free_text_keeps_the_callers_characters(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A full-width Chinese nickname is sent to the vendor exactly as the caller wrote it."""
    nick = "ｎｉｃｋ名字"
    status, _ = await post(gateway, WECHAT, {**INPUTS[WECHAT], "nick_name": nick}, keys.full)
    assert status == 200
    sent = vendors.state.requests[-1]
    assert sent.params["NickName"] == nick
    assert f'"NickName":"{nick}"'.encode() in sent.body
    assert sent.params["WxOpenID"] == INPUTS[WECHAT]["wx_open_id"]


async def test_top_identities_are_sent_normalised(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A full-width AliGenie user_id is signed and sent as its NFKC form."""
    body = {**INPUTS[ALIGENIE], "user_id": "１３９１１１１２２２２"}
    status, _ = await post(gateway, ALIGENIE, body, keys.full)
    assert status == 200
    assert vendors.state.requests[-1].params["user_id"] == "13911112222"


async def test_the_python_name_of_a_field_is_an_unknown_field(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """`schema_` (the Python name) instead of `schema` is a 400 naming `schema_`; nothing is sent."""
    body = {**{k: v for k, v in INPUTS[ALIGENIE].items() if k != "schema"}, "schema_": "s"}
    status, document = await post(gateway, ALIGENIE, body, keys.full)
    assert (status, document["code"]) == (400, "invalid_input")
    assert document["errors"] == [
        {"field": "schema", "message": "Field required"},
        {"field": "schema_", "message": "Extra inputs are not permitted"},
    ]
    assert "schema_" in document["detail"]
    assert vendors.state.requests == []
