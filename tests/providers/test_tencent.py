"""Tencent AppGetTokenByWeiXin: the exact JSON sent, both envelopes read, each error classified."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import (
    GatewayError,
    VendorBadResponse,
    VendorHttpError,
    VendorRejectedInput,
    VendorUnavailable,
    VendorUnknownError,
)
from gateway.providers.base import VendorResponse
from gateway.providers.registry import Provider
from gateway.providers.tencent_iot import error_from_code
from gateway.signing import tencent_iot as tencent_signing
from tests.providers.conftest import PINNED, fixture_response

SEED_INPUT = {
    "wx_open_id": "0123456789",
    "nick_name": "tests",
    "avatar": "http://example.com/path/to/avatar.jpg",
}


def test_request_is_the_documented_json(providers: dict[str, Provider], secret: str) -> None:
    """All parameters are top-level JSON fields; Timestamp and Nonce are numbers; the signature verifies."""
    provider = providers["wechat"]
    request = provider.build_request(provider.parse_inputs(SEED_INPUT), PINNED)
    assert request.url == "https://iot.cloud.tencent.com/api/exploreropen/appapi"
    assert request.headers["Content-Type"] == "application/json"
    sent = orjson.loads(request.body)
    signature = sent.pop("Signature")
    assert sent == {
        "Action": "AppGetTokenByWeiXin",
        "RequestId": "476c990a-f5b7-4575-987c-4ef70e474932",
        "AppKey": "ahPxdKTGrejd",
        "Timestamp": 1451620800,
        "Nonce": 71087795,
        "WxOpenID": "0123456789",
        "NickName": "tests",
        "Avatar": "http://example.com/path/to/avatar.jpg",
    }
    assert isinstance(sent["Timestamp"], int) and isinstance(sent["Nonce"], int)
    assert request.string_to_sign == (
        "Action=AppGetTokenByWeiXin&AppKey=ahPxdKTGrejd&Avatar=http://example.com/path/to/avatar.jpg"
        "&NickName=tests&Nonce=71087795&RequestId=476c990a-f5b7-4575-987c-4ef70e474932"
        "&Timestamp=1451620800&WxOpenID=0123456789"
    )
    assert signature == tencent_signing.hmac_sha1_base64(request.string_to_sign, secret)


@pytest.mark.parametrize(
    "fixture", ["tencent/documented_success.json", "tencent/official_success.json"]
)
def test_both_success_envelopes(providers: dict[str, Provider], fixture: str) -> None:
    """The documented `Response` envelope and the official clients' `data` envelope read the same."""
    credential = providers["wechat"].read_response(fixture_response(fixture), 1556000000)
    assert credential.token == "d2f3a41c0f5b4e0b9d6b0b8a1c4e8514"
    assert credential.expires_at == 1556076201
    assert credential.upstream_request_id == "rest-client"


@pytest.mark.parametrize(
    "fixture", ["tencent/documented_error.json", "tencent/official_error.json"]
)
def test_both_error_envelopes(providers: dict[str, Provider], fixture: str) -> None:
    """An Error in either envelope is classified, keeping the vendor's Code and Message."""
    with pytest.raises(VendorRejectedInput) as caught:
        providers["wechat"].read_response(fixture_response(fixture), 1556000000)
    assert caught.value.code == "vendor_account_not_found"
    assert caught.value.upstream is not None
    assert caught.value.upstream.as_dict() == {
        "code": "InvalidParameterValue.ErrorUserNotExists",
        "sub_code": None,
        "message": "account does not exist",
    }


def test_official_envelope_nonzero_code_without_error(providers: dict[str, Provider]) -> None:
    """code != 0 without an Error object is still a failure, carrying code and msg."""
    body = b'{"code":-1,"msg":"system busy","data":{}}'
    with pytest.raises(VendorUnknownError) as caught:
        providers["wechat"].read_response(VendorResponse(200, {}, body), 0)
    assert caught.value.upstream is not None
    assert (caught.value.upstream.code, caught.value.upstream.message) == ("-1", "system busy")


@pytest.mark.parametrize(
    ("code", "expected_class", "problem_code", "status"),
    [
        ("InternalError", VendorUnavailable, "vendor_unavailable", 502),
        ("ErrorRequiredParamNotFound", VendorRejectedInput, "vendor_rejected_input", 422),
        ("InvalidAction", VendorRejectedInput, "vendor_rejected_input", 422),
        ("InvalidParameterValue", VendorRejectedInput, "vendor_rejected_input", 422),
        ("InvalidParameterValue.InvalidJSON", VendorRejectedInput, "vendor_rejected_input", 422),
        (
            "InvalidParameterValue.NickNameLengthInvalid",
            VendorRejectedInput,
            "vendor_rejected_input",
            422,
        ),
        (
            "InvalidParameterValue.ErrorUserNotExists",
            VendorRejectedInput,
            "vendor_account_not_found",
            422,
        ),
        (
            "InvalidParameterValue.InvalidAccessToken",
            VendorRejectedInput,
            "vendor_credential_invalid",
            422,
        ),
        ("InvalidParameterValue.SignatureInvalid", VendorUnknownError, "vendor_error", 502),
    ],
)
def test_error_codes(
    code: str, expected_class: type[GatewayError], problem_code: str, status: int
) -> None:
    """Each published Tencent code has its class; unpublished ones are a plain 502."""
    error = error_from_code(code, "m")
    assert type(error) is expected_class
    assert (error.code, error.status) == (problem_code, status)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"", VendorBadResponse),
        (200, b"<html>oops</html>", VendorBadResponse),
        (200, b'{"Response": {"RequestId": "x"}}', VendorBadResponse),
        (200, b'{"Response": {"Data": {"Token": "t"}}}', VendorBadResponse),
        (200, b'{"Response": {"Error": "boom"}}', VendorBadResponse),
        (200, b'{"something": "else"}', VendorBadResponse),
        (502, b'{"Response": {}}', VendorHttpError),
    ],
)
def test_unreadable_answers(
    providers: dict[str, Provider], status: int, body: bytes, expected: type[GatewayError]
) -> None:
    """Missing Data, Token or ExpireAt, a non-object Error, or HTTP errors become typed 502s."""
    with pytest.raises(expected):
        providers["wechat"].read_response(VendorResponse(status, {}, body), 0)
