"""Vendor answers the kind pages run through each kind's `read_response`.

The bodies follow the vendors' documented envelopes (the same shapes as tests/fixtures/). Three
layers: answers any vendor can give (HTTP errors, unreadable bodies), a protocol's error envelope
(TOP's `error_response` codes, swept over the whole documented range so the table shows every code
the classifier singles out; Tencent's `Error.Code`s), and each kind's own answers (its success and
in-envelope business failures). A kind this module has no answers for still gets the first two.

The kind's own answers come from the kind object (`Kind.samples`), the same data the sandbox and the
tests use.
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
    """The kind's own documented answers: its success shapes and its in-envelope business failures."""
    return [Sample(s.description, s.response, s.success) for s in kind.samples]
