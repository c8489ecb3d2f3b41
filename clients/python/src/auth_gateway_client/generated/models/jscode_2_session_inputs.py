from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Jscode2SessionInputs")


@_attrs_define
class Jscode2SessionInputs:
    """
    Attributes:
        js_code (str):
    """

    js_code: str

    def to_dict(self) -> dict[str, Any]:
        js_code = self.js_code

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "js_code": js_code,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        js_code = d.pop("js_code")

        jscode_2_session_inputs = cls(
            js_code=js_code,
        )

        return jscode_2_session_inputs
