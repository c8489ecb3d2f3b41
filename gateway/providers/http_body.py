"""Reading a vendor's HTTP answer as JSON, turning anything unreadable into a 502 (never a crash)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import VendorBadResponse, VendorHttpError
from gateway.providers.base import VendorResponse


def raise_for_http_status(response: VendorResponse) -> None:
    """Both vendors report business errors in HTTP 200 bodies; any other status is a transport failure."""
    if response.status != 200:
        raise VendorHttpError(
            f"the vendor answered HTTP {response.status}", retryable=response.status >= 500
        )


def decode_json_body(response: VendorResponse) -> Mapping[str, Any]:
    """The body as a JSON object, or VendorBadResponse saying what arrived instead."""
    if not response.body.strip():
        raise VendorBadResponse("the vendor answered with an empty body")
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise VendorBadResponse(f"the vendor answered with {_describe(response)}") from None
    if not isinstance(body, dict):
        raise VendorBadResponse("the vendor answered JSON that is not an object")
    return body


def _describe(response: VendorResponse) -> str:
    head = response.body.lstrip()[:64].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page instead of JSON"
    if head.startswith(b"<"):
        return "XML instead of JSON (was format=json sent?)"
    return "a body that is not valid JSON"
