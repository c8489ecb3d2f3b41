"""Vendor words become errors already redacted and cut, so no error (nor a failure record kept of one)
holds a token-looking value or the provider's own secret; what the caller is owed is left alone."""

from __future__ import annotations

import dataclasses
import secrets

import orjson
import pytest

from gateway.errors import GatewayError, VendorConfigurationError, VendorRejectedInput
from gateway.providers.base import VendorResponse
from gateway.providers.registry import Provider
from gateway.redaction import MAX_VENDOR_TEXT, REDACTED

NOW = 1595000000.0
SIG64 = secrets.token_hex(32).upper()
# No credential shape (lower-case words and dashes): only the exact rule can find it.
PLAIN_SECRET = "correct-horse-battery-staple-" + "".join(
    secrets.choice("abcdefgh") for _ in range(6)
)


def answer(payload: object) -> VendorResponse:
    return VendorResponse(200, {}, orjson.dumps(payload))


def raised(provider: Provider, payload: object) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        provider.read_response(answer(payload), NOW)
    return caught.value


def everything_said(error: GatewayError) -> str:
    """Every text the error carries: detail, message, upstream."""
    upstream = error.upstream.as_dict() if error.upstream else {}
    return "\n".join([error.detail, str(error), *(v for v in upstream.values() if v)])


def test_top_error_echoing_secret_and_signature_is_redacted(
    providers: dict[str, Provider],
) -> None:
    """A TOP error_response quoting a plain secret and a 64-hex sign keeps its words, loses both values."""
    zebra = dataclasses.replace(providers["zebra"], secret=PLAIN_SECRET)
    error = raised(
        zebra,
        {
            "error_response": {
                "code": 50,
                "msg": "Remote service error",
                "sub_code": "isv.invalid-parameter",
                "sub_msg": f"非法参数 {PLAIN_SECRET} sign={SIG64} 签名 {SIG64}",
            }
        },
    )
    assert isinstance(error, VendorRejectedInput)
    assert error.upstream is not None
    assert error.upstream.as_dict() == {
        "code": "50",
        "sub_code": "isv.invalid-parameter",
        "message": f"非法参数 {REDACTED} sign={REDACTED} 签名 {REDACTED}",
    }
    said = everything_said(error)
    assert PLAIN_SECRET not in said and SIG64 not in said


def test_top_signature_error_quoting_the_secret_is_a_502_without_it(
    providers: dict[str, Provider],
) -> None:
    """Code 25 still classifies as vendor_signature_rejected when its message quotes the secret."""
    zebra = dataclasses.replace(providers["zebra"], secret=PLAIN_SECRET)
    error = raised(
        zebra, {"error_response": {"code": 25, "msg": f"Invalid signature with {PLAIN_SECRET}"}}
    )
    assert isinstance(error, VendorConfigurationError) and error.code == "vendor_signature_rejected"
    assert (
        error.upstream is not None
        and error.upstream.message == f"Invalid signature with {REDACTED}"
    )


def test_tencent_error_echoing_secret_and_token_is_redacted(
    providers: dict[str, Provider],
) -> None:
    """A Tencent Error.Message quoting the AppSecret and a token loses both; the code still classifies."""
    wechat = dataclasses.replace(providers["wechat"], secret=PLAIN_SECRET)
    token = secrets.token_hex(16)
    error = raised(
        wechat,
        {
            "Response": {
                "Error": {
                    "Code": "InvalidParameterValue.InvalidAccessToken",
                    "Message": f"token {token} invalid (app secret {PLAIN_SECRET})",
                },
                "RequestId": "r",
            }
        },
    )
    assert error.code == "vendor_credential_invalid"
    assert error.upstream is not None
    assert error.upstream.message == f"token {REDACTED} invalid (app secret {REDACTED})"
    said = everything_said(error)
    assert PLAIN_SECRET not in said and token not in said


def test_business_failure_words_are_redacted_in_detail_too(providers: dict[str, Provider]) -> None:
    """A mini-app business failure whose code and msg are token-shaped leaves neither in detail or upstream."""
    error = raised(
        providers["zebra"],
        {"result": {"code": SIG64, "msg": f"session {SIG64[:40]} expired"}},
    )
    assert error.detail == f"the vendor answered result code {REDACTED}"
    assert error.upstream is not None
    assert error.upstream.as_dict() == {
        "code": REDACTED,
        "sub_code": None,
        "message": f"session {REDACTED} expired",
    }


def test_vendor_words_are_cut(providers: dict[str, Provider]) -> None:
    """A vendor message of 10 000 characters is cut to MAX_VENDOR_TEXT."""
    error = raised(
        providers["wechat"],
        {"Response": {"Error": {"Code": "InvalidParameterValue", "Message": "长" * 10_000}}},
    )
    assert error.upstream is not None and error.upstream.message == "长" * MAX_VENDOR_TEXT


def test_success_data_is_not_redacted(providers: dict[str, Provider]) -> None:
    """An AliGenie userId that looks like a token is the caller's data: it is answered as sent."""
    user_id = "AAHrnZ4DAAtOStvvDat7xyz123"
    auth_info = {
        "success": True,
        "msgCode": "SUCCESS",
        "model": {"accessToken": secrets.token_hex(16), "userId": user_id},
    }
    body = {
        "ailab_aicloud_top_auth_get_response": {
            "result": {"is_success": True, "auth_info": orjson.dumps(auth_info).decode()}
        }
    }
    credential = providers["aligenie"].read_response(answer(body), NOW)
    assert credential.data["user_id"] == user_id
