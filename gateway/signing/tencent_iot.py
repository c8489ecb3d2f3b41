"""Tencent IoT Explorer application API (`exploreropen/appapi`) request signing.

Each function is one step of the vendor's published algorithm (VENDORS.md §2 "Signature").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

Value = str | int


def string_to_sign(fields: Mapping[str, Value]) -> str:
    """Rule: all fields but `Signature` and empty strings, names ascending ASCII, `Name=Value` joined by `&`.

    Values stay raw: no URL encoding, `&` and `=` inside values are kept, numbers in decimal.
    """
    names = sorted(
        (name for name, value in fields.items() if name != "Signature" and value != ""),
        key=lambda n: n.encode("utf-8"),
    )
    return "&".join(f"{name}={_decimal_or_text(fields[name])}" for name in names)


def _decimal_or_text(value: Value) -> str:
    if isinstance(value, bool):  # bool is an int subclass; the protocol has no booleans to sign
        raise TypeError("booleans have no defined signing form")
    return str(value)


def hmac_sha1_base64(text: str, secret: str) -> str:
    """Rule: Base64(HMAC-SHA1(key=AppSecret, msg=text)), UTF-8, standard alphabet with padding."""
    mac = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def sign(fields: Mapping[str, Value], secret: str) -> str:
    """The `Signature` value for these request fields."""
    return hmac_sha1_base64(string_to_sign(fields), secret)
