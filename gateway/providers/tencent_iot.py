"""The Tencent IoT Explorer application API protocol (`exploreropen/appapi`): `TencentKind`, the envelopes
and the error codes (VENDORS.md §2). An Action is one module that builds a `TencentKind`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from gateway.errors import (
    GatewayError,
    UpstreamDetail,
    VendorBadResponse,
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
    absolute_expiry,
    require,
    scalar_text,
)
from gateway.providers.http_body import decode_json_body, raise_for_http_status
from gateway.providers.kind import NoOptions, ProtocolInfo, Sample, Settles, always_settled
from gateway.redaction import redact_text
from gateway.settings import ProviderSettings
from gateway.signing import tencent_iot as tencent_signing

TENCENT_IOT = ProtocolInfo("tencent-iot")


@dataclass(frozen=True, slots=True)
class TencentKind:
    """An appapi Action as one object (gateway/providers/kind.py `Kind`): its name and inputs, how the
    inputs become request fields, its documented answers. The answer is read the same way for every
    Action (`Data.Token`, `Data.ExpireAt`); the sandbox's stand-in is gateway/sandbox/tencent_iot.py."""

    action: str
    input_model: type[Inputs]  # also declares the identity fields (Inputs.identity_fields)
    request_fields: Callable[[Any], dict[str, str | int]]
    dev_provider: str
    example_inputs: Mapping[str, Any]
    samples: Sequence[Sample]
    options_model: type[BaseModel] = NoOptions
    settles: Settles = always_settled
    protocol: ProtocolInfo = TENCENT_IOT

    @property
    def kind(self) -> str:
        return f"tencent-iot:{self.action}"

    @property
    def api(self) -> str:
        return self.action

    def build_request(
        self, inputs: Inputs, settings: ProviderSettings, secret: str, ctx: SendContext
    ) -> VendorRequest:
        fields: dict[str, str | int] = {
            "Action": self.action,
            "RequestId": ctx.request_id,
            "AppKey": settings.app_key,
            "Timestamp": int(ctx.now),
            "Nonce": ctx.nonce,
            **self.request_fields(inputs),
        }
        fields = {name: value for name, value in fields.items() if value != ""}
        fields["Signature"] = tencent_signing.sign(fields, secret)
        return VendorRequest(
            method="POST",
            url=settings.endpoint,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=orjson.dumps(fields, option=orjson.OPT_SORT_KEYS),
            string_to_sign=tencent_signing.string_to_sign(fields),
            api=self.action,
        )

    def read_response(
        self, response: VendorResponse, settings: ProviderSettings, now: float
    ) -> Credential:
        reply = read_envelope(response)
        data = require(reply, "Data", Mapping, "")
        token = require(data, "Token", str, "Data.")
        request_id = reply.get("RequestId")
        return Credential(
            token=token,
            expires_at=absolute_expiry(data.get("ExpireAt"), now),
            upstream_request_id=request_id if isinstance(request_id, str) else None,
        )


def read_envelope(response: VendorResponse) -> Mapping[str, Any]:
    """The inner reply of either envelope; failures raise (VENDORS.md §2 "Responses — accept both").

    Documented: `{"Response": {Data|Error, RequestId}}`. Official clients: `{"code", "msg", "data": {…}}`
    where `code != 0` or a present `Error` means failure.
    """
    raise_for_http_status(response)
    body = decode_json_body(response)
    documented = body.get("Response")
    if isinstance(documented, Mapping):
        _raise_for_error(documented.get("Error"))
        return documented
    official = body.get("data")
    if isinstance(official, Mapping) or "code" in body:
        reply = official if isinstance(official, Mapping) else {}
        _raise_for_error(reply.get("Error"))
        code = body.get("code")
        if type(code) is not int or code != 0:  # False == 0 and 0.0 == 0 in Python: not success
            raise VendorUnknownError(
                f"the vendor answered code {scalar_text(code)}",
                upstream=UpstreamDetail(code=scalar_text(code), message=_text(body.get("msg"))),
            )
        return reply
    raise VendorBadResponse("the vendor's answer has neither a Response nor a data object")


def _raise_for_error(error: Any) -> None:
    if error is None:
        return
    if not isinstance(error, Mapping):
        raise VendorBadResponse("the vendor's Error is not an object")
    raise error_from_code(_text(error.get("Code")) or "", _text(error.get("Message")))


_CALLER_CODES = frozenset(
    {
        "ErrorRequiredParamNotFound",
        "InvalidAction",
        "InvalidParameterValue",
        "InvalidParameterValue.InvalidJSON",
        "InvalidParameterValue.NickNameLengthInvalid",
    }
)


def error_from_code(code: str, message: str | None) -> GatewayError:
    """Classify an `Error.Code` (VENDORS.md §2 "Error codes"); unpublished codes are a plain 502."""
    upstream = UpstreamDetail(code=code or None, message=message)
    said = f"the vendor answered {code or 'an error without a code'}"
    if code == "InternalError":
        return VendorUnavailable(said, upstream=upstream)
    if code == "InvalidParameterValue.ErrorUserNotExists":
        return VendorRejectedInput(said, code="vendor_account_not_found", upstream=upstream)
    if code == "InvalidParameterValue.InvalidAccessToken":
        return VendorRejectedInput(said, code="vendor_credential_invalid", upstream=upstream)
    if code in _CALLER_CODES:
        return VendorRejectedInput(said, upstream=upstream)
    return VendorUnknownError(said, upstream=upstream)


def _text(value: Any) -> str | None:
    """Vendor words for `upstream`/`detail`: credential shapes redacted, cut (gateway/redaction.py)."""
    return redact_text(value) if isinstance(value, str) else None
