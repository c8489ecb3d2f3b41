"""`alibaba.ailabs.iot.device.inside.checkbind.invoke` (seed 002): Tmall Genie bind polling, one TOP kind."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from gateway.errors import UpstreamDetail, VendorBadResponse, VendorUnavailable, VendorUnknownError
from gateway.providers.base import (
    Credential,
    Printable,
    SendContext,
    checked_json_object,
    scalar_text,
)
from gateway.providers.kind import Sample
from gateway.providers.top import TopInputs, TopKind, compact_json, sample_answer
from gateway.providers.top_sandbox import (
    Params,
    TopSimulation,
    check_required,
    decode_json_object,
)

METHOD = "alibaba.ailabs.iot.device.inside.checkbind.invoke"


class BindCheckInputs(TopInputs):
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

    def business_params(self, ctx: SendContext) -> dict[str, str]:
        """Bare values (the doc's quoted Java sample is an artefact); `params` as compact JSON; a trace id."""
        params = {
            "open_id": self.open_id,
            "product_key": self.product_key,
            "user_type": self.user_type,
            "trace_id": self.trace_id or ctx.request_id.replace("-", ""),
            "device_name": self.device_name or "",
            "iot_id": self.iot_id or "",
            "server_event_request_id": self.server_event_request_id or "",
        }
        if self.params is not None:
            params["params"] = compact_json(self.params)
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


def is_bound(data: Mapping[str, Any]) -> bool:
    """A poll ends once the device is bound."""
    return data.get("bound") is True


# --- the sandbox's stand-in for the platform ---------------------------------------------------------


def check_params(params: Params) -> None:
    """Rule (seed 002): open_id, product_key, trace_id, user_type required; params a JSON object."""
    check_required(params, ("open_id", "product_key", "trace_id", "user_type"))
    decode_json_object(params, "params")


def poll(vendor: TopSimulation, params: Params) -> dict[str, Any]:
    """Seed 002: `ret_value` stays false for the first `bind_after_polls` polls of an identity."""
    polls = vendor.memory.setdefault(METHOD, {})  # (open_id, product_key) -> polls so far
    identity = (params["open_id"], params["product_key"])
    polls[identity] = polls.get(identity, 0) + 1
    return {
        "result": True,
        "ret_value": polls[identity] > vendor.bind_after_polls,
        "ret_code": 0,
        "message": "success",
        "trace_id": secrets.token_hex(15),  # the platform's own (EagleEye) trace id
    }


def internal_error(ret_code: int, message: str) -> dict[str, Any]:
    """Seed 002's failure inside a success envelope: `result=false` with a `ret_code`."""
    return {
        "message": message,
        "ret_code": ret_code,
        "ret_value": False,
        "result": False,
        "trace_id": secrets.token_hex(15),
    }


def _answer(payload: dict[str, Any]) -> Any:
    return sample_answer(METHOD, payload)


KIND = TopKind(
    method=METHOD,
    input_model=BindCheckInputs,
    read_result=read_bind_check_result,
    dev_provider="tmallgenie-bind",
    example_inputs={"open_id": "o-dev-1", "product_key": "a1dev", "user_type": "TAOBAO"},
    samples=(
        Sample(
            "`result` true, `ret_value` true (bound)",
            _answer({"result": True, "ret_value": True, "ret_code": 0, "message": "success"}),
            success=True,
        ),
        Sample(
            "`result` true, `ret_value` false (not bound yet)",
            _answer({"result": True, "ret_value": False, "ret_code": 0, "message": "success"}),
            success=True,
        ),
        Sample(
            "`result` false with `ret_code` 331001",
            _answer({"result": False, "ret_code": 331001, "message": "系统内部未知错误"}),
        ),
        Sample(
            "`result` false with any other `ret_code`",
            _answer({"result": False, "ret_code": 1001, "message": "failed"}),
        ),
        Sample("no boolean `result`", _answer({"ret_code": 0})),
    ),
    sandbox_check=check_params,
    sandbox_answer=poll,
    settles=is_bound,
    sandbox_internal_error=internal_error,
)
