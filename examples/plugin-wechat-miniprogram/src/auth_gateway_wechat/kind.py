"""`wechat:jscode2session`: a WeChat mini-program's `wx.login()` code exchanged for the user's openid.

WeChat's `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` answers
`{openid, session_key, unionid?}` or `{errcode, errmsg}`. A code is single-use and valid for five
minutes, so the answer is cached under the code for `session_ttl_s`: a caller retrying with the same
code gets the same answer, not WeChat's 40163 "code been used". `session_key` is the user's key for
decrypting WeChat data; it leaves the gateway only when the provider says `expose_session_key: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from auth_gateway_wechat.sandbox import API, WECHAT, issued
from gateway.plugin import (
    Credential,
    Inputs,
    Printable,
    ProviderSettings,
    Sample,
    SendContext,
    UpstreamDetail,
    VendorBadResponse,
    VendorConfigurationError,
    VendorError,
    VendorQuotaExceeded,
    VendorRejectedInput,
    VendorRequest,
    VendorResponse,
    VendorUnavailable,
    VendorUnknownError,
    decode_json_body,
    json_answer,
    raise_for_http_status,
    require,
    scalar_text,
)


class Jscode2SessionInputs(Inputs):
    identity_fields = ("js_code",)  # single-use: the same code is the same login

    js_code: Annotated[str, Field(max_length=128), Printable]


class Jscode2SessionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_ttl_s: Annotated[int, Field(ge=1, le=86400)] = Field(
        300,
        description=(
            "How long the answer for one js_code is kept and replayed (WeChat's codes live five "
            "minutes)."
        ),
    )
    expose_session_key: bool = Field(
        False,
        description="Return `session_key` to the caller (it decrypts the user's WeChat data).",
    )


def error_from_answer(errcode: int, errmsg: str | None) -> VendorError:
    """WeChat's documented `errcode`s for code2Session; any other is a plain 502."""
    upstream = UpstreamDetail(code=str(errcode), message=errmsg)
    said = f"WeChat answered errcode {errcode}"
    if errcode == -1:
        return VendorUnavailable(f"{said}: system busy", upstream=upstream)
    if errcode == 45011:
        return VendorQuotaExceeded(f"{said}: API minute-quota reached", upstream=upstream)
    if errcode in (40029, 40163):
        return VendorRejectedInput(f"{said}: the code is invalid or used", upstream=upstream)
    if errcode == 40226:
        return VendorRejectedInput(f"{said}: the user is blocked as high-risk", upstream=upstream)
    if errcode in (40013, 41002):
        return VendorConfigurationError(
            f"{said}: check the provider's app_key (the appid)",
            code="vendor_app_key_rejected",
            upstream=upstream,
        )
    if errcode in (40125, 41004):
        return VendorConfigurationError(
            f"{said}: check the provider's app_secret",
            code="vendor_signature_rejected",
            upstream=upstream,
        )
    return VendorUnknownError(said, upstream=upstream)


class Jscode2Session:
    """The kind object the entry point names; the gateway reads these attributes once, at start."""

    kind = "wechat:jscode2session"
    protocol = WECHAT
    api = API
    input_model = Jscode2SessionInputs
    options_model = Jscode2SessionOptions
    dev_provider = "wechat-miniprogram"
    example_inputs: Mapping[str, Any] = {"js_code": "dev-js-code-1"}
    samples = (
        Sample(
            "`openid` and `session_key` (and `unionid` when the app is bound to an open platform)",
            json_answer(issued("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "tiihtNczf5v6AKRyjwEUhQ==", "oU1")),
            success=True,
        ),
        Sample(
            "`errcode` 40029 (invalid code)",
            json_answer({"errcode": 40029, "errmsg": "invalid code"}),
        ),
        Sample(
            "`errcode` 40163 (code been used)",
            json_answer({"errcode": 40163, "errmsg": "code been used"}),
        ),
        Sample(
            "`errcode` 45011 (minute-quota reached)",
            json_answer({"errcode": 45011, "errmsg": "api minute-quota reach limit"}),
        ),
        Sample(
            "`errcode` 40226 (high-risk user)",
            json_answer({"errcode": 40226, "errmsg": "high risk user"}),
        ),
        Sample(
            "`errcode` -1 (system busy)", json_answer({"errcode": -1, "errmsg": "system error"})
        ),
    )

    def build_request(
        self, inputs: Inputs, settings: ProviderSettings, secret: str, ctx: SendContext
    ) -> VendorRequest:
        if not isinstance(inputs, Jscode2SessionInputs):
            raise TypeError(f"{self.kind} takes Jscode2SessionInputs, not {type(inputs).__name__}")
        shown = {"appid": settings.app_key, "js_code": inputs.js_code}
        query = {**shown, "secret": secret, "grant_type": "authorization_code"}
        return VendorRequest(
            method="GET",
            url=f"{settings.endpoint}?{urlencode(query)}",
            headers={"Accept": "application/json"},
            body=b"",
            # WeChat does not sign: the secret itself travels in the query (over TLS). What is
            # shown for `gateway sign` and debug logs leaves it out.
            string_to_sign=urlencode({**shown, "grant_type": "authorization_code"}),
            api=API,
        )

    def read_response(
        self, response: VendorResponse, settings: ProviderSettings, now: float
    ) -> Credential:
        raise_for_http_status(response)
        body = decode_json_body(response)  # WeChat labels it text/plain; it is JSON
        errcode = body.get("errcode", 0)
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise VendorBadResponse("WeChat's errcode is not a number")
        if errcode != 0:
            raise error_from_answer(errcode, scalar_text(body.get("errmsg")))
        options: Jscode2SessionOptions = settings.kind_options
        data: dict[str, Any] = {"openid": require(body, "openid", str, "")}
        session_key = require(body, "session_key", str, "")
        if isinstance(body.get("unionid"), str):
            data["unionid"] = body["unionid"]
        if options.expose_session_key:
            data["session_key"] = session_key
        return Credential(token=None, expires_at=now + options.session_ttl_s, data=data)

    def settles(self, data: Mapping[str, Any]) -> bool:
        return True


KIND = Jscode2Session()
