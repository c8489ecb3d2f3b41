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

from gateway.catalogue import STATUS_OF


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

    # The code answered when `code=` names none the catalogue has at this class's status (a plug-in's
    # own code, say): the nearest default up the class tree that it has, so every problem's code is
    # one the OpenAPI document's enum lists. Set per class by __init_subclass__.
    fallback_code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.fallback_code = next(
            (
                base.default_code
                for base in cls.__mro__
                if issubclass(base, GatewayError) and STATUS_OF.get(base.default_code) == cls.status
            ),
            "internal_error",
        )

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
        if code is None:
            self.code = self.default_code
        else:
            self.code = code if STATUS_OF.get(code) == self.status else self.fallback_code
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
    status, default_code, title = 400, "bad_request", "Bad request"


class MalformedRequest(CallerError):
    """Not HTTP/1.1 the parser accepts (request line, a header, the framing). The answer echoes
    nothing of the request: the offending bytes may be a caller's key."""

    status, default_code, title = 400, "malformed_request", "Malformed HTTP request"


class RequestTimeout(CallerError):
    """The body did not arrive within body_timeout_s (a slow or stalled client)."""

    status, default_code = 408, "request_timeout"
    title, default_retryable = "Request body not received in time", True


class InvalidBody(CallerError):
    status, default_code, title = 400, "invalid_input", "Invalid request body"


class MissingApiKey(CallerError):
    status, default_code, title = 401, "missing_api_key", "Missing API key"


class UnknownApiKey(CallerError):
    status, default_code, title = 401, "invalid_api_key", "Invalid API key"


class ProviderForbidden(CallerError):
    status, default_code, title = 403, "provider_forbidden", "Provider not allowed for this key"


class UnknownProvider(CallerError):
    status, default_code, title = 404, "unknown_provider", "Unknown provider"


class BodyTooLarge(CallerError):
    status, default_code, title = 413, "body_too_large", "Request body too large"


class UnsupportedMediaType(CallerError):
    status, default_code, title = 415, "unsupported_media_type", "Request body must be JSON"


class CacheUnavailable(GatewayError):
    """The credential store is needed for this request (forgetting a credential) and is down."""

    status, default_code = 503, "cache_unavailable"
    title, default_retryable = "Credential store unavailable", True


class CircuitOpen(GatewayError):
    """The provider's circuit breaker is open: the vendor is failing and is not called for a while."""

    status, default_code = 503, "vendor_circuit_open"
    title, default_retryable = "Vendor circuit open", True


class OutboundLimited(GatewayError):
    """The provider's outbound rate or concurrency limit is full for longer than the deadline allows."""

    status, default_code = 429, "outbound_limited"
    title, default_retryable = "Outbound limit reached", True


class ClientRateLimited(CallerError):
    """This caller's own request rate (rate_limit_per_s) is exceeded."""

    status, default_code = 429, "client_rate_limited"
    title, default_retryable = "Too many requests from this client", True


class PollsLimited(CallerError):
    """Too many bind checks are waiting (`wait_s`) for this client or this provider at once."""

    status, default_code = 429, "polls_limited"
    title, default_retryable = "Too many waiting polls", True


class VendorError(GatewayError):
    """The vendor answered with a failure it names."""

    status, default_code, title = 502, "vendor_error", "Vendor error"


class VendorRejectedInput(VendorError):
    status, default_code, title = 422, "vendor_rejected_input", "The vendor rejected the input"


class VendorQuotaExceeded(VendorError):
    status, default_code = 429, "vendor_quota_exceeded"
    title, default_retryable = "Vendor call quota exceeded", True


class VendorConfigurationError(VendorError):
    status, default_code = 502, "vendor_configuration_error"
    title = "The vendor rejected the gateway's configuration"


class VendorUnavailable(VendorError):
    status, default_code = 502, "vendor_unavailable"
    title, default_retryable = "The vendor is temporarily unavailable", True


class VendorUnknownError(VendorError):
    status, default_code, title = 502, "vendor_error", "Vendor error"


class TransportError(GatewayError):
    """No usable answer came back from the vendor."""

    status, default_code, title = 502, "vendor_transport_error", "Vendor transport failure"


class VendorUnreachable(TransportError):
    default_code = "vendor_unreachable"
    title, default_retryable = "The vendor could not be reached", True


class VendorHttpError(TransportError):
    default_code, title = "vendor_http_error", "The vendor answered with an HTTP error"


class VendorBadResponse(TransportError):
    default_code, title = "vendor_bad_response", "The vendor's answer could not be read"


class VendorTimeout(TransportError):
    status, default_code = 504, "vendor_timeout"
    title, default_retryable = "The vendor did not answer in time", True
