from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="UpstreamDetail")


@_attrs_define
class UpstreamDetail:
    """
    Attributes:
        code (None | str):
        message (None | str): the vendor's words (secrets redacted)
        sub_code (None | str):
    """

    code: None | str
    message: None | str
    sub_code: None | str

    def to_dict(self) -> dict[str, Any]:
        code: None | str
        code = self.code

        message: None | str
        message = self.message

        sub_code: None | str
        sub_code = self.sub_code

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "code": code,
                "message": message,
                "sub_code": sub_code,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_code(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        code = _parse_code(d.pop("code"))

        def _parse_message(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        message = _parse_message(d.pop("message"))

        def _parse_sub_code(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        sub_code = _parse_sub_code(d.pop("sub_code"))

        upstream_detail = cls(
            code=code,
            message=message,
            sub_code=sub_code,
        )

        return upstream_detail
