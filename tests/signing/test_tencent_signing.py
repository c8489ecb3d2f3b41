"""Tencent IoT Explorer signing against the published example, and each rule on its own."""

from __future__ import annotations

import base64

from gateway.signing import tencent_iot

PUBLISHED_STRING = (
    "Action=ServiceDescribeDeviceData&AppKey=ServiceAppKey&DeviceName=Device001&Nonce=71087795"
    "&ProductId=ProductA&RequestId=476c990a-f5b7-1575-987c-4ef70e474932&Timestamp=1546315200"
)


def test_published_example_signature() -> None:
    """The documented string and AppSecret give the documented Base64 HMAC-SHA1."""
    assert (
        tencent_iot.hmac_sha1_base64(PUBLISHED_STRING, "ServiceAppSecret")
        == "P206d+JzP37FLKBDkD689wqnl4k="
    )


def test_published_example_from_fields() -> None:
    """The same request as fields (numbers as integers) builds the same string and signature."""
    fields: dict[str, str | int] = {
        "Timestamp": 1546315200,
        "RequestId": "476c990a-f5b7-1575-987c-4ef70e474932",
        "ProductId": "ProductA",
        "Nonce": 71087795,
        "DeviceName": "Device001",
        "AppKey": "ServiceAppKey",
        "Action": "ServiceDescribeDeviceData",
    }
    assert tencent_iot.string_to_sign(fields) == PUBLISHED_STRING
    assert tencent_iot.sign(fields, "ServiceAppSecret") == "P206d+JzP37FLKBDkD689wqnl4k="


def test_signature_and_empty_values_are_left_out() -> None:
    """`Signature` and empty-string fields do not enter the string to sign."""
    assert tencent_iot.string_to_sign({"B": "2", "A": "", "Signature": "x"}) == "B=2"


def test_values_stay_raw() -> None:
    """`&` and `=` inside values are not encoded."""
    assert (
        tencent_iot.string_to_sign({"Avatar": "http://a/b?x=1&y=2"}) == "Avatar=http://a/b?x=1&y=2"
    )


def test_signature_is_padded_standard_base64_of_20_bytes() -> None:
    """The signature decodes as standard Base64 with padding to a 20-byte SHA-1 MAC."""
    signature = tencent_iot.sign({"A": "1"}, "k")
    assert signature.endswith("=")
    assert len(base64.b64decode(signature, validate=True)) == 20
