"""Every TOP answer shape is read: wrapped, simplify, errors with and without sub_code, business failures."""

from __future__ import annotations

import pytest

from gateway.errors import (
    GatewayError,
    VendorBadResponse,
    VendorConfigurationError,
    VendorHttpError,
    VendorQuotaExceeded,
    VendorRejectedInput,
    VendorUnavailable,
    VendorUnknownError,
)
from gateway.providers.base import VendorResponse
from gateway.providers.registry import Provider
from gateway.providers.top import error_from_response
from tests.providers.conftest import fixture_response

NOW = 1595000000.0


def test_miniapp_success_wrapped(providers: dict[str, Provider]) -> None:
    """The wrapped answer gives the session id, the expiry as a number and the request id."""
    credential = providers["zebra"].read_response(
        fixture_response("top/miniapp_auth_success.json"), NOW
    )
    assert credential.token == "A70E1664E02EC41AFCFE75388B6531BB"
    assert credential.expires_at == 1595920127
    assert credential.upstream_request_id == "3ub8h0q7ybhh"


def test_miniapp_success_simplified(providers: dict[str, Provider]) -> None:
    """The simplify=true answer (no wrapper) reads the same."""
    credential = providers["zebra"].read_response(
        fixture_response("top/miniapp_auth_success_simplify.json"), NOW
    )
    assert credential.token == "A70E1664E02EC41AFCFE75388B6531BB"
    assert credential.upstream_request_id == "3ub8h0q7ybhh"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1595920127", 1595920127),  # absolute seconds, as a string (the documented form)
        (1595920127, 1595920127),
        ("1595920127000", 1595920127),  # milliseconds
        ("7200", NOW + 7200),  # relative seconds
    ],
)
def test_session_expire_forms(providers: dict[str, Provider], raw: object, expected: float) -> None:
    """session_expire is read as seconds, milliseconds or relative seconds by its size."""
    body = (
        '{"result":{"code":200,"data":{"session_id":"S","session_expire":%s}}}'
        % (f'"{raw}"' if isinstance(raw, str) else raw)
    ).encode()
    credential = providers["zebra"].read_response(VendorResponse(200, {}, body), NOW)
    assert credential.expires_at == expected


@pytest.mark.parametrize("raw", ['"soon"', "null", '""', "-5", "true"])
def test_unreadable_session_expire_is_a_bad_response(
    providers: dict[str, Provider], raw: str
) -> None:
    """An expiry that is missing or not a positive number is a 502, never a guess."""
    body = (
        f'{{"result":{{"code":200,"data":{{"session_id":"S","session_expire":{raw}}}}}}}'
    ).encode()
    with pytest.raises(VendorBadResponse):
        providers["zebra"].read_response(VendorResponse(200, {}, body), NOW)


def test_miniapp_business_failure_is_rejected_input(providers: dict[str, Provider]) -> None:
    """result.code != 200 is the vendor rejecting the input, with its code and message kept."""
    with pytest.raises(VendorRejectedInput) as caught:
        providers["zebra"].read_response(
            fixture_response("top/miniapp_auth_business_failure.json"), NOW
        )
    assert caught.value.upstream is not None
    assert caught.value.upstream.as_dict() == {
        "code": "403",
        "sub_code": None,
        "message": "mini app not authorized",
    }


def test_aicloud_auth_info_is_decoded_twice(providers: dict[str, Provider]) -> None:
    """auth_info is JSON inside a string: the token and user fields come out of the second decode."""
    credential = providers["aligenie"].read_response(
        fixture_response("top/aicloud_auth_success.json"), NOW
    )
    assert (
        credential.token
        == "ce0ofoQ41I85YJCDLzuAkgPzjsI0XiwdMF30blmqxHs/PkXMravx+CVqxhHja212Q7H980f6pV0="
    )
    assert credential.expires_at is None
    assert credential.data == {
        "user_id": "83790",
        "is_new": False,
        "is_temp_user": True,
        "is_authenticated": False,
        "device_ids": [],
    }


def test_aicloud_not_success(providers: dict[str, Provider]) -> None:
    """is_success=false is a rejection carrying msg_info."""
    with pytest.raises(VendorRejectedInput) as caught:
        providers["aligenie"].read_response(
            fixture_response("top/aicloud_auth_not_success.json"), NOW
        )
    assert caught.value.upstream is not None and caught.value.upstream.message == "参数不可用"


def test_aicloud_auth_info_failure(providers: dict[str, Provider]) -> None:
    """auth_info.success=false is a rejection carrying msgCode and msgInfo."""
    with pytest.raises(VendorRejectedInput) as caught:
        providers["aligenie"].read_response(
            fixture_response("top/aicloud_auth_info_failure.json"), NOW
        )
    assert caught.value.upstream is not None
    assert (caught.value.upstream.code, caught.value.upstream.message) == (
        "USER_FORBIDDEN",
        "用户被禁用",
    )


def test_aicloud_auth_info_not_json(providers: dict[str, Provider]) -> None:
    """An auth_info string that is not JSON is a bad response, not a crash."""
    body = b'{"result":{"is_success":true,"auth_info":"{not json"}}'
    with pytest.raises(VendorBadResponse):
        providers["aligenie"].read_response(VendorResponse(200, {}, body), NOW)


def test_checkbind_bound_and_not_bound(providers: dict[str, Provider]) -> None:
    """ret_value true is bound (cacheable), false is not yet bound (never cached)."""
    bound = providers["bind"].read_response(fixture_response("top/checkbind_bound.json"), NOW)
    assert (bound.token, bound.data, bound.cacheable) == (None, {"bound": True}, True)
    waiting = providers["bind"].read_response(fixture_response("top/checkbind_not_bound.json"), NOW)
    assert (waiting.data, waiting.cacheable) == ({"bound": False}, False)


def test_checkbind_internal_error_is_transient(providers: dict[str, Provider]) -> None:
    """result=false with ret_code 331001 is the vendor's internal error: retryable 502."""
    with pytest.raises(VendorUnavailable) as caught:
        providers["bind"].read_response(fixture_response("top/checkbind_internal_error.json"), NOW)
    assert caught.value.retryable
    assert caught.value.upstream is not None
    assert caught.value.upstream.as_dict() == {
        "code": "331001",
        "sub_code": None,
        "message": "系统内部未知错误",
    }


def test_error_response_with_sub_code(providers: dict[str, Provider]) -> None:
    """code 50 with an isv.* sub_code is the caller's input: 422 with code, sub_code and sub_msg."""
    with pytest.raises(VendorRejectedInput) as caught:
        providers["zebra"].read_response(fixture_response("top/error_with_sub_code.json"), NOW)
    assert caught.value.status == 422
    assert caught.value.upstream is not None
    assert caught.value.upstream.as_dict() == {
        "code": "50",
        "sub_code": "isv.invalid-parameter",
        "message": "非法参数",
    }


def test_error_response_without_sub_code(providers: dict[str, Provider]) -> None:
    """code 25 without sub_code is a signature problem: 502, message from msg."""
    with pytest.raises(VendorConfigurationError) as caught:
        providers["zebra"].read_response(fixture_response("top/error_without_sub_code.json"), NOW)
    assert caught.value.code == "vendor_signature_rejected"
    assert caught.value.upstream is not None
    assert caught.value.upstream.as_dict() == {
        "code": "25",
        "sub_code": None,
        "message": "Invalid signature",
    }


def test_call_limited_carries_the_ban_seconds(providers: dict[str, Provider]) -> None:
    """code 7 is a quota error whose Retry-After is the ban's advertised seconds."""
    with pytest.raises(VendorQuotaExceeded) as caught:
        providers["zebra"].read_response(fixture_response("top/error_call_limited.json"), NOW)
    assert (caught.value.status, caught.value.retry_after_s) == (429, 71)


@pytest.mark.parametrize(
    ("error", "expected_class", "expected_code", "status", "retryable"),
    [
        ({"code": 4}, VendorQuotaExceeded, "vendor_quota_exceeded", 429, True),
        ({"code": 10}, VendorUnavailable, "vendor_unavailable", 502, True),
        ({"code": 11}, VendorConfigurationError, "vendor_permission_denied", 502, False),
        (
            {"code": 15, "sub_code": "isp.top-remote-connection-timeout"},
            VendorUnavailable,
            "vendor_unavailable",
            502,
            True,
        ),
        (
            {"code": 15, "sub_code": "isp.remote-connection-error-tmall"},
            VendorUnavailable,
            "vendor_unavailable",
            502,
            True,
        ),
        (
            {"code": 50, "sub_code": "isv.missing-parameter"},
            VendorRejectedInput,
            "vendor_rejected_input",
            422,
            False,
        ),
        ({"code": 21}, VendorRejectedInput, "vendor_rejected_input", 422, False),
        ({"code": 41}, VendorRejectedInput, "vendor_rejected_input", 422, False),
        ({"code": 24}, VendorConfigurationError, "vendor_signature_rejected", 502, False),
        ({"code": 27}, VendorRejectedInput, "vendor_credential_invalid", 422, False),
        ({"code": 29}, VendorConfigurationError, "vendor_app_key_rejected", 502, False),
        ({"code": "31"}, VendorConfigurationError, "vendor_clock_skew", 502, False),
        ({"code": 99999}, VendorUnknownError, "vendor_error", 502, False),
        ({}, VendorUnknownError, "vendor_error", 502, False),
    ],
)
def test_error_classes(
    error: dict[str, object],
    expected_class: type[GatewayError],
    expected_code: str,
    status: int,
    retryable: bool,
) -> None:
    """Each TOP error code (and sub_code) lands in its documented class, status and retryability."""
    classified = error_from_response({"msg": "m", **error})
    assert type(classified) is expected_class
    assert (classified.code, classified.status, classified.retryable) == (
        expected_code,
        status,
        retryable,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "detail"),
    [
        (200, b"", VendorBadResponse, "empty body"),
        (200, b"   \n", VendorBadResponse, "empty body"),
        (
            200,
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            VendorBadResponse,
            "HTML page",
        ),
        (200, b"<error_response><code>50</code></error_response>", VendorBadResponse, "XML"),
        (200, b'{"truncated": ', VendorBadResponse, "not valid JSON"),
        (200, b"[1, 2]", VendorBadResponse, "not an object"),
        (200, b'{"unexpected": 1, "other": 2}', VendorBadResponse, "no result"),
        (500, b'{"error_response":{"code":10}}', VendorHttpError, "HTTP 500"),
        (403, b"forbidden", VendorHttpError, "HTTP 403"),
    ],
)
def test_unreadable_answers_are_502_never_a_crash(
    providers: dict[str, Provider],
    status: int,
    body: bytes,
    expected: type[GatewayError],
    detail: str,
) -> None:
    """Empty, HTML, XML, truncated, non-object bodies and HTTP errors become typed 502 errors."""
    with pytest.raises(expected) as caught:
        providers["zebra"].read_response(VendorResponse(status, {}, body), NOW)
    assert caught.value.status == 502
    assert detail in caught.value.detail


def test_http_5xx_is_retryable_4xx_is_not(providers: dict[str, Provider]) -> None:
    """A 5xx from the vendor may be retried; a 4xx may not."""
    for status, retryable in ((503, True), (404, False)):
        with pytest.raises(VendorHttpError) as caught:
            providers["zebra"].read_response(VendorResponse(status, {}, b""), NOW)
        assert caught.value.retryable is retryable
