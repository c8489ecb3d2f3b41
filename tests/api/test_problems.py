"""Every failure path answers an exact RFC 9457 problem, and bad input never reaches a vendor."""

from __future__ import annotations

import re
import time

import pytest
from aiohttp.test_utils import TestClient

from gateway.sandbox.state import CannedResponse
from tests.api.conftest import (
    APIS,
    BIND,
    INPUTS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    closed_port,
)
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis
PROBLEM = "application/problem+json"


async def problem(response: object, status: int) -> dict[str, object]:
    assert response.status == status, await response.text()  # type: ignore[attr-defined]
    assert response.content_type == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = await response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"urn:auth-gateway:problem:{body['code']}"
    assert body["status"] == status
    return body


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_unknown_provider_exact_problem(gateway: TestClient, keys: Keys) -> None:
    """An unknown provider is a 404 whose whole document is as the contract says, request id echoed,
    `instance` naming this request's span in the caller's trace."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        **auth(keys.full),
        "X-Request-ID": "req-123",
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
    }
    response = await gateway.post("/auth/no-such", json={}, headers=headers)
    assert response.headers["X-Request-ID"] == "req-123"
    document = await problem(response, 404)
    instance = document.pop("instance")
    assert re.fullmatch(rf"urn:trace:{trace_id}:[0-9a-f]{{16}}", str(instance)), instance
    assert (
        instance != f"urn:trace:{trace_id}:00f067aa0ba902b7"
    )  # the gateway's span, not the caller's
    assert document == {
        "type": "urn:auth-gateway:problem:unknown_provider",
        "title": "Unknown provider",
        "status": 404,
        "detail": "there is no provider named 'no-such'",
        "code": "unknown_provider",
        "provider": None,
        "retryable": False,
        "upstream": None,
        "request_id": "req-123",
    }


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic abc"}, "missing_api_key"),
        ({"Authorization": "Bearer "}, "missing_api_key"),
        ({"Authorization": "Bearer not-a-known-key"}, "invalid_api_key"),
    ],
)
async def test_missing_or_unknown_key_is_401(
    gateway: TestClient, vendors: Vendors, headers: dict[str, str], code: str
) -> None:
    """No key, another scheme or an unknown key is a 401, and nothing is sent to the vendor."""
    response = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=headers)
    assert (await problem(response, 401))["code"] == code
    assert vendors.state.requests == []


async def test_provider_not_allowed_for_key_is_403(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A key limited to the WeChat provider gets 403 for another provider, without its name (an unknown
    name gets the same answer, see test_provider_probing)."""
    response = await gateway.post(
        f"/auth/{MINI_APP}", json=INPUTS[MINI_APP], headers=auth(keys.wechat_only)
    )
    body = await problem(response, 403)
    assert (body["code"], body["provider"]) == ("provider_forbidden", None)
    assert vendors.state.requests == []


async def test_invalid_field_is_400_naming_the_field(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A missing field, a too-long utd_id and an unknown field are each named; the vendor is not called."""
    body = {"user_id": "u", "utd_id": "x" * 33, "app_type": "IOS", "surprise": 1}
    response = await gateway.post("/auth/aligenie-login", json=body, headers=auth(keys.full))
    document = await problem(response, 400)
    assert document["code"] == "invalid_input"
    assert document["errors"] == [
        {"field": "utd_id", "message": "String should have at most 32 characters"},
        {"field": "schema", "message": "Field required"},
        {"field": "surprise", "message": "Extra inputs are not permitted"},
    ]
    assert "utd_id" in str(document["detail"]) and "schema" in str(document["detail"])
    assert vendors.state.requests == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b'{"wx_open_id": "a"}', "text/plain", 415, "unsupported_media_type"),
        (b"wx_open_id=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"pad": "' + b"x" * 20_000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
async def test_malformed_bodies(
    gateway: TestClient,
    keys: Keys,
    vendors: Vendors,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    """Malformed, non-JSON and oversized bodies get their own status and code; the vendor is not called."""
    response = await gateway.post(
        f"/auth/{WECHAT}", data=body, headers={**auth(keys.full), "Content-Type": content_type}
    )
    assert (await problem(response, status))["code"] == code
    assert vendors.state.requests == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("   ", "must not be blank (empty, whitespace or invisible characters only)"),
        ("a\u0000b", "must not contain control characters"),
    ],
)
async def test_blank_or_control_characters_rejected(
    gateway: TestClient, keys: Keys, vendors: Vendors, value: str, message: str
) -> None:
    """Blank values and control characters are refused before any vendor sees them."""
    response = await gateway.post(
        f"/auth/{WECHAT}", json={**INPUTS[WECHAT], "nick_name": value}, headers=auth(keys.full)
    )
    document = await problem(response, 400)
    assert document["errors"] == [{"field": "nick_name", "message": f"Value error, {message}"}]
    assert vendors.state.requests == []


async def test_vendor_rejection_is_422_with_upstream(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """TOP error code 50 / isv.* becomes 422 with the vendor's code, sub_code and message."""
    vendors.state.enqueue(
        APIS[MINI_APP],
        CannedResponse.json(
            {
                "error_response": {
                    "code": 50,
                    "msg": "Remote service error",
                    "sub_code": "isv.invalid-parameter",
                    "sub_msg": "非法参数",
                    "request_id": "r1",
                }
            }
        ),
    )
    response = await gateway.post(
        f"/auth/{MINI_APP}", json=INPUTS[MINI_APP], headers=auth(keys.full)
    )
    document = await problem(response, 422)
    assert (document["code"], document["provider"], document["retryable"]) == (
        "vendor_rejected_input",
        MINI_APP,
        False,
    )
    assert document["upstream"] == {
        "code": "50",
        "sub_code": "isv.invalid-parameter",
        "message": "非法参数",
    }


async def test_call_limited_is_429_with_retry_after(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """TOP code 7 becomes 429 with Retry-After set to the ban's seconds."""
    vendors.state.enqueue(
        APIS[MINI_APP],
        CannedResponse.json(
            {
                "error_response": {
                    "code": 7,
                    "msg": "App Call Limited",
                    "sub_code": "accesscontrol.limited-by-app-access-count",
                    "sub_msg": "This ban will last for 42 more seconds",
                }
            }
        ),
    )
    response = await gateway.post(
        f"/auth/{MINI_APP}", json=INPUTS[MINI_APP], headers=auth(keys.full)
    )
    assert response.headers["Retry-After"] == "42"
    assert (await problem(response, 429))["code"] == "vendor_quota_exceeded"


async def test_tencent_error_is_classified(
    gateway: TestClient, keys: Keys, vendors: Vendors
) -> None:
    """A Tencent ErrorUserNotExists in the official envelope becomes 422 vendor_account_not_found."""
    vendors.state.enqueue(
        APIS[WECHAT],
        CannedResponse.json(
            {
                "code": -1000,
                "msg": "account does not exist",
                "data": {
                    "Error": {
                        "Code": "InvalidParameterValue.ErrorUserNotExists",
                        "Message": "account does not exist",
                    },
                    "RequestId": "r",
                },
            }
        ),
    )
    response = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    document = await problem(response, 422)
    assert document["code"] == "vendor_account_not_found"
    assert document["upstream"] == {
        "code": "InvalidParameterValue.ErrorUserNotExists",
        "sub_code": None,
        "message": "account does not exist",
    }


@pytest.mark.parametrize(
    ("canned", "code"),
    [
        (
            CannedResponse(
                status=200, body=b"<html><body>Bad Gateway</body></html>", content_type="text/html"
            ),
            "vendor_bad_response",
        ),
        (CannedResponse(status=200, body=b""), "vendor_bad_response"),
        (CannedResponse(status=200, body=b'{"ailab_aicloud'), "vendor_bad_response"),
        (
            CannedResponse(status=404, body=b"Not Found", content_type="text/plain"),
            "vendor_http_error",
        ),
    ],
)
async def test_unreadable_vendor_answers_are_502(
    gateway: TestClient, keys: Keys, vendors: Vendors, canned: CannedResponse, code: str
) -> None:
    """HTML, empty, truncated bodies and an HTTP 404 become a 502 problem, never a crash (not retried)."""
    vendors.state.enqueue(APIS[BIND], canned)
    response = await gateway.post(f"/auth/{BIND}", json=INPUTS[BIND], headers=auth(keys.full))
    assert (await problem(response, 502))["code"] == code


async def test_wrong_secret_is_a_signature_problem(start_gateway: StartGateway, keys: Keys) -> None:
    """A provider configured with the wrong secret gets the sandbox's real code 25: 502 vendor_signature_rejected."""
    gateway = await start_gateway(**{MINI_APP: {"app_secret": "not-the-secret"}})
    response = await gateway.post(
        f"/auth/{MINI_APP}", json=INPUTS[MINI_APP], headers=auth(keys.full)
    )
    document = await problem(response, 502)
    assert document["code"] == "vendor_signature_rejected"
    assert "not-the-secret" not in str(document)


async def test_clock_skew_is_reported(start_gateway: StartGateway, keys: Keys) -> None:
    """A gateway clock an hour off gets TOP code 31 and says so: 502 vendor_clock_skew."""
    gateway = await start_gateway(clock=ShiftedClock(offset=-3600))
    response = await gateway.post(
        f"/auth/{MINI_APP}", json=INPUTS[MINI_APP], headers=auth(keys.full)
    )
    document = await problem(response, 502)
    assert document["code"] == "vendor_clock_skew"
    assert document["upstream"]["code"] == "31"  # type: ignore[index]


async def test_vendor_timeout_is_504(
    start_gateway: StartGateway, keys: Keys, vendors: Vendors
) -> None:
    """A vendor slower than the provider's timeout_s gives 504 vendor_timeout, retryable."""
    vendors.state.latency_s = 2.0
    gateway = await start_gateway(
        **{WECHAT: {"timeout_s": 0.3, "deadline_s": 0.5, "retry": {"max_attempts": 1}}}
    )
    started = time.monotonic()
    response = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    document = await problem(response, 504)
    assert (document["code"], document["retryable"]) == ("vendor_timeout", True)
    assert time.monotonic() - started < 1.5


async def test_vendor_unreachable_is_502(start_gateway: StartGateway, keys: Keys) -> None:
    """A vendor endpoint nobody listens on gives 502 vendor_unreachable, retryable."""
    gateway = await start_gateway(**{WECHAT: {"endpoint": f"http://127.0.0.1:{closed_port()}/api"}})
    response = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    document = await problem(response, 502)
    assert (document["code"], document["retryable"]) == ("vendor_unreachable", True)


async def test_failures_are_not_cached(gateway: TestClient, keys: Keys, vendors: Vendors) -> None:
    """After a vendor failure the next call goes to the vendor again and succeeds."""
    vendors.state.enqueue(APIS[WECHAT], CannedResponse(status=200, body=b"<html>busy</html>"))
    first = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    assert first.status == 502
    second = await gateway.post(f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers=auth(keys.full))
    assert second.status == 200
    assert vendors.calls(WECHAT) == 2


async def test_unknown_route_and_method(gateway: TestClient, keys: Keys) -> None:
    """Unknown routes and methods answer problems too."""
    assert (await problem(await gateway.get("/nope"), 404))["code"] == "not_found"
    assert (await problem(await gateway.put(f"/auth/{WECHAT}", headers=auth(keys.full)), 405))[
        "code"
    ] == "method_not_allowed"
