"""`top:taobao.top.auth.token.create`, the TOP OAuth code exchange: its exact request, and how its
`token_result` (JSON inside a string) is read — expiry rules included."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qsl

import pytest

from gateway.errors import GatewayError
from gateway.providers.base import VendorResponse
from gateway.providers.registry import Provider, bind_providers
from gateway.settings import ProviderSettings
from tests.providers.conftest import PINNED

KIND = "top:taobao.top.auth.token.create"
NOW = 1_556_000_000.0


@pytest.fixture
def oauth(secret: str) -> Provider:
    settings = ProviderSettings(
        kind=KIND,
        endpoint="https://eco.taobao.com/router/rest",
        app_key="12345678",
        app_secret=secret,
        sign_method="md5",
    )
    return bind_providers({"oauth": settings})["oauth"]


def sent(provider: Provider, raw: dict[str, str]) -> dict[str, str]:
    request = provider.build_request(provider.parse_inputs(raw), PINNED)
    assert (request.method, request.url) == ("POST", "https://eco.taobao.com/router/rest")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded;charset=utf-8"
    return dict(parse_qsl(request.body.decode("ascii"), keep_blank_values=True))


def test_the_request_carries_code_and_uuid_signed_like_every_top_call(
    oauth: Provider, secret: str
) -> None:
    fields = sent(oauth, {"code": "OxlukWofLrB1Db1M6aJGF8x", "uuid": "abc123"})
    sign = fields.pop("sign")
    assert fields == {
        "method": "taobao.top.auth.token.create",
        "app_key": "12345678",
        "timestamp": "2016-01-01 12:00:00",  # GMT+8 wall clock of the pinned instant
        "v": "2.0",
        "sign_method": "md5",
        "format": "json",
        "code": "OxlukWofLrB1Db1M6aJGF8x",
        "uuid": "abc123",
    }
    # The md5 rule computed here, not by our signing module: secret + sorted k+v + secret, upper hex.
    joined = "".join(f"{k}{v}" for k, v in sorted(fields.items()))
    assert sign == hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()  # noqa: S324


def test_no_uuid_means_no_empty_uuid_field(oauth: Provider) -> None:
    assert "uuid" not in sent(oauth, {"code": "c1"})


def test_the_cache_key_material_is_the_code_alone(oauth: Provider) -> None:
    inputs = oauth.parse_inputs({"code": "c1", "uuid": "u1"})
    assert oauth.identity(inputs) == {"code": "c1"}


def answer(token_result: object) -> VendorResponse:
    payload = {"top_auth_token_create_response": {"token_result": token_result, "request_id": "r9"}}
    return VendorResponse(200, {}, json.dumps(payload).encode())


def test_expire_time_in_epoch_ms_wins_and_the_user_comes_back(oauth: Provider) -> None:
    result = {
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "expire_time": int((NOW + 7200) * 1000),
        "expires_in": 60,  # expire_time is the absolute one: it is used
        "re_expires_in": 86400,
        "taobao_user_id": "2200000000001",
        "taobao_user_nick": "tb-user",
    }
    credential = oauth.read_response(answer(json.dumps(result)), NOW)
    assert (credential.token, credential.expires_at) == ("at-1", NOW + 7200)
    assert credential.data == {
        "taobao_user_id": "2200000000001",
        "taobao_user_nick": "tb-user",
        "refresh_token": "rt-1",
        "refresh_expires_at": int(NOW) + 86400,
    }
    assert credential.upstream_request_id == "r9"


def test_expires_in_alone_is_relative_seconds(oauth: Provider) -> None:
    credential = oauth.read_response(
        answer(json.dumps({"access_token": "at", "expires_in": 3600})), NOW
    )
    assert credential.expires_at == NOW + 3600


@pytest.mark.parametrize(
    "token_result",
    ["{", json.dumps(["not", "an", "object"]), json.dumps({"expires_in": 5}), None],
)
def test_an_unusable_token_result_is_a_bad_response(oauth: Provider, token_result: object) -> None:
    with pytest.raises(GatewayError) as caught:
        oauth.read_response(answer(token_result), NOW)
    assert (caught.value.status, caught.value.code) == (502, "vendor_bad_response")


def test_a_top_error_is_classified_like_every_top_call(oauth: Provider) -> None:
    body = {"error_response": {"code": 15, "msg": "Remote service error", "sub_code": "isv.x"}}
    with pytest.raises(GatewayError) as caught:
        oauth.read_response(VendorResponse(200, {}, json.dumps(body).encode()), NOW)
    assert (caught.value.status, caught.value.code) == (422, "vendor_rejected_input")
