"""Taobao Open Platform (TOP) request signing.

Each function is one step of the vendor's published algorithm (VENDORS.md §1 "Signature"); nothing here
reads the clock or the environment, so the published test vectors reproduce exactly.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Literal

SignMethod = Literal["md5", "hmac", "hmac-sha256"]
SIGN_METHODS: tuple[SignMethod, ...] = ("md5", "hmac", "hmac-sha256")

# Asia/Shanghai has kept UTC+8 without daylight saving since 1991; a fixed offset avoids tzdata.
GMT_PLUS_8 = timezone(timedelta(hours=8), "GMT+8")


def top_timestamp(unix_seconds: float) -> str:
    """Rule: `timestamp` is the wall clock in GMT+8 as `yyyy-MM-dd HH:mm:ss`, whatever the host's zone."""
    return datetime.fromtimestamp(int(unix_seconds), tz=GMT_PLUS_8).strftime("%Y-%m-%d %H:%M:%S")


def parse_top_timestamp(text: str) -> float:
    """Inverse of `top_timestamp`; raises ValueError on any other format."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=GMT_PLUS_8).timestamp()


def drop_empty_values(params: Mapping[str, str]) -> dict[str, str]:
    """Rule: never send (nor sign) a parameter whose value is empty or whitespace-only."""
    return {name: value for name, value in params.items() if value.strip()}


def string_to_sign(params: Mapping[str, str]) -> str:
    """Rule: every sent parameter but `sign`, names in byte order, joined as `name1value1name2value2…`."""
    names = sorted((name for name in params if name != "sign"), key=lambda n: n.encode("utf-8"))
    return "".join(name + params[name] for name in names)


def digest_hex_upper(text: str, secret: str, method: SignMethod) -> str:
    """Rule: md5 = MD5(secret+text+secret); hmac = HMAC-MD5; hmac-sha256 = HMAC-SHA256; upper-case hex."""
    key = secret.encode("utf-8")
    data = text.encode("utf-8")
    if method == "md5":
        return hashlib.md5(key + data + key, usedforsecurity=False).hexdigest().upper()
    if method == "hmac":
        return hmac.new(key, data, hashlib.md5).hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(key, data, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown TOP sign_method {method!r}")


def sign(params: Mapping[str, str], secret: str, method: SignMethod) -> str:
    """The `sign` value for these parameters (which must already include `sign_method`)."""
    return digest_hex_upper(string_to_sign(params), secret, method)
