"""The blank rule and identity normalisation of caller strings, and the input models that apply them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.providers.base import BLANK_MESSAGE, Inputs, Printable, printable_pattern
from gateway.providers.tencent_wechat_login import WeChatLoginInputs
from gateway.providers.text import is_blank, normalise_identity, renders_blank
from gateway.providers.top_aicloud_login import AiCloudLoginInputs
from gateway.providers.top_bind_check import BindCheckInputs
from gateway.providers.top_miniapp_auth import MiniAppAuthInputs

INVISIBLE = [
    "\u200b",
    "\ufeff",
    "\u2060",
    "\u3164",
    "\u115f",
    "\u1160",
    "\uffa0",
    "\u2800",
    "\u00ad",
]
WECHAT = {"wx_open_id": "u1", "nick_name": "n", "avatar": "a"}


@pytest.mark.parametrize("value", ["", " ", "\u3000\t", *INVISIBLE, "\u200b \ufeff\u3164\ufe0f"])
def test_blank_values(value: str) -> None:
    """Empty, whitespace, format characters and blank-rendering fillers are all blank."""
    assert is_blank(value)


@pytest.mark.parametrize("value", ["a", "中", "\u200bA", "ｕ１", "\u3164x", "😀\u200d😀"])
def test_values_with_something_visible_are_not_blank(value: str) -> None:
    """One visible character, even among invisible ones, is enough."""
    assert not is_blank(value)


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("ｕ１", "u1"),  # full-width
        ("u1\u200b", "u1"),  # a trailing zero-width space
        ("\ufeffu1", "u1"),  # a byte-order mark pasted in front
        ("u\u20601", "u1"),  # a word joiner inside
        (" u1\u3000", "u1"),  # surrounding (ideographic) spaces
        ("ｕ\u3000１", "u 1"),  # an inner ideographic space becomes a plain one, and stays
        ("e\u200b\u0301", "\u00e9"),  # what the invisible character separated composes
        ("Ⅻ", "XII"),  # compatibility forms
    ],
)
def test_identity_normalisation(value: str, normalised: str) -> None:
    """Identity values lose invisible characters and surrounding spaces and are NFKC-normalised."""
    assert normalise_identity(value) == normalised


@given(st.text())
def test_identity_normalisation_is_idempotent(value: str) -> None:
    """Normalising twice changes nothing: the normalised value is the one spelling."""
    once = normalise_identity(value)
    assert normalise_identity(once) == once


@given(st.text(min_size=1, max_size=20))
def test_schema_pattern_is_never_stricter_than_the_validator(value: str) -> None:
    """Every value `Printable` accepts matches the published pattern (hypothesis reads it the same way)."""
    try:
        Printable.func(value)  # type: ignore[call-arg]  # one of pydantic's validator signatures
    except ValueError:
        return
    assert re.fullmatch(printable_pattern(), value)


def test_schema_pattern_refuses_every_blank_bmp_value() -> None:
    """A value made of any one blank-rendering BMP character (or several) fails the published pattern."""
    blank = [chr(c) for c in range(0x20, 0x10000) if renders_blank(chr(c))]
    assert "\u200b" in blank and "\u3164" in blank and "\u2800" in blank
    pattern = re.compile(printable_pattern())
    assert not [c for c in blank if pattern.fullmatch(c)]
    assert not pattern.fullmatch("".join(blank[:50]))
    assert pattern.fullmatch("\u200bu1")


@pytest.mark.parametrize("value", INVISIBLE)
def test_every_string_field_refuses_invisible_only_values(value: str) -> None:
    """An identity field and a free-text field alike refuse a value of invisible characters only."""
    for field in ("wx_open_id", "nick_name"):
        with pytest.raises(ValidationError) as caught:
            WeChatLoginInputs.model_validate({**WECHAT, field: value})
        [error] = caught.value.errors()
        assert (error["loc"], error["msg"]) == ((field,), f"Value error, {BLANK_MESSAGE}")


def test_identity_fields_are_normalised_and_others_kept() -> None:
    """wx_open_id is normalised; the full-width nickname keeps the caller's text."""
    inputs = WeChatLoginInputs.model_validate(
        {"wx_open_id": "ｕ１\u200b", "nick_name": "ｎｉｃｋ名字", "avatar": "a"}
    )
    assert (inputs.wx_open_id, inputs.nick_name) == ("u1", "ｎｉｃｋ名字")


def test_a_normalised_identity_is_held_to_the_field_limit() -> None:
    """A value within the limit that NFKC lengthens past it (ligatures) is refused, naming the field."""
    with pytest.raises(ValidationError) as caught:
        AiCloudLoginInputs.model_validate(
            {"user_id": "u", "utd_id": "ﬀ" * 20, "schema": "s", "app_type": "IOS"}
        )
    [error] = caught.value.errors()
    assert (error["loc"], error["type"]) == (("utd_id",), "string_too_long")


def test_the_python_name_is_not_accepted_for_a_wire_name() -> None:
    """`schema_` (the Python name) is an unknown field; only `schema` is read."""
    with pytest.raises(ValidationError) as caught:
        AiCloudLoginInputs.model_validate(
            {"user_id": "u", "utd_id": "x", "schema_": "s", "app_type": "IOS"}
        )
    found = {(e["loc"], e["type"]) for e in caught.value.errors()}
    assert found == {(("schema",), "missing"), (("schema_",), "extra_forbidden")}


def test_each_input_model_declares_its_identity_fields() -> None:
    """The identity fields are declared by each kind's input model, once."""
    assert MiniAppAuthInputs.identity_fields == ("mini_app_id", "device_id")
    assert AiCloudLoginInputs.identity_fields == ("user_id", "utd_id", "schema_", "app_type")
    assert BindCheckInputs.identity_fields == (
        "open_id",
        "product_key",
        "user_type",
        "device_name",
        "iot_id",
    )
    assert WeChatLoginInputs.identity_fields == ("wx_open_id",)


def test_an_input_model_without_or_with_wrong_identity_fields_is_refused() -> None:
    """A kind's model must declare its identity fields, and name real fields, when it is defined."""
    with pytest.raises(TypeError, match="must declare identity_fields"):

        class Undeclared(Inputs):
            user: str

    with pytest.raises(TypeError, match="names no field: usr"):

        class Misspelt(Inputs):
            identity_fields = ("usr",)
            user: str

    class Shared(Inputs):
        identity_fields = ()
        scope: str

    assert Shared.model_validate({"scope": "x"}).identity_fields == ()


def test_model_json_schema_keeps_wire_names() -> None:
    """The published schema names `schema`, not `schema_`, and every string carries the pattern."""
    schema = AiCloudLoginInputs.model_json_schema(by_alias=True)
    assert "schema" in schema["properties"] and "schema_" not in schema["properties"]
    assert {p["pattern"] for p in schema["properties"].values()} == {printable_pattern()}
