"""The Taobao Open Platform (TOP) protocol: `TopKind`, the envelope and the error classes (VENDORS.md §1).

A TOP method is one module that builds a `TopKind` over its `TopInputs` (e.g. the OAuth code exchange,
top_token_create.py)."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel

from gateway.errors import (
    GatewayError,
    UpstreamDetail,
    VendorBadResponse,
    VendorConfigurationError,
    VendorQuotaExceeded,
    VendorRejectedInput,
    VendorUnavailable,
    VendorUnknownError,
)
from gateway.providers.base import (
    Credential,
    Inputs,
    SendContext,
    VendorRequest,
    VendorResponse,
)
from gateway.providers.http_body import decode_json_body, raise_for_http_status
from gateway.providers.kind import (
    NoOptions,
    ProtocolInfo,
    Sample,
    Settles,
    always_settled,
    json_answer,
)
from gateway.providers.top_sandbox import SandboxAnswer, SandboxCheck
from gateway.redaction import redact_text
from gateway.settings import ProviderSettings
from gateway.signing import top as top_signing

CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"


TOP = ProtocolInfo("top")


class TopInputs(Inputs):
    """A TOP method's inputs (gateway/providers/base.py `Inputs`), which know their business
    parameters: what the method sends beside the system parameters."""

    @abstractmethod
    def business_params(self, ctx: SendContext) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class TopKind:
    """A TOP API as one object (gateway/providers/kind.py `Kind`): its method name and inputs (which
    know their business parameters, `TopInputs`), how `result` is read, its documented answers, and how the
    sandbox checks and answers it as the platform does."""

    method: str
    input_model: type[TopInputs]  # also declares the identity fields (Inputs.identity_fields)
    read_result: Callable[[Mapping[str, Any], float], Credential]
    dev_provider: str
    example_inputs: Mapping[str, Any]
    samples: Sequence[Sample]  # the result payloads, as `sample_answer` wraps them
    sandbox_check: SandboxCheck  # the platform's business-parameter rules for this method
    sandbox_answer: SandboxAnswer  # the success payload the sandbox answers with
    options_model: type[BaseModel] = NoOptions
    settles: Settles = always_settled
    # The method's in-envelope "internal error" answer, when it has one (the sandbox's
    # bind_internal_error fault and its chaos mode use it): (ret_code, message) -> payload.
    sandbox_internal_error: Callable[[int, str], dict[str, Any]] | None = None
    protocol: ProtocolInfo = TOP

    @property
    def kind(self) -> str:
        return f"top:{self.method}"

    @property
    def api(self) -> str:
        return self.method

    @property
    def response_key(self) -> str:
        return response_key(self.method)

    def build_request(
        self, inputs: Inputs, settings: ProviderSettings, secret: str, ctx: SendContext
    ) -> VendorRequest:
        params = system_params(self.method, settings, ctx.now)
        params.update(cast(TopInputs, inputs).business_params(ctx))  # an input_model instance
        params = top_signing.drop_empty_values(params)
        params["sign"] = top_signing.sign(params, secret, settings.sign_method)
        # Everything goes in the form body (accepted by TOP, VENDORS.md §1): the signature then never
        # lands in a proxy's URL access log. Sorted so the bytes are stable for tests and debugging.
        body = urlencode(sorted(params.items())).encode("utf-8")
        return VendorRequest(
            method="POST",
            url=settings.endpoint,
            headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"},
            body=body,
            string_to_sign=top_signing.string_to_sign(params),
            api=self.method,
        )

    def read_response(
        self, response: VendorResponse, settings: ProviderSettings, now: float
    ) -> Credential:
        payload = read_envelope(response, self.response_key)
        credential = self.read_result(payload, now)
        request_id = payload.get("request_id")
        if isinstance(request_id, str):
            return replace(credential, upstream_request_id=request_id)
        return credential


def response_key(method: str) -> str:
    """`<name>_response`: the method without a leading `taobao.`, dots as underscores."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def sample_answer(method: str, payload: Mapping[str, Any]) -> VendorResponse:
    """A documented TOP success envelope: `payload` wrapped in the method's `<name>_response`."""
    return json_answer({response_key(method): {**payload, "request_id": "3ub8h0q7ybhh"}})


def system_params(method: str, settings: ProviderSettings, now: float) -> dict[str, str]:
    """The system parameters every TOP call carries (the value of `sign_method` is itself signed)."""
    params = {
        "method": method,
        "app_key": settings.app_key,
        "timestamp": top_signing.top_timestamp(now),
        "v": "2.0",
        "sign_method": settings.sign_method,
        "format": "json",
    }
    if settings.simplify:
        params["simplify"] = "true"
    return params


def compact_json(value: Mapping[str, Any]) -> str:
    """Structured parameters travel as one compact JSON string, nulls omitted (the official SDK's form)."""
    return orjson.dumps(_without_nulls(value)).decode("utf-8")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def read_envelope(response: VendorResponse, response_key: str) -> Mapping[str, Any]:
    """The success payload, unwrapped from `<name>_response` (or as is with `simplify`); errors raise."""
    raise_for_http_status(response)
    body = decode_json_body(response)
    error = body.get("error_response")
    if isinstance(error, Mapping):
        raise error_from_response(error)
    wrapped = body.get(response_key)
    if isinstance(wrapped, Mapping):
        return wrapped
    wrappers = [v for k, v in body.items() if k.endswith("_response") and isinstance(v, Mapping)]
    if len(body) == 1 and len(wrappers) == 1:
        return wrappers[0]
    return body  # simplify=true: no wrapper


_TRANSIENT_SUB_CODES = frozenset(
    {
        "isp.top-remote-connection-timeout",
        "isp.top-remote-service-unavailable",
        "isp.top-remote-connection-control-error",
        "isp.top-remote-unknown-error",
        "isp.remote-connection-error",
        "isp.service-error",
        "isp.call-limited",
    }
)
_QUOTA_CODES = frozenset({4, 5, 6, 7})
_CALLER_CODES = frozenset({21, 22, 23, 32, 33, 34, 40, 41, 43, 47})
_CREDENTIAL_CODES = frozenset({26, 27, 44})
# The gateway's own configuration is at fault: (what to check, problem code), by TOP code.
_CONFIGURATION_CODES = {
    **dict.fromkeys(
        (11, 12, 13), ("the app lacks permission for this API", "vendor_permission_denied")
    ),
    **dict.fromkeys(
        (24, 25), ("check the provider's app_secret and sign_method", "vendor_signature_rejected")
    ),
    **dict.fromkeys((28, 29), ("check the provider's app_key", "vendor_app_key_rejected")),
    **dict.fromkeys(
        (30, 31), ("the gateway's clock or timestamp zone is off", "vendor_clock_skew")
    ),
}
_BAN_SECONDS = re.compile(r"([0-9]{1,9})\s*more\s*seconds", re.IGNORECASE)
DEFAULT_BAN_S = 60
MAX_BAN_S = 86400  # a vendor message may not ban a provider for longer than a day


def error_from_response(error: Mapping[str, Any]) -> GatewayError:
    """Classify an `error_response` by `code`, then `sub_code` (VENDORS.md §1 "Error classes")."""
    code = _int_or_none(error.get("code"))
    sub_code = _str_or_none(error.get("sub_code"))
    msg = _str_or_none(error.get("msg"))
    sub_msg = _str_or_none(error.get("sub_msg"))
    upstream = UpstreamDetail(
        code=None if code is None else str(code), sub_code=sub_code, message=sub_msg or msg
    )
    said = f"the vendor answered code {code}" + (f" ({sub_code})" if sub_code else "")
    if code in _QUOTA_CODES:
        return VendorQuotaExceeded(
            f"{said}: the app key is call-limited",
            upstream=upstream,
            retry_after_s=ban_seconds(sub_msg or msg),
        )
    if code == 10 or (sub_code and _is_transient_sub_code(sub_code)):
        return VendorUnavailable(f"{said}: service unavailable", upstream=upstream)
    if code in _CONFIGURATION_CODES:
        why, problem = _CONFIGURATION_CODES[code]
        return VendorConfigurationError(f"{said}: {why}", code=problem, upstream=upstream)
    if code in _CREDENTIAL_CODES:
        return VendorRejectedInput(
            f"{said}: session or access token invalid",
            code="vendor_credential_invalid",
            upstream=upstream,
        )
    if code in _CALLER_CODES or (code in (15, 50) and sub_code and sub_code.startswith("isv.")):
        return VendorRejectedInput(f"{said}: the input was rejected", upstream=upstream)
    return VendorUnknownError(f"{said}", upstream=upstream)


def _is_transient_sub_code(sub_code: str) -> bool:
    return sub_code.removesuffix("-tmall") in _TRANSIENT_SUB_CODES or sub_code.startswith("isp.")


def ban_seconds(message: str | None) -> int:
    """Seconds of an app-key ban from "This ban will last for N more seconds", else a default."""
    found = _BAN_SECONDS.search(message or "")
    return min(int(found.group(1)), MAX_BAN_S) if found else DEFAULT_BAN_S


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    """Vendor words for `upstream`/`detail`: credential shapes redacted, cut (gateway/redaction.py)."""
    return redact_text(value) if isinstance(value, str) and value else None


def require_result(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    result = payload.get("result")
    if not isinstance(result, Mapping):
        raise VendorBadResponse("the vendor's answer has no result object")
    return result
