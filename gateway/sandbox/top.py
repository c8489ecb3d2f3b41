"""Taobao Open Platform router (`POST /router/rest`) simulator: as strict as the real platform.

The request is decoded once (`decode`), then `answer` runs the platform's checks in the order the
real router applies them — each check is a small function named after the rule it enforces and
raising `TopError` with the platform's own code — then the method's business checks, then an injected
vendor fault (`faults.TopError`, `faults.BindInternalError`), a queued `CannedResponse` or the
simulated success body (VENDORS.md §1 and §3). The methods served are the installed TOP kinds: each
brings its business checks and its simulated answer (`TopKind.sandbox_check`, `sandbox_answer`).

Every answer is HTTP 200; errors are `{"error_response": {...}}`. `format=json` gives JSON, anything
else valid (including no `format` at all, the platform default) gives XML.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import orjson

from gateway.providers.registry import installed_kinds
from gateway.providers.top import TopKind
from gateway.providers.top_sandbox import Params, TopError, invalid_argument
from gateway.sandbox import faults
from gateway.sandbox.state import JSON_CONTENT_TYPE, CannedResponse, SandboxState
from gateway.signing import top as top_signing

XML_CONTENT_TYPE = "text/xml;charset=UTF-8"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


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


def _required(params: Params, name: str, missing: TopError) -> str:
    """A system parameter counts as sent only with a non-blank value; `missing` when it is not."""
    value = params.get(name)
    if value is None or not value.strip():
        raise missing
    return value


def check_encoding(request: TopRequest) -> None:
    """Rule: parameters are UTF-8 (code 47, Invalid Encoding)."""
    if request.encoding_problem:
        raise TopError(47, "Invalid Encoding", "isv.invalid-encoding", request.encoding_problem)


def check_method_present(params: Params) -> str:
    """Rule: `method` is required (code 21)."""
    return _required(params, "method", TopError(21, "Missing Method"))


def check_method_known(name: str) -> TopKind:
    """Rule: `method` names an API the platform serves (code 22): here, an installed TOP kind."""
    method = methods().get(name)
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
    return _required(params, "app_key", TopError(28, "Missing App Key"))


def check_app_key_known(state: SandboxState, app_key: str) -> str:
    """Rule: `app_key` belongs to a registered application (code 29); returns its secret."""
    secret = state.top_apps.get(app_key)
    if secret is None:
        raise TopError(29, "Invalid App Key")
    return secret


def check_timestamp_present(params: Params) -> str:
    """Rule: `timestamp` is required (code 30)."""
    return _required(params, "timestamp", TopError(30, "Missing Timestamp"))


_TIMESTAMP_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_EPOCH_MS_SHAPE = re.compile(r"[0-9]{13}")


def check_timestamp_fresh(state: SandboxState, timestamp: str) -> None:
    """Rule: `yyyy-MM-dd HH:mm:ss` wall clock in GMT+8 — or epoch milliseconds, which the official
    Python SDK (topsdk) sends and the platform accepts — within ±top_skew_s of the platform (31)."""
    try:
        if _EPOCH_MS_SHAPE.fullmatch(timestamp):
            sent = int(timestamp) / 1000
        elif _TIMESTAMP_SHAPE.fullmatch(timestamp):
            sent = top_signing.parse_top_timestamp(timestamp)
        else:
            raise ValueError(timestamp)
    except ValueError:
        raise TopError(
            31,
            "Invalid Timestamp",
            "isv.invalid-timestamp",
            "expected yyyy-MM-dd HH:mm:ss (GMT+8) or epoch milliseconds",
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
    version = _required(params, "v", TopError(32, "Missing Version"))
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
    return _required(params, "sign", TopError(24, "Missing Signature"))


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


def check_platform(state: SandboxState, request: TopRequest) -> TopKind:
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


# --- the methods served: every installed TOP kind ------------------------------------------------


@functools.cache
def methods() -> dict[str, TopKind]:
    """The APIs the simulated router serves: the installed kinds of the TOP protocol, by method."""
    return {
        installed.kind.api: installed.kind  # type: ignore[misc]  # every TOP kind is a TopKind
        for installed in installed_kinds().values()
        if installed.kind.protocol.name == "top"
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
    fault: faults.Fault, request: TopRequest, method: TopKind, *, as_json: bool, simplify: bool
) -> CannedResponse:
    """An injected vendor fault, written exactly as the platform writes that failure."""
    if isinstance(fault, faults.TopError):
        error = TopError(fault.code, fault.msg, fault.sub_code, fault.sub_msg)
        return render_error(error, request, as_json=as_json)
    if isinstance(fault, faults.BindInternalError) and method.sandbox_internal_error is not None:
        payload = method.sandbox_internal_error(fault.ret_code, fault.message)
        payload["request_id"] = new_request_id()
        return render(method.response_key, payload, as_json=as_json, simplify=simplify)
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
        method.sandbox_check(params)
    except TopError as error:
        return render_error(error, request, as_json=as_json)
    fault = state.faults.take("vendor", "top", method.api)
    if fault is not None:
        return render_fault(fault, request, method, as_json=as_json, simplify=simplify)
    canned = state.take_canned(method.api)
    if canned is not None:
        return canned
    try:
        payload = method.sandbox_answer(state, params)
    except TopError as error:  # a business refusal only the vendor's own records can tell
        return render_error(error, request, as_json=as_json)
    payload["request_id"] = new_request_id()
    return render(method.response_key, payload, as_json=as_json, simplify=simplify)
