"""Tencent IoT Explorer appapi (`POST /api/exploreropen/appapi`) simulator: `AppGetTokenByWeiXin`.

The body is decoded once (`decode`), then `answer` runs the checks — each a small function named
after the rule it enforces, raising `TencentError` — then answers with an injected vendor fault
(`faults.TencentError`), a queued `CannedResponse` or a new token, in the documented (`Response`)
or the official-client (`code`/`data`) envelope (VENDORS.md §2, seed 003). Vendor-level errors are
always HTTP 200.

Tencent publishes no error code for an unknown AppKey, a stale Timestamp, a reused Nonce or a bad
Signature; the sandbox answers those with stand-in codes under `InvalidParameterValue.` (see the
constants below), which a gateway must treat as opaque vendor codes.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.sandbox import faults
from gateway.sandbox.state import CannedResponse, SandboxState
from gateway.signing import tencent_iot as tencent_signing

ACTION = "AppGetTokenByWeiXin"
RESPONSE_CONTENT_TYPE = "application/json; charset=utf-8"

# Published codes (seed 003 "Error Code").
INVALID_JSON = "InvalidParameterValue.InvalidJSON"
INVALID_ACTION = "InvalidAction"
REQUIRED_PARAM_NOT_FOUND = "ErrorRequiredParamNotFound"
INVALID_PARAMETER_VALUE = "InvalidParameterValue"
NICK_NAME_LENGTH_INVALID = "InvalidParameterValue.NickNameLengthInvalid"
# Sandbox stand-ins: Tencent does not publish these codes (VENDORS.md §2 "Error codes").
APP_KEY_NOT_EXISTS = "InvalidParameterValue.AppKeyNotExists"
TIMESTAMP_EXPIRED = "InvalidParameterValue.TimestampExpired"
NONCE_REUSED = "InvalidParameterValue.NonceReused"
SIGNATURE_INVALID = "InvalidParameterValue.SignatureInvalid"

REQUIRED_FIELDS = (
    "RequestId",
    "AppKey",
    "Signature",
    "Timestamp",
    "Nonce",
    "WxOpenID",
    "NickName",
    "Avatar",
)
STRING_FIELDS = ("RequestId", "AppKey", "Signature", "WxOpenID", "NickName", "Avatar")
NONCE_MAX = 2**31 - 1
NICK_NAME_MAX_CHARS = 32


class TencentError(Exception):
    """A vendor-level error, answered as `Error: {Code, Message}` in the configured envelope."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- decoding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TencentRequest:
    """The body as the API reads it."""

    fields: dict[str, Any]  # the JSON object's fields ({} when the body is not a JSON object)
    problem: str | None  # why the body is not a JSON request

    @property
    def api(self) -> str | None:
        action = self.fields.get("Action")
        return action if isinstance(action, str) else None


def decode(content_type: str, body: bytes) -> TencentRequest:
    """Rule: the body is one UTF-8 JSON object with every parameter as a top-level field."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return TencentRequest({}, "the body is not valid UTF-8 JSON")
    if not isinstance(value, dict):
        return TencentRequest({}, "the body is not a JSON object")
    if content_type != "application/json":
        return TencentRequest(value, f"Content-Type is {content_type!r}, expected application/json")
    return TencentRequest(value, None)


# --- checks, in order -----------------------------------------------------------------------------


def check_json_object(request: TencentRequest) -> None:
    """Rule: the request is a JSON object sent as application/json (InvalidJSON)."""
    if request.problem:
        raise TencentError(INVALID_JSON, f"The request format is not JSON: {request.problem}.")


def check_action(fields: dict[str, Any]) -> None:
    """Rule: `Action` names this interface (InvalidAction)."""
    action = fields.get("Action")
    if action != ACTION:
        raise TencentError(INVALID_ACTION, f"Illegal Action: {action!r}.")


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def check_required_present(fields: dict[str, Any]) -> None:
    """Rule: every required parameter is sent, not empty (ErrorRequiredParamNotFound)."""
    for name in REQUIRED_FIELDS:
        if fields.get(name) is None or _blank(fields[name]):
            raise TencentError(REQUIRED_PARAM_NOT_FOUND, f"Required parameter is missing: {name}.")


def check_no_empty_strings(fields: dict[str, Any]) -> None:
    """Rule: no field is an empty string — it would drop out of the signature (signing step 1)."""
    for name, value in fields.items():
        if _blank(value):
            raise TencentError(REQUIRED_PARAM_NOT_FOUND, f"Required parameter is empty: {name}.")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_value_types(fields: dict[str, Any]) -> None:
    """Rule: strings are JSON strings, `Timestamp` and `Nonce` JSON integers, Nonce in 1..2^31-1.

    Any other field must be a string or an integer too: nothing else has a signing form.
    """
    for name in STRING_FIELDS:
        if not isinstance(fields[name], str):
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} must be a string.")
    if not _is_integer(fields["Timestamp"]):
        raise TencentError(INVALID_PARAMETER_VALUE, "Timestamp must be an integer (Unix seconds).")
    nonce = fields["Nonce"]
    if not _is_integer(nonce) or not 1 <= nonce <= NONCE_MAX:
        raise TencentError(INVALID_PARAMETER_VALUE, "Nonce must be an integer in 1..2147483647.")
    for name, value in fields.items():
        if not isinstance(value, str) and not _is_integer(value):
            raise TencentError(INVALID_PARAMETER_VALUE, f"{name} must be a string or an integer.")


def check_app_key_known(state: SandboxState, app_key: str) -> str:
    """Rule: `AppKey` belongs to an application (stand-in code); returns its AppSecret."""
    secret = state.tencent_apps.get(app_key)
    if secret is None:
        raise TencentError(APP_KEY_NOT_EXISTS, "AppKey does not exist.")
    return secret


def check_timestamp_fresh(state: SandboxState, timestamp: int) -> None:
    """Rule: `Timestamp` is within ±tencent_skew_s of the vendor clock (unpublished; stand-in)."""
    skew = timestamp - state.now()
    if abs(skew) > state.tencent_skew_s:
        raise TencentError(
            TIMESTAMP_EXPIRED,
            f"Timestamp is {skew:+.0f}s away from server time; "
            f"allowed ±{state.tencent_skew_s:.0f}s.",
        )


def check_signature(fields: dict[str, Any], secret: str) -> None:
    """Rule: Signature = Base64(HMAC-SHA1(AppSecret, sorted `Name=Value` joined by `&`))."""
    expected = tencent_signing.sign(fields, secret)
    if not hmac.compare_digest(fields["Signature"].encode("utf-8"), expected.encode("ascii")):
        raise TencentError(SIGNATURE_INVALID, "Signature is invalid.")


def check_nonce_fresh(state: SandboxState, app_key: str, nonce: int, timestamp: int) -> None:
    """Rule: (AppKey, Nonce, Timestamp) is used once within the skew window (replay; stand-in).

    Runs after the signature check, so a forged request cannot burn a legitimate caller's nonce.
    """
    if not state.remember_nonce((app_key, nonce, timestamp), state.now() - state.tencent_skew_s):
        raise TencentError(NONCE_REUSED, "Nonce has already been used with this Timestamp.")


def check_nick_name_length(nick_name: str) -> None:
    """Rule: `NickName` is at most 32 characters (NickNameLengthInvalid)."""
    if len(nick_name) > NICK_NAME_MAX_CHARS:
        raise TencentError(NICK_NAME_LENGTH_INVALID, "Nickname length is illegal.")


def check_request(state: SandboxState, request: TencentRequest) -> None:
    """Every check, in order."""
    check_json_object(request)
    fields = request.fields
    check_action(fields)
    check_required_present(fields)
    check_no_empty_strings(fields)
    check_value_types(fields)
    secret = check_app_key_known(state, fields["AppKey"])
    check_timestamp_fresh(state, fields["Timestamp"])
    check_signature(fields, secret)
    check_nonce_fresh(state, fields["AppKey"], fields["Nonce"], fields["Timestamp"])
    check_nick_name_length(fields["NickName"])


# --- answers --------------------------------------------------------------------------------------


def log_in(state: SandboxState, fields: dict[str, Any]) -> dict[str, Any]:
    """The first call registers the WeChat user; every login issues a new token (no refresh)."""
    state.tencent_user_ids.setdefault(fields["WxOpenID"], uuid.uuid4().hex)
    token = secrets.token_hex(16)
    state.issued_tokens.append(token)
    return {"ExpireAt": int(state.now()) + state.token_ttl_s, "Token": token}


def request_id_of(fields: dict[str, Any]) -> str:
    """The caller's RequestId echoed back; a fresh one when it sent none usable."""
    request_id = fields.get("RequestId")
    return request_id if isinstance(request_id, str) and request_id else str(uuid.uuid4())


def envelope(state: SandboxState, request_id: str, key: str, value: dict[str, Any]) -> bytes:
    """`{"Response": …}` as documented, or `{"code", "msg", "data": …}` as official clients read."""
    inner = {key: value, "RequestId": request_id}
    if state.tencent_envelope == "official":
        if key == "Error":
            return orjson.dumps({"code": -1000, "msg": value["Message"], "data": inner})
        return orjson.dumps({"code": 0, "msg": "success", "data": inner})
    return orjson.dumps({"Response": inner})


def answer(state: SandboxState, request: TencentRequest) -> CannedResponse:
    """The API's answer: checks, then a fault, canned or simulated body; vendor errors are HTTP 200.

    An injected vendor fault fires only after every check passed (the nonce is spent), and before
    a canned answer (which stays queued).
    """
    request_id = request_id_of(request.fields)
    try:
        check_request(state, request)
        fault = state.faults.take("vendor", "tencent", ACTION)
        if fault is not None:
            if not isinstance(fault, faults.TencentError):
                raise TypeError(f"not a Tencent vendor fault: {fault!r}")
            raise TencentError(fault.code, fault.message)
    except TencentError as error:
        body = envelope(state, request_id, "Error", {"Code": error.code, "Message": error.message})
        return CannedResponse(200, body, RESPONSE_CONTENT_TYPE)
    canned = state.take_canned(ACTION)
    if canned is not None:
        return canned
    body = envelope(state, request_id, "Data", log_in(state, request.fields))
    return CannedResponse(200, body, RESPONSE_CONTENT_TYPE)
