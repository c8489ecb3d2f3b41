"""Every problem `code` the gateway answers with, its status, whether it is retryable and when it happens.

The README table, the OpenAPI document and the docs' error catalogue are held to this list by tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: str
    status: int
    retryable: bool
    when: str


# Every problem `code` the gateway answers with: the README table and the OpenAPI document
# (`x-error-catalogue`) are held to this list by tests.
ERROR_CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "malformed_request",
        400,
        False,
        "the HTTP parser refused the request line, a header (e.g. a control character, a folded "
        "line, a bare LF) or the framing; nothing of the request is echoed",
    ),
    CatalogueEntry(
        "invalid_body",
        400,
        False,
        "the body could not be read: not in its Content-Encoding, broken chunked framing, or cut short",
    ),
    CatalogueEntry("invalid_json", 400, False, "the body is not one JSON object"),
    CatalogueEntry(
        "invalid_input",
        400,
        False,
        "a field is missing, too long, blank, has control characters, or is unknown",
    ),
    CatalogueEntry("missing_api_key", 401, False, "no `Authorization: Bearer` key"),
    CatalogueEntry("invalid_api_key", 401, False, "a key no client has"),
    CatalogueEntry(
        "provider_forbidden",
        403,
        False,
        "the key's client may not use this provider (for a limited key: or it does not exist)",
    ),
    CatalogueEntry(
        "unknown_provider", 404, False, "no such provider (keys that may use every provider)"
    ),
    CatalogueEntry("not_found", 404, False, "no such route"),
    CatalogueEntry("method_not_allowed", 405, False, "e.g. PUT /auth/x"),
    CatalogueEntry(
        "request_timeout", 408, True, "the body did not arrive within body_timeout_s (10 s)"
    ),
    CatalogueEntry(
        "body_too_large", 413, False, "body over max_body_bytes (after decompression too)"
    ),
    CatalogueEntry(
        "unsupported_media_type",
        415,
        False,
        "body not application/json, or a Content-Encoding other than gzip or deflate",
    ),
    CatalogueEntry(
        "vendor_rejected_input",
        422,
        False,
        "the vendor refused the input (TOP 21-23, 32-34, 40, 41, 43, 47, 15/50 with isv.*; "
        "in-envelope business failures; Tencent parameter errors)",
    ),
    CatalogueEntry(
        "vendor_account_not_found", 422, False, "Tencent InvalidParameterValue.ErrorUserNotExists"
    ),
    CatalogueEntry(
        "vendor_credential_invalid",
        422,
        False,
        "TOP 26, 27, 44; Tencent InvalidParameterValue.InvalidAccessToken",
    ),
    CatalogueEntry(
        "vendor_quota_exceeded",
        429,
        True,
        "TOP 4-7 (call limited): the app key is banned for the advertised seconds, on every replica",
    ),
    CatalogueEntry("client_rate_limited", 429, True, "this client's rate_limit_per_s is exceeded"),
    CatalogueEntry(
        "polls_limited",
        429,
        True,
        "too many bind checks with wait_s are waiting for this client or provider at once",
    ),
    CatalogueEntry(
        "outbound_limited",
        429,
        True,
        "the provider's outbound rate or concurrency limit stayed full until the deadline",
    ),
    CatalogueEntry(
        "vendor_signature_rejected", 502, False, "TOP 24, 25: wrong app_secret or sign_method"
    ),
    CatalogueEntry("vendor_app_key_rejected", 502, False, "TOP 28, 29"),
    CatalogueEntry(
        "vendor_clock_skew", 502, False, "TOP 30, 31: the host clock is off by more than 10 minutes"
    ),
    CatalogueEntry(
        "vendor_permission_denied", 502, False, "TOP 11-13: the app lacks permission for the API"
    ),
    CatalogueEntry(
        "vendor_unavailable",
        502,
        True,
        "TOP 10 and isp.* sub-codes; Tencent InternalError; bind check ret_code 331001",
    ),
    CatalogueEntry("vendor_error", 502, False, "a vendor code not listed here"),
    CatalogueEntry(
        "vendor_bad_response",
        502,
        False,
        "an empty, HTML, XML, truncated or otherwise unreadable answer",
    ),
    CatalogueEntry(
        "vendor_http_error",
        502,
        True,
        "the vendor answered HTTP other than 200 (retried and retryable on 5xx only)",
    ),
    CatalogueEntry("vendor_unreachable", 502, True, "connection refused, reset or DNS failure"),
    CatalogueEntry(
        "cache_unavailable", 503, True, "DELETE while the store is down (nothing was forgotten)"
    ),
    CatalogueEntry("vendor_circuit_open", 503, True, "the provider's circuit breaker is open"),
    CatalogueEntry(
        "vendor_timeout",
        504,
        True,
        "no answer within the deadline (timeout_s per attempt, deadline_s in all)",
    ),
    CatalogueEntry(
        "internal_error", 500, False, "a bug: logged with a stack trace, never shown to the caller"
    ),
)

STATUS_OF: dict[str, int] = {entry.code: entry.status for entry in ERROR_CATALOGUE}
