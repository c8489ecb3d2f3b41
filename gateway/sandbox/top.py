"""Taobao Open Platform router (`POST /router/rest`) simulator: as strict as the real platform.

The request is decoded once (`decode`), then `answer` runs the platform's checks in the order the
real router applies them — each check is a small function named after the rule it enforces and
raising `TopError` with the platform's own code — then the method's business checks, then an injected
vendor fault (`faults.TopError`, `faults.BindInternalError`), a queued `CannedResponse` or the
simulated success body (VENDORS.md §1 and §3, seeds 000-002).

Every answer is HTTP 200; errors are `{"error_response": {...}}`. `format=json` gives JSON, anything
else valid (including no `format` at all, the platform default) gives XML.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson

from gateway.sandbox import faults
from gateway.sandbox.state import JSON_CONTENT_TYPE, CannedResponse, SandboxState
from gateway.signing import top as top_signing

XML_CONTENT_TYPE = "text/xml;charset=UTF-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Params = Mapping[str, str]


class TopError(Exception):
    """A platform or business error, answered as `error_response`."""

    def __init__(
        self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg


def missing_arguments(name: str) -> TopError:
    """Code 40, as the platform reports a required business parameter that was not sent."""
    return TopError(
        40, f"Missing Required Arguments:{name}", "isv.missing-parameter", f"缺少必选参数 {name}"
    )


def invalid_argument(name: str, why: str) -> TopError:
    """Code 41, as the platform reports a business parameter with an unacceptable value."""
    return TopError(41, "Invalid Arguments", "isv.invalid-parameter", f"非法参数 {name}: {why}")


# --- decoding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopRequest:
    """The router's view of one request: query and form parameters merged."""

    params: dict[str, str]  # first value wins, like a servlet's getParameter
    duplicates: tuple[str, ...]  # names sent more than once (query and body count together)
    encoding_problem: str | None  # why the parameters could not be read as UTF-8
    ignored_body: str | None  # why a non-empty body was not read as parameters

    @property
    def api(self) -> str | None:
        return self.params.get("method")


def decode(query_string: str, content_type: str, charset: str | None, body: bytes) -> TopRequest:
    """Rule: system parameters may come in the query string and the form body; both are merged.

    Values are UTF-8, form-encoded (`+` is a space). A body is read only when its Content-Type is
    `application/x-www-form-urlencoded`, as a servlet container would.
    """
    problems: list[str] = []
    pairs = _form_pairs(query_string, problems)
    ignored_body: str | None = None
    if content_type == FORM_CONTENT_TYPE:
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            problems.append(f"charset {charset} is not supported, send utf-8")
        pairs += _form_pairs(body.decode("utf-8", errors="replace"), problems)
        if not _is_utf8(body):
            problems.append("the body is not valid UTF-8")
    elif body:
        ignored_body = (
            f"the body was ignored: Content-Type is {content_type!r}, "
            f"expected {FORM_CONTENT_TYPE};charset=utf-8"
        )
    params: dict[str, str] = {}
    duplicates: list[str] = []
    for name, value in pairs:
        if name in params:
            duplicates.append(name)
        else:
            params[name] = value
    return TopRequest(params, tuple(duplicates), "; ".join(problems) or None, ignored_body)


def _form_pairs(text: str, problems: list[str]) -> list[tuple[str, str]]:
    """Form pairs; undecodable escapes become U+FFFD (so `format` still reads) and are reported."""
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        problems.append("percent-escapes are not valid UTF-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- platform checks, in the router's order -------------------------------------------------------


def _present(params: Params, name: str) -> str | None:
    """A system parameter counts as sent only with a non-blank value."""
    value = params.get(name)
    return value if value is not None and value.strip() else None


def check_encoding(request: TopRequest) -> None:
    """Rule: parameters are UTF-8 (code 47, Invalid Encoding)."""
    if request.encoding_problem:
        raise TopError(47, "Invalid Encoding", "isv.invalid-encoding", request.encoding_problem)


def check_method_present(params: Params) -> str:
    """Rule: `method` is required (code 21)."""
    method = _present(params, "method")
    if method is None:
        raise TopError(21, "Missing Method")
    return method


def check_method_known(name: str) -> TopMethod:
    """Rule: `method` names an API the platform serves (code 22); the sandbox serves three."""
    method = METHODS.get(name)
    if method is None:
        raise TopError(22, "Invalid Method", "isv.invalid-method", f"unknown method {name}")
    return method


def check_format(params: Params) -> None:
    """Rule: `format` is `json` or `xml` when sent; xml is the default (code 23)."""
    value = params.get("format")
    if value is not None and value not in ("json", "xml"):
        raise TopError(23, "Invalid Format", "isv.invalid-format", f"format {value!r}: json or xml")


def check_app_key_present(params: Params) -> str:
    """Rule: `app_key` is required (code 28)."""
    app_key = _present(params, "app_key")
    if app_key is None:
        raise TopError(28, "Missing App Key")
    return app_key


def check_app_key_known(state: SandboxState, app_key: str) -> str:
    """Rule: `app_key` belongs to a registered application (code 29); returns its secret."""
    secret = state.top_apps.get(app_key)
    if secret is None:
        raise TopError(29, "Invalid App Key")
    return secret


def check_timestamp_present(params: Params) -> str:
    """Rule: `timestamp` is required (code 30)."""
    timestamp = _present(params, "timestamp")
    if timestamp is None:
        raise TopError(30, "Missing Timestamp")
    return timestamp


_TIMESTAMP_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def check_timestamp_fresh(state: SandboxState, timestamp: str) -> None:
    """Rule: `yyyy-MM-dd HH:mm:ss` wall clock in GMT+8, within ±top_skew_s of the platform (31)."""
    try:
        if not _TIMESTAMP_SHAPE.fullmatch(timestamp):
            raise ValueError(timestamp)
        sent = top_signing.parse_top_timestamp(timestamp)
    except ValueError:
        raise TopError(
            31, "Invalid Timestamp", "isv.invalid-timestamp", "expected yyyy-MM-dd HH:mm:ss"
        ) from None
    skew = sent - state.now()
    if abs(skew) > state.top_skew_s:
        raise TopError(
            31,
            "Invalid Timestamp",
            "isv.invalid-timestamp",
            f"{skew:+.0f}s away from GMT+8 platform time; allowed ±{state.top_skew_s:.0f}s",
        )


def check_version(params: Params) -> None:
    """Rule: `v` is required (code 32) and must be `2.0` (code 33)."""
    version = _present(params, "v")
    if version is None:
        raise TopError(32, "Missing Version")
    if version != "2.0":
        raise TopError(33, "Invalid Version", "isv.invalid-version", f"v={version}: only 2.0")


def check_sign_method(params: Params) -> top_signing.SignMethod:
    """Rule: `sign_method` is md5, hmac or hmac-sha256 (code 25); md5 when absent, as documented."""
    value = params.get("sign_method", "md5")
    if value not in top_signing.SIGN_METHODS:
        raise TopError(
            25,
            "Invalid signature",
            "isv.invalid-signature",
            f"sign_method {value!r} is not supported: md5, hmac or hmac-sha256",
        )
    return value


def check_sign_present(params: Params) -> str:
    """Rule: `sign` is required (code 24)."""
    sign = _present(params, "sign")
    if sign is None:
        raise TopError(24, "Missing Signature")
    return sign


def check_signature(
    params: Params, sign: str, secret: str, sign_method: top_signing.SignMethod
) -> None:
    """Rule: `sign` is the upper-case hex digest of every other sent parameter (code 25)."""
    expected = top_signing.sign(params, secret, sign_method)
    if not hmac.compare_digest(sign.encode("utf-8"), expected.encode("ascii")):
        hint = "sign must be upper-case hex" if sign.upper() == expected else None
        raise TopError(25, "Invalid signature", "isv.invalid-signature" if hint else None, hint)


def check_no_blank_values(params: Params) -> None:
    """Rule: no parameter is sent with an empty or whitespace-only value (real SDKs drop them)."""
    for name, value in params.items():
        if not value.strip():
            raise invalid_argument(name, "empty value; drop the parameter instead of sending it")


def check_no_duplicates(request: TopRequest) -> None:
    """Rule: each parameter is sent once (query and body together); a repeated one is ambiguous."""
    if request.duplicates:
        raise invalid_argument(request.duplicates[0], "sent more than once")


def check_platform(state: SandboxState, request: TopRequest) -> TopMethod:
    """Every platform-level check, in the router's order; returns the method to run."""
    params = request.params
    check_encoding(request)
    method = check_method_known(check_method_present(params))
    check_format(params)
    secret = check_app_key_known(state, check_app_key_present(params))
    check_timestamp_fresh(state, check_timestamp_present(params))
    check_version(params)
    sign_method = check_sign_method(params)
    sign = check_sign_present(params)
    check_signature(params, sign, secret, sign_method)
    check_no_blank_values(params)
    check_no_duplicates(request)
    return method


# --- business checks ------------------------------------------------------------------------------


def check_required(params: Params, names: tuple[str, ...]) -> None:
    """Rule: every required business parameter is sent (code 40)."""
    for name in names:
        if name not in params:
            raise missing_arguments(name)


def check_max_length(params: Params, name: str, limit: int) -> None:
    """Rule: a length-limited parameter stays within its limit (code 41)."""
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise invalid_argument(name, f"longer than {limit} characters")


def decode_json_object(params: Params, name: str) -> dict[str, Any] | None:
    """Rule: a `Json`/object-typed parameter is one field holding a JSON object (code 41)."""
    text = params.get(name)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid_argument(name, "not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid_argument(name, "not a JSON object")
    return value


def _optional_object(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_argument(path, "not a JSON object")
    return value


def _optional_string(parent: Mapping[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_argument(path, "not a string")
    return value


def check_thirdminiapp_params(params: Params) -> None:
    """Rule (seed 000): `params` = {"par": {"mini_app_id"}, "sys": {"device_id"}}, sys optional."""
    request = decode_json_object(params, "params")
    if request is None:
        raise missing_arguments("params")
    par = _optional_object(request, "par", "params.par")
    mini_app_id = _optional_string(par, "mini_app_id", "params.par.mini_app_id")
    if not mini_app_id:
        raise missing_arguments("mini_app_id")
    sys = _optional_object(request, "sys", "params.sys")
    _optional_string(sys, "device_id", "params.sys.device_id")


def check_auth_get_params(params: Params) -> None:
    """Rule (seed 001): user_id, utd_id, schema, app_type required; utd_id at most 32 characters."""
    check_required(params, ("user_id", "utd_id", "schema", "app_type"))
    check_max_length(params, "utd_id", 32)


def check_checkbind_params(params: Params) -> None:
    """Rule (seed 002): open_id, product_key, trace_id, user_type required; params a JSON object."""
    check_required(params, ("open_id", "product_key", "trace_id", "user_type"))
    decode_json_object(params, "params")


# --- simulated answers ----------------------------------------------------------------------------


def issue_thirdminiapp_session(state: SandboxState, params: Params) -> dict[str, Any]:
    """Seed 000: a 32-hex upper-case session id with `session_expire` as a string."""
    session_id = secrets.token_hex(16).upper()
    state.issued_tokens.append(session_id)
    return {
        "result": {
            "code": 200,
            "msg": "ok",
            "data": {"session_id": session_id, "session_expire": session_expire(state)},
        }
    }


def session_expire(state: SandboxState) -> str:
    """Seed 000 documents absolute Unix seconds; ms and relative seconds are tolerated variants."""
    if state.top_session_expire_format == "milliseconds":
        return str(int((state.now() + state.token_ttl_s) * 1000))
    if state.top_session_expire_format == "relative":
        return str(state.token_ttl_s)
    return str(int(state.now()) + state.token_ttl_s)


def issue_aicloud_login(state: SandboxState, params: Params) -> dict[str, Any]:
    """Seed 001: `auth_info` is a JSON *string* (Gson-encoded), holding `model.accessToken`."""
    identity = (params["user_id"], params["schema"])
    is_new = identity not in state.top_user_ids
    user_id = state.top_user_ids.setdefault(identity, str(83790 + len(state.top_user_ids)))
    access_token = base64.b64encode(secrets.token_bytes(56)).decode("ascii")
    state.issued_tokens.append(access_token)
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


# Gson's default HTML-safe escaping, as seen in seed 001 (`\u003d` for `=`).
_GSON_HTML_ESCAPES = {ord(char): f"\\u{ord(char):04x}" for char in "<>&='"}


def gson_string(value: Mapping[str, Any]) -> str:
    """JSON as the vendor's Gson writes it: compact, raw UTF-8, HTML characters as \\u escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters can only occur inside JSON strings, where the escape means the same thing.
    return text.translate(_GSON_HTML_ESCAPES)


def poll_bind_result(state: SandboxState, params: Params) -> dict[str, Any]:
    """Seed 002: `ret_value` stays false for the first `bind_after_polls` polls of an identity."""
    identity = (params["open_id"], params["product_key"])
    polls = state.bind_polls.get(identity, 0) + 1
    state.bind_polls[identity] = polls
    return {
        "result": True,
        "ret_value": polls > state.bind_after_polls,
        "ret_code": 0,
        "message": "success",
        "trace_id": secrets.token_hex(
            15
        ),  # the platform's own (EagleEye) trace id, not the caller's
    }


@dataclass(frozen=True)
class TopMethod:
    """One API the simulated router serves: its business checks and its simulated answer."""

    name: str
    check_params: Callable[[Params], None]
    respond: Callable[[SandboxState, Params], dict[str, Any]]

    @property
    def response_name(self) -> str:
        """Rule: the method without a leading `taobao.`, dots as underscores, plus `_response`."""
        return self.name.removeprefix("taobao.").replace(".", "_") + "_response"


METHODS: dict[str, TopMethod] = {
    method.name: method
    for method in (
        TopMethod(
            "yunos.aiot.thirdminiapp.auth.get",
            check_thirdminiapp_params,
            issue_thirdminiapp_session,
        ),
        TopMethod("taobao.ailab.aicloud.top.auth.get", check_auth_get_params, issue_aicloud_login),
        TopMethod(
            "alibaba.ailabs.iot.device.inside.checkbind.invoke",
            check_checkbind_params,
            poll_bind_result,
        ),
    )
}


# --- rendering ------------------------------------------------------------------------------------


_REQUEST_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_request_id() -> str:
    """A platform request id, shaped like the real ones (13 lower-case base-36 characters)."""
    return "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(13))


def render(root: str, payload: dict[str, Any], *, as_json: bool, simplify: bool) -> CannedResponse:
    """JSON (`format=json`, optionally without the wrapper) or the platform's default XML."""
    if as_json:
        document = payload if simplify else {root: payload}
        return CannedResponse(200, orjson.dumps(document), JSON_CONTENT_TYPE)
    xml = '<?xml version="1.0" encoding="utf-8" ?>' + _xml_element(root, payload)
    return CannedResponse(200, xml.encode("utf-8"), XML_CONTENT_TYPE)


def _xml_element(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(_xml_element(name, item) for item in value)
    if isinstance(value, dict):
        inner = "".join(_xml_element(key, item) for key, item in value.items())
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def render_error(error: TopError, request: TopRequest, *, as_json: bool) -> CannedResponse:
    """Rule: errors are `error_response`: code, msg, optional sub_code/sub_msg, request_id."""
    sub_msg = error.sub_msg
    if request.ignored_body:
        sub_msg = f"{sub_msg}; {request.ignored_body}" if sub_msg else request.ignored_body
    body: dict[str, Any] = {"code": error.code, "msg": error.msg}
    if error.sub_code is not None:
        body["sub_code"] = error.sub_code
    if sub_msg is not None:
        body["sub_msg"] = sub_msg
    body["request_id"] = new_request_id()
    # simplify never removes the error_response wrapper.
    return render("error_response", body, as_json=as_json, simplify=False)


def render_fault(
    fault: faults.Fault, request: TopRequest, method: TopMethod, *, as_json: bool, simplify: bool
) -> CannedResponse:
    """An injected vendor fault, written exactly as the platform writes that failure."""
    if isinstance(fault, faults.TopError):
        error = TopError(fault.code, fault.msg, fault.sub_code, fault.sub_msg)
        return render_error(error, request, as_json=as_json)
    if isinstance(fault, faults.BindInternalError):
        payload = {
            "message": fault.message,
            "ret_code": fault.ret_code,
            "ret_value": False,
            "result": False,
            "trace_id": secrets.token_hex(15),
            "request_id": new_request_id(),
        }
        return render(method.response_name, payload, as_json=as_json, simplify=simplify)
    raise TypeError(f"not a TOP vendor fault: {fault!r}")


def answer(state: SandboxState, request: TopRequest) -> CannedResponse:
    """The router's answer: platform checks, business checks, then a fault, canned or simulated body.

    An injected vendor fault fires only here, after every check passed, and before a canned answer
    (which stays queued).
    """
    params = request.params
    as_json = params.get("format") == "json"
    simplify = params.get("simplify") == "true"
    try:
        method = check_platform(state, request)
        method.check_params(params)
    except TopError as error:
        return render_error(error, request, as_json=as_json)
    fault = state.faults.take("vendor", "top", method.name)
    if fault is not None:
        return render_fault(fault, request, method, as_json=as_json, simplify=simplify)
    canned = state.take_canned(method.name)
    if canned is not None:
        return canned
    payload = method.respond(state, params)
    payload["request_id"] = new_request_id()
    return render(method.response_name, payload, as_json=as_json, simplify=simplify)
