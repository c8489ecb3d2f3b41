"""`yunos.aiot.thirdminiapp.auth.get` (seed 000): the Zebra AIOT mini-app identity auth, as one TOP kind."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from gateway.errors import UpstreamDetail, VendorRejectedInput, VendorUnavailable
from gateway.providers.base import (
    Credential,
    Printable,
    SendContext,
    absolute_expiry,
    require,
    scalar_text,
)
from gateway.providers.kind import Sample
from gateway.providers.top import TopInputs, TopKind, compact_json, require_result, sample_answer
from gateway.providers.top_sandbox import (
    Params,
    TopSimulation,
    decode_json_object,
    missing_arguments,
    optional_object,
    optional_string,
)

METHOD = "yunos.aiot.thirdminiapp.auth.get"


class MiniAppAuthInputs(TopInputs):
    identity_fields = ("mini_app_id", "device_id")

    mini_app_id: Annotated[str, Field(max_length=64), Printable]
    device_id: Annotated[str, Field(max_length=128), Printable] | None = None

    def business_params(self, ctx: SendContext) -> dict[str, str]:
        """`params` is one JSON field `{par:{mini_app_id}, sys:{device_id}}`; `sys` only with a device id."""
        request: dict[str, Any] = {"par": {"mini_app_id": self.mini_app_id}}
        if self.device_id is not None:
            request["sys"] = {"device_id": self.device_id}
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


# --- the sandbox's stand-in for the platform ---------------------------------------------------------


def check_params(params: Params) -> None:
    """Rule (seed 000): `params` = {"par": {"mini_app_id"}, "sys": {"device_id"}}, sys optional."""
    request = decode_json_object(params, "params")
    if request is None:
        raise missing_arguments("params")
    par = optional_object(request, "par", "params.par")
    if not optional_string(par, "mini_app_id", "params.par.mini_app_id"):
        raise missing_arguments("mini_app_id")
    optional_string(
        optional_object(request, "sys", "params.sys"), "device_id", "params.sys.device_id"
    )


def issue_session(vendor: TopSimulation, params: Params) -> dict[str, Any]:
    """Seed 000: a 32-hex upper-case session id with `session_expire` as a string."""
    session_id = secrets.token_hex(16).upper()
    vendor.issued_tokens.append(session_id)
    data = {"session_id": session_id, "session_expire": session_expire(vendor)}
    return {"result": {"code": 200, "msg": "ok", "data": data}}


def session_expire(vendor: TopSimulation) -> str:
    """Seed 000 documents absolute Unix seconds; ms and relative seconds are tolerated variants."""
    if vendor.top_session_expire_format == "milliseconds":
        return str(int((vendor.now() + vendor.token_ttl_s) * 1000))
    if vendor.top_session_expire_format == "relative":
        return str(vendor.token_ttl_s)
    return str(int(vendor.now()) + vendor.token_ttl_s)


def _answer(payload: dict[str, Any]) -> Any:
    return sample_answer(METHOD, payload)


SESSION = {"session_id": "A70E1664E02EC41AFCFE75388B6531BB", "session_expire": "1595920127"}

KIND = TopKind(
    method=METHOD,
    input_model=MiniAppAuthInputs,
    read_result=read_mini_app_result,
    dev_provider="zebra-miniapp",
    example_inputs={
        "mini_app_id": "2021001170634349",
        "device_id": "A70E1664E02EC41AFCFE75388B653153",
    },
    samples=(
        Sample(
            "`result.code` 200",
            _answer({"result": {"code": 200, "msg": "ok", "data": SESSION}}),
            success=True,
        ),
        Sample("`result.code` 4xx (e.g. 403)", _answer({"result": {"code": 403, "msg": "no"}})),
        Sample("`result.code` 5xx", _answer({"result": {"code": 500, "msg": "error"}})),
        Sample("no `result` object", _answer({})),
    ),
    sandbox_check=check_params,
    sandbox_answer=issue_session,
)
