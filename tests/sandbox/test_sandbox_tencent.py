"""The Tencent IoT Explorer appapi simulator over real HTTP: every check, envelopes, knobs."""

from __future__ import annotations

import json
import random
import re
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.sandbox import CannedResponse, SandboxState, create_sandbox_app
from gateway.signing.tencent_iot import sign

PATH = "/api/exploreropen/appapi"
ACTION = "AppGetTokenByWeiXin"
APP_KEY = "ahPxdKTGrejdQ0001"
SECRET = "ServiceAppSecret"
NOW = 1_700_000_000

Client = TestClient[Any, Any]


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(tencent_apps={APP_KEY: SECRET}, clock=lambda: NOW)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, state: SandboxState) -> Client:
    return await aiohttp_client(create_sandbox_app(state))


_MISSING = object()


def unsigned(**overrides: Any) -> dict[str, Any]:
    """The seed 003 example request with a fresh nonce; `_MISSING` removes a field."""
    fields: dict[str, Any] = {
        "Action": ACTION,
        "RequestId": "rest-client",
        "AppKey": APP_KEY,
        "Timestamp": NOW,
        "Nonce": random.randint(1, 2**31 - 1),
        "WxOpenID": "0123456789",
        "NickName": "tests",
        "Avatar": "http://example.com/path/to/avatar.jpg",
    }
    for name, value in overrides.items():
        if value is _MISSING:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def signed(fields: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The fields plus a `Signature` computed by gateway.signing."""
    return {**fields, "Signature": sign(fields, secret)}


async def post_raw(
    client: Client, body: bytes, content_type: str = "application/json"
) -> aiohttp.ClientResponse:
    return await client.post(PATH, data=body, headers={"Content-Type": content_type})


async def call(client: Client, fields: dict[str, Any]) -> dict[str, Any]:
    """POST the fields as JSON; vendor errors and successes alike are HTTP 200."""
    response = await post_raw(client, json.dumps(fields).encode())
    assert response.status == 200
    body: dict[str, Any] = json.loads(await response.read())
    return body


def error_of(body: dict[str, Any]) -> dict[str, str]:
    """The documented envelope's Error object."""
    assert list(body) == ["Response"]
    assert set(body["Response"]) == {"Error", "RequestId"}
    error: dict[str, str] = body["Response"]["Error"]
    return error


def code_of(body: dict[str, Any]) -> str:
    return error_of(body)["Code"]


# --- envelopes ------------------------------------------------------------------------------------


async def test_documented_success(client: Client, state: SandboxState) -> None:
    """A valid login answers the documented envelope: new token, ExpireAt, echoed RequestId."""
    response = await post_raw(client, json.dumps(signed(unsigned())).encode())
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(await response.read())
    token = body["Response"]["Data"]["Token"]
    assert body == {
        "Response": {"Data": {"ExpireAt": NOW + 7200, "Token": token}, "RequestId": "rest-client"}
    }
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert state.issued_tokens == [token]


async def test_official_success(client: Client, state: SandboxState) -> None:
    """With the official envelope a login answers code 0 with Data under `data`."""
    state.tencent_envelope = "official"
    body = await call(client, signed(unsigned()))
    token = body["data"]["Data"]["Token"]
    assert body == {
        "code": 0,
        "msg": "success",
        "data": {"Data": {"ExpireAt": NOW + 7200, "Token": token}, "RequestId": "rest-client"},
    }


async def test_documented_error(client: Client) -> None:
    """An error in the documented envelope is Response.Error with Code and Message."""
    body = await call(client, signed(unsigned(AppKey="unknown-app")))
    assert body == {
        "Response": {
            "Error": {
                "Code": "InvalidParameterValue.AppKeyNotExists",
                "Message": "AppKey does not exist.",
            },
            "RequestId": "rest-client",
        }
    }


async def test_official_error(client: Client, state: SandboxState) -> None:
    """An error in the official envelope is code -1000 with Error under `data`."""
    state.tencent_envelope = "official"
    body = await call(client, signed(unsigned(AppKey="unknown-app")))
    assert body == {
        "code": -1000,
        "msg": "AppKey does not exist.",
        "data": {
            "Error": {
                "Code": "InvalidParameterValue.AppKeyNotExists",
                "Message": "AppKey does not exist.",
            },
            "RequestId": "rest-client",
        },
    }


async def test_token_ttl_sets_expire_at(client: Client, state: SandboxState) -> None:
    """ExpireAt is the sandbox clock plus token_ttl_s, in Unix seconds."""
    state.token_ttl_s = 60
    body = await call(client, signed(unsigned()))
    assert body["Response"]["Data"]["ExpireAt"] == NOW + 60


async def test_same_openid_same_user_new_token(client: Client, state: SandboxState) -> None:
    """The same WxOpenID logs in as the same user but receives a new token every time."""
    first = await call(client, signed(unsigned()))
    second = await call(client, signed(unsigned()))
    await call(client, signed(unsigned(WxOpenID="another-openid")))
    assert first["Response"]["Data"]["Token"] != second["Response"]["Data"]["Token"]
    assert set(state.tencent_user_ids) == {"0123456789", "another-openid"}
    assert len(set(state.tencent_user_ids.values())) == 2
    assert len(state.issued_tokens) == 3


# --- checks, in order -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"[]", b'"text"', b"WxOpenID=1", b'{"NickName":"\xff"}'])
async def test_body_not_a_json_object_is_invalid_json(client: Client, body: bytes) -> None:
    """A body that is not one UTF-8 JSON object gets InvalidJSON and a fresh RequestId."""
    response = await post_raw(client, body)
    assert response.status == 200
    answer = json.loads(await response.read())
    assert code_of(answer) == "InvalidParameterValue.InvalidJSON"
    assert uuid.UUID(answer["Response"]["RequestId"])


async def test_json_sent_as_form_is_invalid_json(client: Client, state: SandboxState) -> None:
    """A JSON body declared as a form is rejected with InvalidJSON, and still recorded."""
    fields = signed(unsigned())
    response = await post_raw(
        client, json.dumps(fields).encode(), content_type="application/x-www-form-urlencoded"
    )
    assert code_of(json.loads(await response.read())) == "InvalidParameterValue.InvalidJSON"
    assert state.requests[0].params == fields


@pytest.mark.parametrize("action", ["AppGetToken", "appgettokenbyweixin", _MISSING])
async def test_wrong_or_missing_action_is_invalid_action(client: Client, action: object) -> None:
    """An Action other than AppGetTokenByWeiXin, or none, is rejected with InvalidAction."""
    body = await call(client, signed(unsigned(Action=action)))
    assert code_of(body) == "InvalidAction"


@pytest.mark.parametrize(
    "name",
    ["RequestId", "AppKey", "Signature", "Timestamp", "Nonce", "WxOpenID", "NickName", "Avatar"],
)
async def test_missing_required_field(client: Client, name: str) -> None:
    """Each required field, when absent, is rejected with ErrorRequiredParamNotFound naming it."""
    fields = signed(unsigned())
    del fields[name]
    error = error_of(await call(client, fields))
    assert error["Code"] == "ErrorRequiredParamNotFound"
    assert name in error["Message"]


@pytest.mark.parametrize(("name", "value"), [("WxOpenID", ""), ("NickName", " "), ("Avatar", "")])
async def test_empty_required_field(client: Client, name: str, value: str) -> None:
    """A required field sent as an empty or blank string counts as missing."""
    body = await call(client, signed(unsigned(**{name: value})))
    assert code_of(body) == "ErrorRequiredParamNotFound"


async def test_empty_extra_field_is_rejected(client: Client) -> None:
    """Any empty-string field is rejected: it would silently drop out of the signature."""
    body = await call(client, signed(unsigned(Extra="")))
    assert code_of(body) == "ErrorRequiredParamNotFound"


@pytest.mark.parametrize(
    "override",
    [
        {"Timestamp": str(NOW)},  # a string, not a JSON number
        {"Timestamp": NOW + 0.5},  # not an integer
        {"Nonce": "42"},
        {"Nonce": 0},
        {"Nonce": -5},
        {"Nonce": 2**31},
        {"Nonce": True},
        {"NickName": 123},
        {"Extra": {"nested": 1}},  # nothing to sign it with
        {"Extra": None},
    ],
)
async def test_wrong_value_type_is_invalid_parameter_value(
    client: Client, override: dict[str, Any]
) -> None:
    """Timestamp/Nonce are JSON integers (Nonce in 1..2^31-1); other fields strings or ints."""
    fields = {**unsigned(**override), "Signature": "not-checked-yet"}
    assert code_of(await call(client, fields)) == "InvalidParameterValue"


@pytest.mark.parametrize("nonce", [1, 2**31 - 1])
async def test_nonce_range_bounds_accepted(client: Client, nonce: int) -> None:
    """The smallest and largest allowed nonces are accepted."""
    body = await call(client, signed(unsigned(Nonce=nonce)))
    assert "Data" in body["Response"]


async def test_unknown_app_key(client: Client) -> None:
    """An AppKey the sandbox does not know is rejected with the stand-in AppKeyNotExists."""
    body = await call(client, signed(unsigned(AppKey="nobody"), secret="whatever"))
    assert code_of(body) == "InvalidParameterValue.AppKeyNotExists"


@pytest.mark.parametrize(
    ("skew", "accepted"), [(300, True), (-300, True), (301, False), (-301, False)]
)
async def test_timestamp_skew_window(
    client: Client, state: SandboxState, skew: int, accepted: bool
) -> None:
    """A Timestamp up to 300 s from the sandbox clock is accepted; beyond, TimestampExpired."""
    state.clock = lambda: NOW + skew
    body = await call(client, signed(unsigned()))
    if accepted:
        assert "Data" in body["Response"]
    else:
        assert code_of(body) == "InvalidParameterValue.TimestampExpired"


async def test_timestamp_in_milliseconds_is_expired(client: Client) -> None:
    """A Timestamp in milliseconds is far from the clock and rejected as TimestampExpired."""
    body = await call(client, signed(unsigned(Timestamp=NOW * 1000)))
    assert code_of(body) == "InvalidParameterValue.TimestampExpired"


async def test_signature_with_wrong_secret(client: Client) -> None:
    """A Signature made with another AppSecret is rejected with the stand-in SignatureInvalid."""
    body = await call(client, signed(unsigned(), secret="not-the-secret"))
    assert code_of(body) == "InvalidParameterValue.SignatureInvalid"


async def test_field_changed_after_signing(client: Client) -> None:
    """A field changed after signing breaks the signature."""
    fields = {**signed(unsigned()), "NickName": "tampered"}
    assert code_of(await call(client, fields)) == "InvalidParameterValue.SignatureInvalid"


async def test_unsigned_extra_field_breaks_signature(client: Client) -> None:
    """Every sent field is part of the signature, so an extra field added afterwards is rejected."""
    fields = {**signed(unsigned()), "Extra": "x"}
    assert code_of(await call(client, fields)) == "InvalidParameterValue.SignatureInvalid"


async def test_signed_extra_field_is_accepted(client: Client) -> None:
    """An extra string field that is signed along with the others is accepted."""
    body = await call(client, signed(unsigned(Extra="a&b=c")))
    assert "Data" in body["Response"]


async def test_nonce_reuse_is_rejected(client: Client) -> None:
    """Replaying (AppKey, Nonce, Timestamp) within the window is rejected as NonceReused."""
    fields = signed(unsigned(Nonce=42))
    assert "Data" in (await call(client, fields))["Response"]
    assert code_of(await call(client, fields)) == "InvalidParameterValue.NonceReused"
    other_time = signed(unsigned(Nonce=42, Timestamp=NOW + 1))
    assert "Data" in (await call(client, other_time))["Response"]


async def test_forged_request_does_not_burn_the_nonce(client: Client) -> None:
    """A request with a bad signature does not consume its nonce."""
    forged = signed(unsigned(Nonce=7), secret="attacker")
    assert code_of(await call(client, forged)) == "InvalidParameterValue.SignatureInvalid"
    assert "Data" in (await call(client, signed(unsigned(Nonce=7))))["Response"]


async def test_replay_after_window_is_expired_and_forgotten(
    client: Client, state: SandboxState
) -> None:
    """After the window a replay fails the Timestamp check, and the old nonce is forgotten."""
    fields = signed(unsigned(Nonce=9))
    await call(client, fields)
    state.clock = lambda: NOW + 301
    assert code_of(await call(client, fields)) == "InvalidParameterValue.TimestampExpired"
    await call(client, signed(unsigned(Nonce=10, Timestamp=NOW + 301)))
    assert state.tencent_nonces_seen == {(APP_KEY, 10, NOW + 301)}


@pytest.mark.parametrize(("nick_name", "accepted"), [("微" * 32, True), ("n" * 33, False)])
async def test_nick_name_length(client: Client, nick_name: str, accepted: bool) -> None:
    """A NickName of up to 32 characters is accepted; longer is NickNameLengthInvalid."""
    body = await call(client, signed(unsigned(NickName=nick_name)))
    if accepted:
        assert "Data" in body["Response"]
    else:
        assert code_of(body) == "InvalidParameterValue.NickNameLengthInvalid"


async def test_missing_request_id_gets_a_generated_one(client: Client) -> None:
    """When RequestId is missing the error carries a generated UUID instead of an echo."""
    fields = signed(unsigned(RequestId=_MISSING))
    body = await call(client, fields)
    assert code_of(body) == "ErrorRequiredParamNotFound"
    assert uuid.UUID(body["Response"]["RequestId"])


# --- canned responses, recording ------------------------------------------------------------------


async def test_canned_response_only_after_checks(client: Client, state: SandboxState) -> None:
    """A queued answer is used only by a request that passed every check, and is recorded."""
    not_found = {
        "Response": {
            "Error": {
                "Code": "InvalidParameterValue.ErrorUserNotExists",
                "Message": "account does not exist",
            },
            "RequestId": "canned",
        }
    }
    state.enqueue(ACTION, CannedResponse.json(not_found))

    bad = await call(client, signed(unsigned(), secret="wrong"))
    assert code_of(bad) == "InvalidParameterValue.SignatureInvalid"
    assert state.canned_left(ACTION) == 1

    assert await call(client, signed(unsigned())) == not_found
    assert state.issued_tokens == []

    after = await call(client, signed(unsigned()))
    assert "Data" in after["Response"]
    assert state.calls(ACTION) == 3


async def test_canned_transport_failure(client: Client, state: SandboxState) -> None:
    """A canned HTTP 502 with its own body and content type is returned as is."""
    state.enqueue(
        ACTION,
        CannedResponse(status=502, body=b"<html>bad gateway</html>", content_type="text/html"),
    )
    response = await post_raw(client, json.dumps(signed(unsigned())).encode())
    assert response.status == 502
    assert response.headers["Content-Type"] == "text/html"
    assert await response.read() == b"<html>bad gateway</html>"


async def test_request_recorded_byte_for_byte(client: Client, state: SandboxState) -> None:
    """The recorded request keeps the exact body bytes, the headers and the decoded fields."""
    fields = signed(unsigned(NickName="小明"))
    body = json.dumps(fields, ensure_ascii=False, indent=1).encode()
    await post_raw(client, body, content_type="application/json; charset=utf-8")
    [recorded] = state.requests
    assert (recorded.vendor, recorded.api, recorded.method, recorded.path) == (
        "tencent",
        ACTION,
        "POST",
        PATH,
    )
    assert recorded.body == body
    assert recorded.query_string == ""
    assert recorded.headers["Content-Type"] == "application/json; charset=utf-8"
    assert recorded.params == fields
    assert state.calls(ACTION) == 1


async def test_unreadable_request_recorded_without_api(client: Client, state: SandboxState) -> None:
    """A request that is not JSON is still recorded, with no api and no fields."""
    await post_raw(client, b"not json")
    [recorded] = state.requests
    assert (recorded.api, recorded.params, recorded.body) == (None, {}, b"not json")
