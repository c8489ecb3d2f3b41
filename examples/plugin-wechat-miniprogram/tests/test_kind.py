"""The kind on its own: the exact request WeChat receives, and how each documented answer reads."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from auth_gateway_wechat.kind import KIND

from gateway.errors import GatewayError
from gateway.plugin import ProviderSettings, SendContext, VendorResponse
from gateway.providers.registry import Provider, bind_providers

ENDPOINT = "https://api.weixin.qq.com/sns/jscode2session"
NOW = 1_700_000_000.0


def provider(secret: str = "test-secret-not-real", **options: object) -> Provider:  # noqa: S107
    settings = ProviderSettings(
        kind=KIND.kind, endpoint=ENDPOINT, app_key="wx-test-app", app_secret=secret, **options
    )
    return bind_providers({"mini": settings})["mini"]


def test_the_request_is_a_get_with_the_four_documented_query_fields() -> None:
    """`GET …/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`, no body."""
    mini = provider()
    request = mini.build_request(mini.parse_inputs({"js_code": "0a3Xyz"}), SendContext(NOW, 1, "r"))
    url = urlsplit(request.url)
    assert (request.method, f"{url.scheme}://{url.netloc}{url.path}", request.body) == (
        "GET",
        ENDPOINT,
        b"",
    )
    assert parse_qsl(url.query) == [
        ("appid", "wx-test-app"),
        ("js_code", "0a3Xyz"),
        ("secret", "test-secret-not-real"),
        ("grant_type", "authorization_code"),
    ]
    # What `gateway sign` and debug logs show leaves the secret out.
    assert "test-secret-not-real" not in request.string_to_sign


def test_the_cache_key_material_is_the_code() -> None:
    mini = provider()
    assert mini.identity(mini.parse_inputs({"js_code": "c1"})) == {"js_code": "c1"}


@pytest.mark.parametrize("unknown", [{"jscode": "x"}, {"js_code": "x", "appid": "y"}])
def test_only_the_wire_name_is_accepted(unknown: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"js_code|Extra inputs"):
        provider().parse_inputs(unknown)


def test_success_keeps_session_key_inside_unless_exposed() -> None:
    answer = KIND.samples[0].response
    hidden = provider().read_response(answer, NOW)
    assert hidden.data == {"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "unionid": "oU1"}
    assert (hidden.token, hidden.expires_at) == (None, NOW + 300)
    shown = provider(expose_session_key=True, session_ttl_s=60).read_response(answer, NOW)
    assert shown.data["session_key"] == "tiihtNczf5v6AKRyjwEUhQ=="
    assert shown.expires_at == NOW + 60


@pytest.mark.parametrize(
    ("errcode", "status", "code", "retryable"),
    [
        (40029, 422, "vendor_rejected_input", False),
        (40163, 422, "vendor_rejected_input", False),
        (45011, 429, "vendor_quota_exceeded", True),
        (40226, 422, "vendor_rejected_input", False),
        (-1, 502, "vendor_unavailable", True),
        (40013, 502, "vendor_app_key_rejected", False),
        (40125, 502, "vendor_signature_rejected", False),
        (99999, 502, "vendor_error", False),
    ],
)
def test_each_documented_errcode_becomes_its_problem(
    errcode: int, status: int, code: str, retryable: bool
) -> None:
    body = b'{"errcode": %d, "errmsg": "words, rid: 1"}' % errcode
    with pytest.raises(GatewayError) as caught:
        provider().read_response(VendorResponse(200, {"Content-Type": "text/plain"}, body), NOW)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        status,
        code,
        retryable,
    )
    assert caught.value.upstream is not None
    assert caught.value.upstream.code == str(errcode)


def test_an_answer_without_openid_is_a_bad_response() -> None:
    with pytest.raises(GatewayError) as caught:
        provider().read_response(VendorResponse(200, {}, b'{"session_key": "k"}'), NOW)
    assert (caught.value.status, caught.value.code) == (502, "vendor_bad_response")


def test_an_unknown_option_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="expose_sessionkey"):
        provider(expose_sessionkey=True)
