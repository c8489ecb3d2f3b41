"""`taobao.ailab.aicloud.top.auth.get` (seed 001): the AliGenie AI-cloud login, as one TOP kind."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from gateway.errors import UpstreamDetail, VendorRejectedInput
from gateway.providers.base import (
    Credential,
    Printable,
    SendContext,
    json_in_string,
    require,
    scalar_text,
    scalar_value,
)
from gateway.providers.kind import Sample
from gateway.providers.top import TopInputs, TopKind, require_result, sample_answer
from gateway.providers.top_sandbox import (
    Params,
    TopSimulation,
    check_max_length,
    check_required,
    gson_string,
)

METHOD = "taobao.ailab.aicloud.top.auth.get"


class AiCloudLoginInputs(TopInputs):
    identity_fields = ("user_id", "utd_id", "schema_", "app_type")

    user_id: Annotated[str, Field(max_length=64), Printable]
    # 32 is the vendor's own limit: "长度限制32以内"
    utd_id: Annotated[str, Field(max_length=32), Printable]
    schema_: Annotated[str, Field(max_length=64), Printable] = Field(alias="schema")
    app_type: Annotated[str, Field(max_length=32), Printable]

    def business_params(self, ctx: SendContext) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "utd_id": self.utd_id,
            "schema": self.schema_,
            "app_type": self.app_type,
        }


def read_ai_cloud_result(payload: Mapping[str, Any], now: float) -> Credential:
    """Success needs `result.is_success` and `auth_info.success`; `auth_info` is JSON inside a string."""
    result = require_result(payload)
    if result.get("is_success") is not True:
        raise VendorRejectedInput(
            "the vendor answered is_success=false",
            upstream=UpstreamDetail(message=scalar_text(result.get("msg_info"))),
        )
    auth_info = json_in_string(result.get("auth_info"), "auth_info")
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


# --- the sandbox's stand-in for the platform ---------------------------------------------------------


def check_params(params: Params) -> None:
    """Rule (seed 001): user_id, utd_id, schema, app_type required; utd_id at most 32 characters."""
    check_required(params, ("user_id", "utd_id", "schema", "app_type"))
    check_max_length(params, "utd_id", 32)


def issue_login(vendor: TopSimulation, params: Params) -> dict[str, Any]:
    """Seed 001: `auth_info` is a JSON *string* (Gson-encoded), holding `model.accessToken`."""
    users = vendor.memory.setdefault(METHOD, {})  # (user_id, schema) -> the vendor's user id
    identity = (params["user_id"], params["schema"])
    is_new = identity not in users
    user_id = users.setdefault(identity, str(83790 + len(users)))
    access_token = base64.b64encode(secrets.token_bytes(56)).decode("ascii")
    vendor.issued_tokens.append(access_token)
    auth_info = {
        "model": {
            "isAuthenticated": False,
            "accessToken": access_token,
            "isTempUser": True,
            "isNew": is_new,
            "userId": user_id,
            "deviceIds": [],
            "utdId": params["utd_id"],
        },
        "msgCode": "SUCCESS",
        "msgInfo": "成功",
        "success": True,
    }
    # msg_info is null on success, and the platform leaves null fields out.
    return {"result": {"auth_info": gson_string(auth_info), "is_success": True}}


def _answer(payload: dict[str, Any]) -> Any:
    return sample_answer(METHOD, payload)


_MODEL = {
    "isAuthenticated": False,
    "accessToken": "ce0ofoQ41I85YJCDLzuAkgPzjsI0XiwdMF30blmqxHs",
    "isTempUser": True,
    "isNew": False,
    "userId": "83790",
    "deviceIds": [],
}
_SIGNED_IN = json.dumps({"model": _MODEL, "msgCode": "SUCCESS", "success": True})
_REFUSED = json.dumps({"msgCode": "USER_FORBIDDEN", "msgInfo": "用户被禁用", "success": False})

KIND = TopKind(
    method=METHOD,
    input_model=AiCloudLoginInputs,
    read_result=read_ai_cloud_result,
    dev_provider="aligenie-login",
    example_inputs={
        "user_id": "u-dev-1",
        "utd_id": "V944n0HrnZ4DAAtOStvvDat7",
        "schema": "dev-schema",
        "app_type": "dev-app",
    },
    samples=(
        Sample(
            "`is_success` true and `auth_info.success` true",
            _answer({"result": {"is_success": True, "auth_info": _SIGNED_IN}}),
            success=True,
        ),
        Sample(
            "`is_success` false",
            _answer({"result": {"is_success": False, "msg_info": "参数不可用"}}),
        ),
        Sample(
            "`auth_info.success` false (e.g. USER_FORBIDDEN)",
            _answer({"result": {"is_success": True, "auth_info": _REFUSED}}),
        ),
        Sample(
            "`auth_info` that is not JSON",
            _answer({"result": {"is_success": True, "auth_info": "{"}}),
        ),
    ),
    sandbox_check=check_params,
    sandbox_answer=issue_login,
)
