"""The three TOP calls of seeds 000 to 002: inputs, business parameters and how each reads its `result`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field

from gateway.errors import (
    UpstreamDetail,
    VendorBadResponse,
    VendorRejectedInput,
    VendorUnavailable,
    VendorUnknownError,
)
from gateway.providers.base import (
    Credential,
    Inputs,
    Printable,
    SendContext,
    absolute_expiry,
    checked_json_object,
    require,
    scalar_text,
    scalar_value,
)
from gateway.providers.top import TopOperation, compact_json, require_result

# --- 000 yunos.aiot.thirdminiapp.auth.get: Zebra AIOT mini-app identity auth ----------------------


class MiniAppAuthInputs(Inputs):
    identity_fields = ("mini_app_id", "device_id")

    mini_app_id: Annotated[str, Field(max_length=64), Printable]
    device_id: Annotated[str, Field(max_length=128), Printable] | None = None


def mini_app_params(inputs: MiniAppAuthInputs, ctx: SendContext) -> dict[str, str]:
    """`params` is one JSON field `{par:{mini_app_id}, sys:{device_id}}`; `sys` only with a device id."""
    request: dict[str, Any] = {"par": {"mini_app_id": inputs.mini_app_id}}
    if inputs.device_id is not None:
        request["sys"] = {"device_id": inputs.device_id}
    return {"params": compact_json(request)}


def read_mini_app_result(payload: Mapping[str, Any], now: float) -> Credential:
    """Success when `result.code == 200`; `data.session_expire` is a string of (usually) Unix seconds."""
    result = require_result(payload)
    code = scalar_text(result.get("code"))
    if code != "200":
        upstream = UpstreamDetail(code=code, message=scalar_text(result.get("msg")))
        if code is not None and code.isdigit() and len(code) == 3 and code >= "500":
            raise VendorUnavailable(f"the vendor answered result code {code}", upstream=upstream)
        raise VendorRejectedInput(f"the vendor answered result code {code}", upstream=upstream)
    data = require(result, "data", Mapping, "result.")
    session_id = require(data, "session_id", str, "result.data.")
    return Credential(token=session_id, expires_at=absolute_expiry(data.get("session_expire"), now))


MINI_APP_AUTH = TopOperation(
    method="yunos.aiot.thirdminiapp.auth.get",
    input_model=MiniAppAuthInputs,
    business_params=mini_app_params,
    read_result=read_mini_app_result,
)


# --- 001 taobao.ailab.aicloud.top.auth.get: AliGenie AI-cloud login --------------------------------


class AiCloudLoginInputs(Inputs):
    identity_fields = ("user_id", "utd_id", "schema_", "app_type")

    user_id: Annotated[str, Field(max_length=64), Printable]
    # 32 is the vendor's own limit: "长度限制32以内"
    utd_id: Annotated[str, Field(max_length=32), Printable]
    schema_: Annotated[str, Field(max_length=64), Printable] = Field(alias="schema")
    app_type: Annotated[str, Field(max_length=32), Printable]


def ai_cloud_params(inputs: AiCloudLoginInputs, ctx: SendContext) -> dict[str, str]:
    return {
        "user_id": inputs.user_id,
        "utd_id": inputs.utd_id,
        "schema": inputs.schema_,
        "app_type": inputs.app_type,
    }


def read_ai_cloud_result(payload: Mapping[str, Any], now: float) -> Credential:
    """Success needs `result.is_success` and `auth_info.success`; `auth_info` is JSON inside a string."""
    result = require_result(payload)
    if result.get("is_success") is not True:
        raise VendorRejectedInput(
            "the vendor answered is_success=false",
            upstream=UpstreamDetail(message=scalar_text(result.get("msg_info"))),
        )
    auth_info = _decode_auth_info(result.get("auth_info"))
    if auth_info.get("success") is not True or auth_info.get("msgCode", "SUCCESS") != "SUCCESS":
        raise VendorRejectedInput(
            f"the vendor's auth_info says {scalar_text(auth_info.get('msgCode'))}",
            upstream=UpstreamDetail(
                code=scalar_text(auth_info.get("msgCode")),
                message=scalar_text(auth_info.get("msgInfo")),
            ),
        )
    model = require(auth_info, "model", Mapping, "auth_info.")
    token = require(model, "accessToken", str, "auth_info.model.")
    device_ids = model.get("deviceIds")
    return Credential(
        token=token,
        expires_at=None,  # the vendor returns no expiry: the service applies token_ttl_s
        data={
            "user_id": scalar_value(model.get("userId")),
            "is_new": model.get("isNew") is True,
            "is_temp_user": model.get("isTempUser") is True,
            "is_authenticated": model.get("isAuthenticated") is True,
            "device_ids": [str(d) for d in device_ids] if isinstance(device_ids, list) else [],
        },
    )


def _decode_auth_info(raw: Any) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):  # tolerate a vendor that stops double-encoding
        return raw
    if not isinstance(raw, str):
        raise VendorBadResponse("the vendor's answer has no auth_info")
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise VendorBadResponse("the vendor's auth_info is not JSON") from None
    if not isinstance(decoded, dict):
        raise VendorBadResponse("the vendor's auth_info is not a JSON object")
    return decoded


AI_CLOUD_LOGIN = TopOperation(
    method="taobao.ailab.aicloud.top.auth.get",
    input_model=AiCloudLoginInputs,
    business_params=ai_cloud_params,
    read_result=read_ai_cloud_result,
)


# --- 002 alibaba.ailabs.iot.device.inside.checkbind.invoke: Tmall Genie bind polling --------------


class BindCheckInputs(Inputs):
    # trace_id and server_event_request_id vary per poll; params carries no identity.
    identity_fields = ("open_id", "product_key", "user_type", "device_name", "iot_id")

    open_id: Annotated[str, Field(max_length=128), Printable]
    product_key: Annotated[str, Field(max_length=64), Printable]
    user_type: Annotated[str, Field(max_length=32), Printable]
    trace_id: Annotated[str, Field(max_length=64), Printable] | None = None
    device_name: Annotated[str, Field(max_length=128), Printable] | None = None
    iot_id: Annotated[str, Field(max_length=128), Printable] | None = None
    server_event_request_id: Annotated[str, Field(max_length=128), Printable] | None = None
    params: Annotated[dict[str, Any], AfterValidator(checked_json_object)] | None = None
    # Not sent to the vendor: how long the gateway may poll until bound (capped by bind_wait_max_s).
    wait_s: Annotated[float, Field(gt=0, le=120)] | None = None

    def poll_wait_s(self) -> float | None:
        return self.wait_s


def bind_check_params(inputs: BindCheckInputs, ctx: SendContext) -> dict[str, str]:
    """Bare values (the doc's quoted Java sample is an artefact); `params` as compact JSON; a trace id."""
    params = {
        "open_id": inputs.open_id,
        "product_key": inputs.product_key,
        "user_type": inputs.user_type,
        "trace_id": inputs.trace_id or ctx.request_id.replace("-", ""),
        "device_name": inputs.device_name or "",
        "iot_id": inputs.iot_id or "",
        "server_event_request_id": inputs.server_event_request_id or "",
    }
    if inputs.params is not None:
        params["params"] = compact_json(inputs.params)
    return params


def read_bind_check_result(payload: Mapping[str, Any], now: float) -> Credential:
    """`result == true` answers the poll (`ret_value`: bound or not yet); `result == false` is a failure."""
    result = payload.get("result")
    if result is True:
        bound = payload.get("ret_value") is True
        return Credential(token=None, expires_at=None, data={"bound": bound}, cacheable=bound)
    if result is False:
        upstream = UpstreamDetail(
            code=scalar_text(payload.get("ret_code")),
            message=scalar_text(payload.get("message")),
        )
        if upstream.code == "331001":  # "系统内部未知错误": an internal error
            raise VendorUnavailable("the vendor reported an internal error", upstream=upstream)
        raise VendorUnknownError(f"the vendor answered ret_code {upstream.code}", upstream=upstream)
    raise VendorBadResponse("the vendor's answer has no boolean result")


BIND_CHECK = TopOperation(
    method="alibaba.ailabs.iot.device.inside.checkbind.invoke",
    input_model=BindCheckInputs,
    business_params=bind_check_params,
    read_result=read_bind_check_result,
)
