"""TOP signing against the vendor's published vector, and each rule asserted on its own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from gateway.signing import top

# The TOP documentation's example (VENDORS.md §1): the parameters without sign_method, and the secret.
VECTOR_PARAMS = {
    "app_key": "12345678",
    "fields": "num_iid,title,nick,price,num",
    "format": "json",
    "method": "taobao.item.seller.get",
    "num_iid": "11223344",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "v": "2.0",
}
VECTOR_SECRET = "helloworld"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5", "66987CB115214E59E6EC978214934FB8"),
        ("hmac", "D56D7858309C31B6251083A874D48273"),
        ("hmac-sha256", "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"),
    ],
)
def test_published_vector_for_each_sign_method(method: top.SignMethod, expected: str) -> None:
    """Each sign method reproduces the signature TOP and its official SDK publish for the example."""
    params = {**VECTOR_PARAMS, "sign_method": method}
    assert top.sign(params, VECTOR_SECRET, method) == expected


def test_published_string_to_sign() -> None:
    """The string to sign is the documented concatenation, which md5 wraps in the secret."""
    params = {**VECTOR_PARAMS, "sign_method": "md5"}
    expected = (
        "helloworldapp_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethod"
        "taobao.item.seller.getnum_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00"
        "v2.0helloworld"
    )
    assert VECTOR_SECRET + top.string_to_sign(params) + VECTOR_SECRET == expected


def test_sign_parameter_is_never_part_of_the_string() -> None:
    """A `sign` already present is left out of the string to sign."""
    assert top.string_to_sign({"a": "1", "sign": "XYZ"}) == "a1"


def test_names_sort_by_byte_order_not_case_insensitively() -> None:
    """Upper-case names sort before lower-case ones and `_` sorts between them, as bytes do."""
    assert top.string_to_sign({"b": "2", "B": "1", "a_b": "3", "aB": "4"}) == "B1aB4a_b3b2"


def test_values_are_raw_utf8_not_url_encoded() -> None:
    """Values enter the string as they are: spaces, `&`, `=` and Chinese text untouched."""
    assert top.string_to_sign({"q": "a b&c=d 天猫"}) == "qa b&c=d 天猫"


def test_digest_is_upper_case_hex_of_the_right_length() -> None:
    """md5 and hmac give 32 upper-case hex characters, hmac-sha256 gives 64."""
    for method, length in (("md5", 32), ("hmac", 32), ("hmac-sha256", 64)):
        digest = top.digest_hex_upper("x", "s", method)  # type: ignore[arg-type]
        assert len(digest) == length
        assert digest == digest.upper()
        int(digest, 16)


def test_empty_and_blank_values_are_dropped() -> None:
    """Empty or whitespace-only values are neither sent nor signed."""
    assert top.drop_empty_values({"a": "1", "b": "", "c": "  ", "d": "\t"}) == {"a": "1"}


@pytest.fixture
def host_zone_new_york() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("host_zone_new_york")
def test_timestamp_is_gmt_plus_8_whatever_the_host_zone() -> None:
    """The timestamp is the Beijing wall clock even on a host set to another zone."""
    assert top.top_timestamp(1451620800) == "2016-01-01 12:00:00"  # 04:00 UTC
    assert top.top_timestamp(0) == "1970-01-01 08:00:00"


def test_timestamp_round_trips() -> None:
    """parse_top_timestamp reads back what top_timestamp wrote."""
    assert top.parse_top_timestamp(top.top_timestamp(1700000000)) == 1700000000
