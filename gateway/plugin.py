"""The plug-in API: everything a kind or a protocol package imports from the gateway.

A plug-in imports from this module only (docs/plugins.md walks through the example plug-in in
examples/plugin-wechat-miniprogram/); the rest of `gateway/` may change between releases, this may not
without a major version.
"""

from __future__ import annotations

from gateway.errors import (
    UpstreamDetail,
    VendorBadResponse,
    VendorConfigurationError,
    VendorError,
    VendorQuotaExceeded,
    VendorRejectedInput,
    VendorUnavailable,
    VendorUnknownError,
)
from gateway.providers.base import (
    Credential,
    Inputs,
    Printable,
    SendContext,
    VendorRequest,
    VendorResponse,
    absolute_expiry,
    require,
    scalar_text,
    scalar_value,
)
from gateway.providers.http_body import decode_json_body, raise_for_http_status
from gateway.providers.kind import (
    Kind,
    NoOptions,
    ProtocolInfo,
    Sample,
    SandboxResponder,
    json_answer,
)
from gateway.settings import ProviderSettings

__all__ = [
    "Credential",
    "Inputs",
    "Kind",
    "NoOptions",
    "Printable",
    "ProtocolInfo",
    "ProviderSettings",
    "Sample",
    "SandboxResponder",
    "SendContext",
    "UpstreamDetail",
    "VendorBadResponse",
    "VendorConfigurationError",
    "VendorError",
    "VendorQuotaExceeded",
    "VendorRejectedInput",
    "VendorRequest",
    "VendorResponse",
    "VendorUnavailable",
    "VendorUnknownError",
    "absolute_expiry",
    "decode_json_body",
    "json_answer",
    "raise_for_http_status",
    "require",
    "scalar_text",
    "scalar_value",
]
