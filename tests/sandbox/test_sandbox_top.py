"""The TOP router simulator over real HTTP: every platform check, each method, formats and knobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from gateway.sandbox import CannedResponse, SandboxState, cli, create_sandbox_app, start_sandbox
from gateway.signing.top import SIGN_METHODS, sign, top_timestamp

APP_KEY = "12345678"
SECRET = "helloworld"
NOW = 1_700_000_000.0  # 2023-11-15 06:13:20 in GMT+8
FORM = "application/x-www-form-urlencoded;charset=utf-8"

MINIAPP = "yunos.aiot.thirdminiapp.auth.get"
LOGIN = "taobao.ailab.aicloud.top.auth.get"
CHECKBIND = "alibaba.ailabs.iot.device.inside.checkbind.invoke"

MINIAPP_PARAMS = {
    "params": '{"par":{"mini_app_id":"2021001170634349"},'
    '"sys":{"device_id":"A70E1664E02EC41AFCFE75388B653153"}}'
}
LOGIN_PARAMS = {
    "user_id": "13911112222",
    "utd_id": "V944n0HrnZ4DAAtOStvvDat7",
    "schema": "36653b6e-f41a-11e6-bc64-92361f002671",
    "app_type": "IOS",
}
CHECKBIND_PARAMS = {
    "open_id": "1jpASH5XXU2c",
    "product_key": "a171ldgFX4m",
    "trace_id": "213d614316665898871384404d071e",
    "user_type": "ilop",
}
BUSINESS = {MINIAPP: MINIAPP_PARAMS, LOGIN: LOGIN_PARAMS, CHECKBIND: CHECKBIND_PARAMS}

REPO_ROOT = Path(__file__).resolve().parents[2]

Client = TestClient[Any, Any]


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(top_apps={APP_KEY: SECRET}, clock=lambda: NOW)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, state: SandboxState) -> Client:
    return await aiohttp_client(create_sandbox_app(state))


def unsigned(method: str | None, **overrides: str | None) -> dict[str, str]:
    """System + business parameters as the official SDK sends them; None removes a parameter."""
    params: dict[str, str] = {
        "app_key": APP_KEY,
        "timestamp": top_timestamp(NOW),
        "v": "2.0",
        "sign_method": "hmac-sha256",
        "format": "json",
    }
    if method is not None:
        params["method"] = method
        params.update(BUSINESS.get(method, {}))
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def signed(params: Mapping[str, str], secret: str = SECRET) -> dict[str, str]:
    """The parameters plus a `sign` computed by gateway.signing (md5 when sign_method is absent)."""
    method = params.get("sign_method", "md5")
    assert method in SIGN_METHODS
    return {**params, "sign": sign(params, secret, method)}


async def post(client: Client, body: Mapping[str, str], query: str = "") -> aiohttp.ClientResponse:
    path = "/router/rest" + (f"?{query}" if query else "")
    return await client.post(path, data=urlencode(body).encode(), headers={"Content-Type": FORM})


async def call(client: Client, method: str | None, **overrides: str | None) -> dict[str, Any]:
    """POST a signed request and return its JSON body (asserting HTTP 200)."""
    response = await post(client, signed(unsigned(method, **overrides)))
    assert response.status == 200
    body: dict[str, Any] = json.loads(await response.read())
    return body


def error_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The error_response without its random request_id (which must be present)."""
    assert list(body) == ["error_response"]
    error = dict(body["error_response"])
    assert re.fullmatch(r"[0-9a-z]{13}", error.pop("request_id"))
    return error


def parse_xml(data: bytes) -> ET.Element:
    """Parse an XML answer of the sandbox."""
    return ET.fromstring(data)  # noqa: S314 - the sandbox's own output, not untrusted input


# --- platform checks, in the router's order ------------------------------------------------------


async def test_missing_method_is_21(client: Client) -> None:
    """A request without `method` is rejected with code 21 Missing Method."""
    assert error_of(await call(client, None)) == {"code": 21, "msg": "Missing Method"}


async def test_unknown_method_is_22(client: Client) -> None:
    """A method the platform does not serve is rejected with code 22 Invalid Method."""
    error = error_of(await call(client, "taobao.item.seller.get"))
    assert error["code"] == 22
    assert error["msg"] == "Invalid Method"


async def test_unsupported_format_is_23_in_xml(client: Client) -> None:
    """A `format` other than json or xml is rejected with code 23, written in the default XML."""
    response = await post(client, signed(unsigned(LOGIN, format="yaml")))
    assert response.headers["Content-Type"] == "text/xml;charset=UTF-8"
    root = parse_xml(await response.read())
    assert root.tag == "error_response"
    assert root.findtext("code") == "23"
    assert root.findtext("msg") == "Invalid Format"


async def test_missing_app_key_is_28(client: Client) -> None:
    """A request without `app_key` is rejected with code 28 Missing App Key."""
    assert error_of(await call(client, LOGIN, app_key=None)) == {
        "code": 28,
        "msg": "Missing App Key",
    }


async def test_unknown_app_key_is_29(client: Client) -> None:
    """An `app_key` that is not registered is rejected with code 29 Invalid App Key."""
    error = error_of(await call(client, LOGIN, app_key="87654321"))
    assert error == {"code": 29, "msg": "Invalid App Key"}


async def test_missing_timestamp_is_30(client: Client) -> None:
    """A request without `timestamp` is rejected with code 30 Missing Timestamp."""
    error = error_of(await call(client, LOGIN, timestamp=None))
    assert error == {"code": 30, "msg": "Missing Timestamp"}


@pytest.mark.parametrize(
    "timestamp",
    [
        "2023-11-15T06:13:20",  # ISO form
        "1700000000",  # epoch seconds (the SDKs send milliseconds)
        "2023-11-15 6:13:20",  # unpadded hour
        "2023-11-15 06:13",  # no seconds
    ],
)
async def test_unparseable_timestamp_is_31(client: Client, timestamp: str) -> None:
    """A timestamp written neither as `yyyy-MM-dd HH:mm:ss` nor as epoch ms is rejected with code 31."""
    error = error_of(await call(client, LOGIN, timestamp=timestamp))
    assert (error["code"], error["msg"]) == (31, "Invalid Timestamp")


@pytest.mark.parametrize(("skew", "accepted"), [(0, True), (-600, True), (601, False)])
async def test_epoch_milliseconds_are_accepted_within_the_skew(
    client: Client, state: SandboxState, skew: int, accepted: bool
) -> None:
    """The official Python SDK (topsdk 20.4.21.40) sends `timestamp` as epoch milliseconds, which
    TOP accepts: so does the sandbox, held to the same ten minutes."""
    body = await call(client, LOGIN, timestamp=str(int((NOW + skew) * 1000)))
    if accepted:
        assert "ailab_aicloud_top_auth_get_response" in body
    else:
        error = error_of(body)
        assert (error["code"], error["sub_code"]) == (31, "isv.invalid-timestamp")


async def test_timestamp_in_utc_instead_of_gmt8_is_31(client: Client) -> None:
    """A timestamp written in UTC wall clock is 8 hours off and rejected with code 31."""
    error = error_of(await call(client, LOGIN, timestamp="2023-11-14 22:13:20"))
    assert (error["code"], error["msg"]) == (31, "Invalid Timestamp")
    assert error["sub_msg"].startswith("-28800s away")


@pytest.mark.parametrize(
    ("skew", "accepted"), [(600, True), (-600, True), (601, False), (-601, False)]
)
async def test_timestamp_skew_limit_is_ten_minutes(
    client: Client, state: SandboxState, skew: int, accepted: bool
) -> None:
    """The platform accepts a timestamp up to 600 s away from its clock and rejects it beyond."""
    state.clock = lambda: NOW + skew
    body = await call(client, LOGIN)
    if accepted:
        assert "ailab_aicloud_top_auth_get_response" in body
    else:
        assert error_of(body)["code"] == 31


async def test_missing_version_is_32(client: Client) -> None:
    """A request without `v` is rejected with code 32 Missing Version."""
    assert error_of(await call(client, LOGIN, v=None)) == {"code": 32, "msg": "Missing Version"}


async def test_wrong_version_is_33(client: Client) -> None:
    """A `v` other than 2.0 is rejected with code 33 Invalid Version."""
    error = error_of(await call(client, LOGIN, v="1.0"))
    assert (error["code"], error["msg"]) == (33, "Invalid Version")


async def test_unsupported_sign_method_is_25_and_says_so(client: Client) -> None:
    """A `sign_method` other than md5, hmac or hmac-sha256 is rejected with code 25 naming it."""
    params = {**unsigned(LOGIN, sign_method="sha1"), "sign": "0" * 40}
    body = json.loads(await (await post(client, params)).read())
    error = error_of(body)
    assert (error["code"], error["msg"]) == (25, "Invalid signature")
    assert "sign_method 'sha1' is not supported" in error["sub_msg"]


async def test_missing_sign_is_24(client: Client) -> None:
    """A request without `sign` is rejected with code 24 Missing Signature."""
    body = json.loads(await (await post(client, unsigned(LOGIN))).read())
    assert error_of(body) == {"code": 24, "msg": "Missing Signature"}


async def test_sign_with_wrong_secret_is_25(client: Client) -> None:
    """A signature made with another secret is rejected with code 25 Invalid signature."""
    response = await post(client, signed(unsigned(LOGIN), secret="not-the-secret"))
    assert error_of(json.loads(await response.read())) == {"code": 25, "msg": "Invalid signature"}


async def test_lower_case_sign_is_25_with_a_hint(client: Client) -> None:
    """A correct digest written in lower-case hex is rejected with code 25 and a case hint."""
    params = signed(unsigned(LOGIN))
    params["sign"] = params["sign"].lower()
    error = error_of(json.loads(await (await post(client, params)).read()))
    assert (error["code"], error["sub_msg"]) == (25, "sign must be upper-case hex")


async def test_parameter_added_after_signing_is_25(client: Client) -> None:
    """A parameter that is sent but was not signed breaks the signature (code 25)."""
    params = {**signed(unsigned(LOGIN)), "session": "abc"}
    error = error_of(json.loads(await (await post(client, params)).read()))
    assert error["code"] == 25


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
async def test_every_sign_method_is_verified(client: Client, sign_method: str) -> None:
    """Requests signed with md5, HMAC-MD5 or HMAC-SHA256 all pass the signature check."""
    body = await call(client, LOGIN, sign_method=sign_method)
    assert body["ailab_aicloud_top_auth_get_response"]["result"]["is_success"] is True


async def test_absent_sign_method_means_md5(client: Client) -> None:
    """Without `sign_method` the platform verifies an md5 signature, its documented default."""
    body = await call(client, LOGIN, sign_method=None)
    assert "ailab_aicloud_top_auth_get_response" in body


@pytest.mark.parametrize("value", ["", "   "])
async def test_blank_parameter_is_41_even_when_signed(client: Client, value: str) -> None:
    """An empty or whitespace-only parameter, even correctly signed, is rejected with code 41."""
    error = error_of(await call(client, LOGIN, session=value))
    assert error["code"] == 41
    assert error["msg"] == "Invalid Arguments"
    assert error["sub_code"] == "isv.invalid-parameter"
    assert "session" in error["sub_msg"]


async def test_parameter_sent_twice_is_41(client: Client) -> None:
    """A parameter present both in the query string and in the body is rejected with code 41."""
    params = signed(unsigned(LOGIN))
    response = await post(client, params, query=urlencode({"user_id": params["user_id"]}))
    error = error_of(json.loads(await response.read()))
    assert (error["code"], error["sub_code"]) == (41, "isv.invalid-parameter")
    assert "user_id" in error["sub_msg"]


async def test_system_params_in_query_and_business_in_body_are_merged(client: Client) -> None:
    """The SDK layout — system parameters in the query, business ones in the body — is accepted."""
    params = signed(unsigned(LOGIN))
    system = {name: params[name] for name in params if name not in LOGIN_PARAMS}
    response = await post(client, LOGIN_PARAMS, query=urlencode(system))
    body = json.loads(await response.read())
    assert body["ailab_aicloud_top_auth_get_response"]["result"]["is_success"] is True


async def test_invalid_utf8_is_47(client: Client) -> None:
    """Percent-escapes that are not UTF-8 are rejected with code 47 Invalid Encoding."""
    body = urlencode(signed(unsigned(LOGIN))).encode() + b"&nick=%C3%28"
    response = await client.post("/router/rest", data=body, headers={"Content-Type": FORM})
    assert error_of(json.loads(await response.read()))["code"] == 47


async def test_non_utf8_charset_is_47(client: Client) -> None:
    """A form declared in another charset than UTF-8 is rejected with code 47."""
    body = urlencode(signed(unsigned(LOGIN))).encode()
    content_type = "application/x-www-form-urlencoded;charset=GBK"
    response = await client.post("/router/rest", data=body, headers={"Content-Type": content_type})
    assert error_of(json.loads(await response.read()))["code"] == 47


async def test_json_body_is_ignored_like_the_platform_does(client: Client) -> None:
    """A JSON body is not read as parameters: `method` is missing (21), in XML, with the reason."""
    response = await client.post("/router/rest", json=signed(unsigned(LOGIN)))
    root = parse_xml(await response.read())
    assert (root.tag, root.findtext("code"), root.findtext("msg")) == (
        "error_response",
        "21",
        "Missing Method",
    )
    assert "the body was ignored" in (root.findtext("sub_msg") or "")


async def test_first_failing_check_wins(client: Client) -> None:
    """Checks run in the router's order: an unknown app key is reported before a stale timestamp."""
    error = error_of(await call(client, LOGIN, app_key="000", timestamp="2001-01-01 00:00:00"))
    assert error["code"] == 29


async def test_error_request_ids_are_fresh(client: Client) -> None:
    """Every error carries its own request_id."""
    first = (await call(client, None))["error_response"]["request_id"]
    second = (await call(client, None))["error_response"]["request_id"]
    assert first != second


# --- formats --------------------------------------------------------------------------------------


async def test_missing_format_answers_xml(client: Client) -> None:
    """Without `format` the platform default, XML, is returned (a forgotten format=json shows)."""
    response = await post(client, signed(unsigned(LOGIN, format=None)))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/xml;charset=UTF-8"
    root = parse_xml(await response.read())
    assert root.tag == "ailab_aicloud_top_auth_get_response"
    assert root.findtext("result/is_success") == "true"
    assert json.loads(root.findtext("result/auth_info") or "")["success"] is True
    assert root.findtext("request_id")


async def test_xml_error_when_format_missing(client: Client) -> None:
    """Errors also come as XML `<error_response>` when no format is sent."""
    response = await post(client, signed(unsigned(LOGIN, format=None), secret="wrong"))
    root = parse_xml(await response.read())
    assert (root.tag, root.findtext("code"), root.findtext("msg")) == (
        "error_response",
        "25",
        "Invalid signature",
    )


async def test_json_success_headers(client: Client) -> None:
    """A JSON answer has the platform's content type and an HTTP Date header."""
    response = await post(client, signed(unsigned(LOGIN)))
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["Date"].endswith(" GMT")


async def test_simplify_removes_the_wrapper(client: Client) -> None:
    """With simplify=true the `<name>_response` wrapper is dropped from a success."""
    body = await call(client, CHECKBIND, simplify="true")
    assert set(body) == {"result", "ret_value", "ret_code", "message", "trace_id", "request_id"}
    assert body["result"] is True


async def test_simplify_keeps_error_response(client: Client) -> None:
    """With simplify=true an error still arrives inside `error_response`."""
    body = await call(client, LOGIN, simplify="true", user_id=None)
    assert error_of(body)["code"] == 40


# --- yunos.aiot.thirdminiapp.auth.get (seed 000) --------------------------------------------------


async def test_miniapp_session_success(client: Client, state: SandboxState) -> None:
    """A mini-app auth returns a 32-hex upper-case session id and its expiry as a seconds string."""
    body = await call(client, MINIAPP)
    response = body["yunos_aiot_thirdminiapp_auth_get_response"]
    assert set(response) == {"result", "request_id"}
    result = response["result"]
    assert (result["code"], result["msg"]) == (200, "ok")
    session_id = result["data"]["session_id"]
    assert re.fullmatch(r"[0-9A-F]{32}", session_id)
    assert result["data"]["session_expire"] == str(int(NOW) + 7200)
    assert state.issued_tokens == [session_id]


async def test_miniapp_without_sys_is_accepted(client: Client) -> None:
    """`sys` is optional: a params object with only `par` succeeds."""
    body = await call(client, MINIAPP, params='{"par":{"mini_app_id":"2021001170634349"}}')
    assert body["yunos_aiot_thirdminiapp_auth_get_response"]["result"]["code"] == 200


@pytest.mark.parametrize(
    ("expire_format", "expected"),
    [
        ("seconds", str(int(NOW) + 60)),
        ("milliseconds", str((int(NOW) + 60) * 1000)),
        ("relative", "60"),
    ],
)
async def test_session_expire_formats(
    client: Client, state: SandboxState, expire_format: Any, expected: str
) -> None:
    """top_session_expire_format writes session_expire as absolute s, absolute ms or relative s."""
    state.top_session_expire_format = expire_format
    state.token_ttl_s = 60
    body = await call(client, MINIAPP)
    data = body["yunos_aiot_thirdminiapp_auth_get_response"]["result"]["data"]
    assert data["session_expire"] == expected


async def test_miniapp_missing_params_is_40(client: Client) -> None:
    """Without the `params` field the call is rejected with code 40."""
    error = error_of(await call(client, MINIAPP, params=None))
    assert error["code"] == 40
    assert error["msg"] == "Missing Required Arguments:params"
    assert error["sub_code"] == "isv.missing-parameter"


@pytest.mark.parametrize("params", ['{"par":{}}', '{"sys":{"device_id":"D"}}', '{"par":null}'])
async def test_miniapp_missing_mini_app_id_is_40(client: Client, params: str) -> None:
    """A params object without par.mini_app_id is rejected with code 40 naming mini_app_id."""
    error = error_of(await call(client, MINIAPP, params=params))
    assert (error["code"], error["msg"]) == (40, "Missing Required Arguments:mini_app_id")


@pytest.mark.parametrize(
    "params",
    [
        "{par:{mini_app_id:1}}",  # not JSON
        '["2021001170634349"]',  # not an object
        '{"par":"2021001170634349"}',  # par not an object
        '{"par":{"mini_app_id":2021001170634349}}',  # not a string
        '{"par":{"mini_app_id":"1"},"sys":{"device_id":7}}',  # device_id not a string
    ],
)
async def test_miniapp_malformed_params_is_41(client: Client, params: str) -> None:
    """A `params` value that is not the documented JSON object is rejected with code 41."""
    error = error_of(await call(client, MINIAPP, params=params))
    assert (error["code"], error["sub_code"]) == (41, "isv.invalid-parameter")


# --- taobao.ailab.aicloud.top.auth.get (seed 001) -------------------------------------------------


async def test_login_auth_info_is_double_encoded(client: Client, state: SandboxState) -> None:
    """auth_info is a JSON string that decodes to the documented model with a fresh accessToken."""
    body = await call(client, LOGIN)
    response = body["ailab_aicloud_top_auth_get_response"]
    result = response["result"]
    assert set(result) == {"auth_info", "is_success"}  # msg_info is null on success, so omitted
    assert result["is_success"] is True
    assert isinstance(result["auth_info"], str)
    auth_info = json.loads(result["auth_info"])
    assert auth_info["msgCode"] == "SUCCESS"
    assert auth_info["msgInfo"] == "成功"
    assert auth_info["success"] is True
    model = auth_info["model"]
    assert set(model) == {
        "isAuthenticated",
        "accessToken",
        "isTempUser",
        "isNew",
        "userId",
        "deviceIds",
        "utdId",
    }
    assert re.fullmatch(r"[A-Za-z0-9+/]{75}=", model["accessToken"])
    assert model["utdId"] == LOGIN_PARAMS["utd_id"]
    assert model["deviceIds"] == []
    assert state.issued_tokens == [model["accessToken"]]
    assert "expire" not in result["auth_info"].lower()


async def test_login_auth_info_escapes_like_gson(client: Client) -> None:
    """auth_info writes `=` as \\u003d and Chinese as raw UTF-8, like the vendor's example."""
    raw = await (await post(client, signed(unsigned(LOGIN)))).read()
    auth_info = json.loads(raw)["ailab_aicloud_top_auth_get_response"]["result"]["auth_info"]
    assert "\\u003d" in auth_info
    assert "=" not in auth_info
    assert "成功".encode() in raw


async def test_login_same_user_same_user_id_new_token(client: Client) -> None:
    """The same (user_id, schema) keeps its userId, is no longer new, and gets a new token."""

    async def model(**overrides: str | None) -> dict[str, Any]:
        body = await call(client, LOGIN, **overrides)
        auth_info = body["ailab_aicloud_top_auth_get_response"]["result"]["auth_info"]
        result: dict[str, Any] = json.loads(auth_info)["model"]
        return result

    first, second = await model(), await model()
    other_schema = await model(schema="another-schema")
    assert (first["isNew"], second["isNew"], other_schema["isNew"]) == (True, False, True)
    assert first["userId"] == second["userId"] != other_schema["userId"]
    assert first["accessToken"] != second["accessToken"]


@pytest.mark.parametrize("missing", ["user_id", "utd_id", "schema", "app_type"])
async def test_login_missing_required_is_40(client: Client, missing: str) -> None:
    """Each required login parameter, when absent, is reported by name with code 40."""
    error = error_of(await call(client, LOGIN, **{missing: None}))
    assert error["code"] == 40
    assert error["msg"] == f"Missing Required Arguments:{missing}"
    assert error["sub_code"] == "isv.missing-parameter"


@pytest.mark.parametrize(("length", "accepted"), [(32, True), (33, False)])
async def test_login_utd_id_limit_is_32(client: Client, length: int, accepted: bool) -> None:
    """A utd_id of 32 characters is accepted and one of 33 is rejected with code 41."""
    body = await call(client, LOGIN, utd_id="u" * length)
    if accepted:
        assert "ailab_aicloud_top_auth_get_response" in body
    else:
        error = error_of(body)
        assert (error["code"], error["sub_code"]) == (41, "isv.invalid-parameter")
        assert "utd_id" in error["sub_msg"]


# --- alibaba.ailabs.iot.device.inside.checkbind.invoke (seed 002) ---------------------------------


async def test_checkbind_success_fields(client: Client, state: SandboxState) -> None:
    """A bind poll answers with seed 002's fields and the platform's own trace id; no token."""
    body = await call(client, CHECKBIND)
    response = body["alibaba_ailabs_iot_device_inside_checkbind_invoke_response"]
    assert response["result"] is True
    assert response["ret_value"] is True
    assert response["ret_code"] == 0
    assert response["message"] == "success"
    assert re.fullmatch(r"[0-9a-f]{30}", response["trace_id"])
    assert response["trace_id"] != CHECKBIND_PARAMS["trace_id"]
    assert state.issued_tokens == []


async def test_bind_after_polls_per_identity(client: Client, state: SandboxState) -> None:
    """With bind_after_polls=2 an identity reads false twice, then true; identities count apart."""
    state.bind_after_polls = 2

    async def bound(**overrides: str | None) -> bool:
        body = await call(client, CHECKBIND, **overrides)
        result: bool = body["alibaba_ailabs_iot_device_inside_checkbind_invoke_response"][
            "ret_value"
        ]
        return result

    assert [await bound(), await bound()] == [False, False]
    assert await bound(product_key="other-pk") is False
    assert [await bound(), await bound()] == [True, True]


@pytest.mark.parametrize("missing", ["open_id", "product_key", "trace_id", "user_type"])
async def test_checkbind_missing_required_is_40(client: Client, missing: str) -> None:
    """Each required bind-poll parameter, when absent, is reported by name with code 40."""
    error = error_of(await call(client, CHECKBIND, **{missing: None}))
    assert (error["code"], error["msg"]) == (40, f"Missing Required Arguments:{missing}")


async def test_checkbind_optional_params_accepted(client: Client) -> None:
    """Optional device_name, iot_id, server_event_request_id and a JSON-object params pass."""
    body = await call(
        client,
        CHECKBIND,
        device_name="AQWEW",
        iot_id="jpUbH5XXU2c1tlwIoMNi",
        server_event_request_id="e86df91a74fc087a5aa1e07173f8225d",
        params='{"ssProductKey":"1jpASH5XXU2c","authCode":"SH5XXU2c"}',
    )
    assert body["alibaba_ailabs_iot_device_inside_checkbind_invoke_response"]["result"] is True


@pytest.mark.parametrize("params", ["not json", '"a string"', "[1,2]", "null"])
async def test_checkbind_params_must_be_json_object(client: Client, params: str) -> None:
    """A checkbind `params` that is not a JSON object is rejected with code 41."""
    error = error_of(await call(client, CHECKBIND, params=params))
    assert (error["code"], error["sub_code"]) == (41, "isv.invalid-parameter")


# --- canned responses, recording, knobs -----------------------------------------------------------


async def test_canned_response_only_after_checks(client: Client, state: SandboxState) -> None:
    """A queued answer is used only by a request that passed every check, and is recorded."""
    quota = {
        "error_response": {
            "code": 7,
            "msg": "App Call Limited",
            "sub_code": "accesscontrol.limited-by-app-access-count",
            "sub_msg": "This ban will last for 12 more seconds",
        }
    }
    state.enqueue(LOGIN, CannedResponse.json(quota, headers={"X-Canned": "1"}))

    bad = await call(client, LOGIN, v="1.0")
    assert error_of(bad)["code"] == 33
    assert state.canned_left(LOGIN) == 1

    response = await post(client, signed(unsigned(LOGIN)))
    assert response.headers["X-Canned"] == "1"
    assert json.loads(await response.read()) == quota
    assert state.canned_left(LOGIN) == 0
    assert state.issued_tokens == []  # the simulator's own answer did not run

    after = await call(client, LOGIN)
    assert "ailab_aicloud_top_auth_get_response" in after
    assert state.calls(LOGIN) == 3


async def test_canned_responses_play_in_order_with_status(
    client: Client, state: SandboxState
) -> None:
    """Several queued answers play in order, each with its own HTTP status and content type."""
    state.enqueue(
        MINIAPP,
        CannedResponse(status=503, body=b"busy", content_type="text/plain"),
        CannedResponse(status=200, body=b"{}"),
    )
    first = await post(client, signed(unsigned(MINIAPP)))
    second = await post(client, signed(unsigned(MINIAPP)))
    assert (first.status, first.headers["Content-Type"], await first.read()) == (
        503,
        "text/plain",
        b"busy",
    )
    assert (second.status, await second.read()) == (200, b"{}")


async def test_request_recorded_byte_for_byte(client: Client, state: SandboxState) -> None:
    """The recorded request keeps the raw query string, the exact body bytes, headers and params."""
    params = signed(unsigned(LOGIN, user_id="张 三+1"))
    system = {name: params[name] for name in params if name not in LOGIN_PARAMS}
    query = urlencode(system)
    business = {name: params[name] for name in LOGIN_PARAMS}
    body = urlencode(business).encode()
    url = URL(f"/router/rest?{query}", encoded=True)  # sent as is, not re-normalized
    await client.post(url, data=body, headers={"Content-Type": FORM})

    [recorded] = state.requests
    assert (recorded.vendor, recorded.api, recorded.method) == ("top", LOGIN, "POST")
    assert recorded.path == "/router/rest"
    assert recorded.query_string == query
    assert "06%3A13%3A20" in recorded.query_string
    assert recorded.body == body
    assert b"%E5%BC%A0+%E4%B8%89%2B1" in recorded.body
    assert recorded.headers["Content-Type"] == FORM
    assert recorded.params == params
    assert recorded.params["user_id"] == "张 三+1"


async def test_failed_requests_are_recorded_and_counted(
    client: Client, state: SandboxState
) -> None:
    """Requests failing a check are still recorded and counted for their method."""
    await call(client, LOGIN, app_key="nope")
    await call(client, None)
    assert state.calls(LOGIN) == 1
    assert [recorded.api for recorded in state.requests] == [LOGIN, None]


async def test_reset_records(client: Client, state: SandboxState) -> None:
    """reset_records forgets requests and issued tokens but keeps the simulated users."""
    await call(client, LOGIN)
    state.reset_records()
    assert (state.requests, state.issued_tokens, state.calls(LOGIN)) == ([], [], 0)
    body = await call(client, LOGIN)
    auth_info = json.loads(body["ailab_aicloud_top_auth_get_response"]["result"]["auth_info"])
    assert auth_info["model"]["isNew"] is False


async def test_latency_delays_the_answer(client: Client, state: SandboxState) -> None:
    """With latency_s set the answer arrives no sooner than that delay."""
    state.latency_s = 0.2
    started = time.monotonic()
    await call(client, LOGIN)
    assert time.monotonic() - started >= 0.2


async def test_get_is_not_routed(client: Client) -> None:
    """Only POST reaches the router."""
    response = await client.get("/router/rest")
    assert response.status == 405


# --- serving -------------------------------------------------------------------------------------


async def test_start_sandbox_on_a_free_port(state: SandboxState) -> None:
    """start_sandbox with port 0 listens on a real free port and returns its base URL."""
    runner, base_url = await start_sandbox(state)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", base_url)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base_url}/router/rest",
                data=urlencode(signed(unsigned(LOGIN))),
                headers={"Content-Type": FORM},
            ) as response,
        ):
            body = await response.json(content_type=None)
        assert body["ailab_aicloud_top_auth_get_response"]["result"]["is_success"] is True
    finally:
        await runner.cleanup()


_CLI = (
    "import argparse, sys\n"
    "from gateway.sandbox import cli\n"
    "parser = argparse.ArgumentParser()\n"
    "cli.add_arguments(parser)\n"
    "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
)


async def test_cli_generates_an_app_serves_and_stops_on_sigint() -> None:
    """The CLI prints a generated key, secret and both endpoints, serves, and exits 0 on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLI,
        "--port",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("Press Ctrl+C"):
            line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
            assert line, f"sandbox exited early: {lines}"
            lines.append(line.decode().strip())
        output = "\n".join(lines)
        key, secret = re.findall(r"app_key=(\d{8}) app_secret=([0-9a-f]{32})", output)[0]
        assert re.search(r"AppKey=\w{17} AppSecret=\w{32}", output)
        endpoint = re.findall(r"TOP endpoint: +(\S+)", output)[0]
        assert re.search(
            r"Tencent endpoint: +http://127\.0\.0\.1:\d+/api/exploreropen/appapi", output
        )
        # The subprocess runs on the real clock.
        params = signed(
            unsigned(LOGIN, app_key=key, timestamp=top_timestamp(time.time())), secret=secret
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                endpoint, data=urlencode(params), headers={"Content-Type": FORM}
            ) as response,
        ):
            body = await response.json(content_type=None)
        assert body["ailab_aicloud_top_auth_get_response"]["result"]["is_success"] is True
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_recording_off_still_counts_calls(client: Client, state: SandboxState) -> None:
    """With record_requests off nothing is kept, but calls() still counts each request."""
    state.record_requests = False
    await call(client, LOGIN)
    await call(client, LOGIN, v=None)
    assert (state.requests, state.calls(LOGIN)) == ([], 2)


@pytest.mark.parametrize(
    "argv",
    [
        ["--top-app", "no-colon"],
        ["--tencent-app", ":secret"],
        ["--port", "70000"],
        ["--latency", "-1"],
    ],
)
def test_cli_rejects_bad_options(argv: list[str]) -> None:
    """Malformed KEY:SECRET pairs, ports and negative knobs are refused by the option parser."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(argv)


def test_cli_uses_given_apps_without_printing_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """Given apps are used as is; only their keys are printed, never their secrets."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    apps = ["--top-app", "111:s:e:c", "--top-app", "222:two", "--tencent-app", "AK:tsecret"]
    knobs = ["--token-ttl", "60", "--tencent-envelope", "official", "--bind-after-polls", "3"]
    args = parser.parse_args([*apps, *knobs])
    state = cli.state_from_args(args)
    assert state.top_apps == {"111": "s:e:c", "222": "two"}
    assert state.tencent_apps == {"AK": "tsecret"}
    assert (state.token_ttl_s, state.tencent_envelope, state.bind_after_polls) == (
        60,
        "official",
        3,
    )
    output = capsys.readouterr().out
    assert "111, 222" in output
    assert "s:e:c" not in output
    assert "tsecret" not in output


def test_cli_pins_a_plugin_vendors_app_without_printing_its_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--plugin-app VENDOR:KEY:SECRET` gives a plug-in protocol's stand-in a known app (the example
    plug-in's `wechat` vendor is installed with the test venv); only the key is printed."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    state = cli.state_from_args(parser.parse_args(["--plugin-app", "wechat:wx01:p:l:g"]))
    assert state.plugin_apps["wechat"] == {"wx01": "p:l:g"}
    output = capsys.readouterr().out
    assert "wechat app keys: wx01" in output
    assert "p:l:g" not in output
    assert "wechat app (generated" not in output
