"""Vendor answers the kind pages run through each kind's `read_response`.

The bodies follow the vendors' documented envelopes (the same shapes as tests/fixtures/). Three
layers: answers any vendor can give (HTTP errors, unreadable bodies), a protocol's error envelope
(TOP's `error_response` codes, swept over the whole documented range so the table shows every code
the classifier singles out; Tencent's `Error.Code`s), and each kind's own answers (its success and
in-envelope business failures). A kind this module has no answers for still gets the first two.

When kinds carry their documented sample answers themselves (for the sandbox), `kind_answers` reads
them from there instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.providers.base import VendorResponse

if TYPE_CHECKING:
    from tools.gendocs.kinds_ref import KindDoc

NOW = 1_556_000_000.0  # the clock the answers are read at: before every expiry below
TOP_CODES = range(1, 100)  # TOP's platform error codes (isv./isp. sub-codes below)


@dataclass(frozen=True)
class Sample:
    description: str
    response: VendorResponse
    success: bool = False


def answer(body: Any, status: int = 200, content_type: str = "application/json") -> VendorResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return VendorResponse(status, {"Content-Type": content_type}, raw)


def samples_for(kind: KindDoc) -> list[Sample]:
    return kind_answers(kind) + protocol_answers(kind) + transport_answers()


def transport_answers() -> list[Sample]:
    html = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    return [
        Sample("HTTP 500, 502, 503 or 504", answer(b"busy", status=503, content_type="text/plain")),
        Sample("HTTP 4xx (or any other status than 200)", answer(b"", status=403)),
        Sample("HTTP 200 with an empty body", answer(b"")),
        Sample("HTTP 200 with an HTML page", answer(html, content_type="text/html")),
        Sample("HTTP 200 with truncated JSON", answer(b'{"error_response": {"code": ')),
    ]


def protocol_answers(kind: KindDoc) -> list[Sample]:
    if kind.protocol == "top":
        return top_error_answers(kind)
    if kind.protocol == "tencent-iot":
        return tencent_error_answers()
    return []


def top_error_answers(kind: KindDoc) -> list[Sample]:
    """`error_response` for every platform code (grouped when they read alike), then sub-codes."""
    from gateway.errors import GatewayError

    by_outcome: dict[tuple[int, str], list[int]] = {}
    for number in TOP_CODES:
        body = {"error_response": {"code": number, "msg": "error", "request_id": "r1"}}
        try:
            kind.read_response(answer(body), NOW)
        except GatewayError as error:
            by_outcome.setdefault((error.status, error.code), []).append(number)
    found = []
    for (_, problem), numbers in by_outcome.items():
        if problem == "vendor_error":
            continue  # the catch-all row below
        first = numbers[0]
        body = {"error_response": {"code": first, "msg": "error", "request_id": "r1"}}
        found.append(Sample(f"`error_response` code {spans(numbers)}", answer(body)))
    for number, sub_code in (
        (15, "isv.invalid-parameter"),
        (50, "isv.missing-parameter"),
        (15, "isp.top-remote-connection-timeout"),
        (15, "isp.call-limited"),
    ):
        body = {"error_response": {"code": number, "msg": "e", "sub_code": sub_code}}
        found.append(
            Sample(f"`error_response` code {number} with sub_code `{sub_code}`", answer(body))
        )
    other = {"error_response": {"code": 99999, "msg": "unlisted"}}
    found.append(Sample("`error_response` with any other code", answer(other)))
    return found


def spans(numbers: list[int]) -> str:
    """[4, 5, 6, 7, 10] -> '4-7, 10'."""
    parts: list[str] = []
    start = prev = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == prev + 1:
            prev = number
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if number is not None:
            start = prev = number
    return ", ".join(parts)


TENCENT_ERROR_CODES = (
    "InternalError",
    "InvalidParameterValue.ErrorUserNotExists",
    "InvalidParameterValue.InvalidAccessToken",
    "InvalidParameterValue",
    "InvalidParameterValue.InvalidJSON",
    "InvalidParameterValue.NickNameLengthInvalid",
    "ErrorRequiredParamNotFound",
    "InvalidAction",
    "InvalidParameterValue.SignatureInvalid",
    "InvalidParameterValue.AppKeyNotExists",
    "InvalidParameterValue.TimestampExpired",
)


def tencent_error_answers() -> list[Sample]:
    found = [
        Sample(
            f"`Response.Error.Code` `{name}`",
            answer({"Response": {"Error": {"Code": name, "Message": "m"}, "RequestId": "r1"}}),
        )
        for name in TENCENT_ERROR_CODES
    ]
    found.append(
        Sample(
            "official-client envelope with `code` other than 0 and no `Error`",
            answer({"code": -1000, "msg": "failed", "data": {}}),
        )
    )
    found.append(Sample("neither a `Response` nor a `data` object", answer({"unexpected": True})))
    return found


def kind_answers(kind: KindDoc) -> list[Sample]:
    """The kind's own answers: its success shapes and its in-envelope business failures."""
    wrap = _top_wrapper(kind)
    if kind.kind == "top:yunos.aiot.thirdminiapp.auth.get":
        data = {"session_id": "A70E1664E02EC41AFCFE75388B6531BB", "session_expire": "1595920127"}
        return [
            Sample(
                "`result.code` 200",
                wrap({"result": {"code": 200, "msg": "ok", "data": data}}),
                success=True,
            ),
            Sample("`result.code` 4xx (e.g. 403)", wrap({"result": {"code": 403, "msg": "no"}})),
            Sample("`result.code` 5xx", wrap({"result": {"code": 500, "msg": "error"}})),
            Sample("no `result` object", wrap({"request_id": "r1"})),
        ]
    if kind.kind == "top:taobao.ailab.aicloud.top.auth.get":
        model = {
            "isAuthenticated": False,
            "accessToken": "ce0ofoQ41I85YJCDLzuAkgPzjsI0XiwdMF30blmqxHs",
            "isTempUser": True,
            "isNew": False,
            "userId": "83790",
            "deviceIds": [],
        }
        info = {"model": model, "msgCode": "SUCCESS", "success": True}
        refused = {"msgCode": "USER_FORBIDDEN", "msgInfo": "用户被禁用", "success": False}
        return [
            Sample(
                "`is_success` true and `auth_info.success` true",
                wrap({"result": {"is_success": True, "auth_info": json.dumps(info)}}),
                success=True,
            ),
            Sample(
                "`is_success` false",
                wrap({"result": {"is_success": False, "msg_info": "参数不可用"}}),
            ),
            Sample(
                "`auth_info.success` false (e.g. USER_FORBIDDEN)",
                wrap({"result": {"is_success": True, "auth_info": json.dumps(refused)}}),
            ),
            Sample(
                "`auth_info` that is not JSON",
                wrap({"result": {"is_success": True, "auth_info": "{"}}),
            ),
        ]
    if kind.kind == "top:alibaba.ailabs.iot.device.inside.checkbind.invoke":
        return [
            Sample(
                "`result` true, `ret_value` true (bound)",
                wrap({"result": True, "ret_value": True, "ret_code": 0, "message": "success"}),
                success=True,
            ),
            Sample(
                "`result` true, `ret_value` false (not bound yet)",
                wrap({"result": True, "ret_value": False, "ret_code": 0, "message": "success"}),
                success=True,
            ),
            Sample(
                "`result` false with `ret_code` 331001",
                wrap({"result": False, "ret_code": 331001, "message": "系统内部未知错误"}),
            ),
            Sample(
                "`result` false with any other `ret_code`",
                wrap({"result": False, "ret_code": 1001, "message": "failed"}),
            ),
            Sample("no boolean `result`", wrap({"ret_code": 0})),
        ]
    if kind.kind == "tencent-iot:AppGetTokenByWeiXin":
        issued: dict[str, Any] = {
            "ExpireAt": 1556076201,
            "Token": "d2f3a41c0f5b4e0b9d6b0b8a1c4e8514",
        }
        return [
            Sample(
                "documented envelope `Response.Data`",
                answer({"Response": {"Data": issued, "RequestId": "rest-client"}}),
                success=True,
            ),
            Sample(
                "`Response` without a `Data.Token`",
                answer({"Response": {"Data": {}, "RequestId": "r1"}}),
            ),
        ]
    return []


def _top_wrapper(kind: KindDoc) -> Any:
    """Wraps a TOP payload in the kind's `<name>_response` (TOP kinds only)."""
    key = getattr(kind.operation, "response_key", "response")

    def wrap(payload: dict[str, Any]) -> VendorResponse:
        return answer({key: {**payload, "request_id": payload.get("request_id", "3ub8h0q7ybhh")}})

    return wrap
