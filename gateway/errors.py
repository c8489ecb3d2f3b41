"""One exception tree for the whole gateway; each error knows its HTTP status and problem `code`.

    GatewayError                         500 internal_error
    ├── CallerError                      the gateway's own caller got something wrong
    │   ├── MalformedRequest             400 malformed_request (the HTTP parser refused it)
    │   ├── InvalidBody                  400 invalid_json / invalid_input / invalid_body
    │   ├── RequestTimeout               408 request_timeout (the body came too slowly)
    │   ├── MissingApiKey                401 missing_api_key
    │   ├── UnknownApiKey                401 invalid_api_key
    │   ├── ProviderForbidden            403 provider_forbidden
    │   ├── UnknownProvider              404 unknown_provider
    │   ├── ClientRateLimited            429 client_rate_limited (Retry-After)
    │   ├── PollsLimited                 429 polls_limited (Retry-After)
    │   ├── BodyTooLarge                 413 body_too_large
    │   └── UnsupportedMediaType         415 unsupported_media_type
    ├── CacheUnavailable                 503 cache_unavailable (retryable)
    ├── CircuitOpen                      503 vendor_circuit_open (retryable, Retry-After)
    ├── OutboundLimited                  429 outbound_limited (retryable, Retry-After)
    ├── VendorError                      the vendor answered, and the answer is a failure
    │   ├── VendorRejectedInput          422 vendor_rejected_input / vendor_account_not_found /
    │   │                                    vendor_credential_invalid
    │   ├── VendorQuotaExceeded          429 vendor_quota_exceeded (Retry-After)
    │   ├── VendorConfigurationError     502 vendor_signature_rejected / vendor_app_key_rejected /
    │   │                                    vendor_clock_skew / vendor_permission_denied
    │   ├── VendorUnavailable            502 vendor_unavailable (retryable)
    │   └── VendorUnknownError           502 vendor_error
    └── TransportError                   no usable vendor answer at all
        ├── VendorUnreachable            502 vendor_unreachable (retryable)
        ├── VendorHttpError              502 vendor_http_error (retryable on 5xx)
        ├── VendorBadResponse            502 vendor_bad_response
        └── VendorTimeout                504 vendor_timeout (retryable)

Messages (`detail`) are written for the caller and never carry a secret, a signature, a token or a
vendor stack trace; the vendor's own words travel separately in `upstream`. Whatever a vendor says is
redacted (gateway/redaction.py) where it is read and again where a problem is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class UpstreamDetail:
    """What the vendor said, as it said it (code, sub_code, message)."""

    code: str | None = None
    sub_code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "sub_code": self.sub_code, "message": self.message}

    def map(self, change: Callable[[str], str]) -> UpstreamDetail:
        """The same detail with `change` applied to each string (e.g. a redaction)."""
        return UpstreamDetail(
            *(
                None if text is None else change(text)
                for text in (self.code, self.sub_code, self.message)
            )
        )


class GatewayError(Exception):
    """Base of every error the gateway turns into a problem document."""

    status: int = 500  # per class; an instance may carry another (e.g. an unusual HTTP status)
    default_code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        upstream: UpstreamDetail | None = None,
        retryable: bool | None = None,
        retry_after_s: int | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.provider = provider
        self.upstream = upstream
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after_s = retry_after_s
        self.extensions = dict(extensions or {})  # extra problem members, e.g. the invalid fields

    def redact(self, change: Callable[[str], str]) -> None:
        """Apply `change` (a redaction, see gateway/redaction.py) to `detail`, to the exception's
        message and to every `upstream` string, in place: for an error that is still to be raised."""
        self.detail = change(self.detail)
        self.args = (self.detail,)
        if self.upstream is not None:
            self.upstream = self.upstream.map(change)


class CallerError(GatewayError):
    status = 400
    default_code = "bad_request"
    title = "Bad request"


class MalformedRequest(CallerError):
    """Not HTTP/1.1 the parser accepts (request line, a header, the framing). The answer echoes
    nothing of the request: the offending bytes may be a caller's key."""

    status = 400
    default_code = "malformed_request"
    title = "Malformed HTTP request"


class RequestTimeout(CallerError):
    """The body did not arrive within body_timeout_s (a slow or stalled client)."""

    status = 408
    default_code = "request_timeout"
    title = "Request body not received in time"
    default_retryable = True


class InvalidBody(CallerError):
    status = 400
    default_code = "invalid_input"
    title = "Invalid request body"


class MissingApiKey(CallerError):
    status = 401
    default_code = "missing_api_key"
    title = "Missing API key"


class UnknownApiKey(CallerError):
    status = 401
    default_code = "invalid_api_key"
    title = "Invalid API key"


class ProviderForbidden(CallerError):
    status = 403
    default_code = "provider_forbidden"
    title = "Provider not allowed for this key"


class UnknownProvider(CallerError):
    status = 404
    default_code = "unknown_provider"
    title = "Unknown provider"


class BodyTooLarge(CallerError):
    status = 413
    default_code = "body_too_large"
    title = "Request body too large"


class UnsupportedMediaType(CallerError):
    status = 415
    default_code = "unsupported_media_type"
    title = "Request body must be JSON"


class CacheUnavailable(GatewayError):
    """The credential store is needed for this request (forgetting a credential) and is down."""

    status = 503
    default_code = "cache_unavailable"
    title = "Credential store unavailable"
    default_retryable = True


class CircuitOpen(GatewayError):
    """The provider's circuit breaker is open: the vendor is failing and is not called for a while."""

    status = 503
    default_code = "vendor_circuit_open"
    title = "Vendor circuit open"
    default_retryable = True


class OutboundLimited(GatewayError):
    """The provider's outbound rate or concurrency limit is full for longer than the deadline allows."""

    status = 429
    default_code = "outbound_limited"
    title = "Outbound limit reached"
    default_retryable = True


class ClientRateLimited(CallerError):
    """This caller's own request rate (rate_limit_per_s) is exceeded."""

    status = 429
    default_code = "client_rate_limited"
    title = "Too many requests from this client"
    default_retryable = True


class PollsLimited(CallerError):
    """Too many bind checks are waiting (`wait_s`) for this client or this provider at once."""

    status = 429
    default_code = "polls_limited"
    title = "Too many waiting polls"
    default_retryable = True


class VendorError(GatewayError):
    """The vendor answered with a failure it names."""

    status = 502
    default_code = "vendor_error"
    title = "Vendor error"


class VendorRejectedInput(VendorError):
    status = 422
    default_code = "vendor_rejected_input"
    title = "The vendor rejected the input"


class VendorQuotaExceeded(VendorError):
    status = 429
    default_code = "vendor_quota_exceeded"
    title = "Vendor call quota exceeded"
    default_retryable = True


class VendorConfigurationError(VendorError):
    status = 502
    default_code = "vendor_configuration_error"
    title = "The vendor rejected the gateway's configuration"


class VendorUnavailable(VendorError):
    status = 502
    default_code = "vendor_unavailable"
    title = "The vendor is temporarily unavailable"
    default_retryable = True


class VendorUnknownError(VendorError):
    status = 502
    default_code = "vendor_error"
    title = "Vendor error"


class TransportError(GatewayError):
    """No usable answer came back from the vendor."""

    status = 502
    default_code = "vendor_transport_error"
    title = "Vendor transport failure"


class VendorUnreachable(TransportError):
    default_code = "vendor_unreachable"
    title = "The vendor could not be reached"
    default_retryable = True


class VendorHttpError(TransportError):
    default_code = "vendor_http_error"
    title = "The vendor answered with an HTTP error"


class VendorBadResponse(TransportError):
    default_code = "vendor_bad_response"
    title = "The vendor's answer could not be read"


class VendorTimeout(TransportError):
    status = 504
    default_code = "vendor_timeout"
    title = "The vendor did not answer in time"
    default_retryable = True


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
