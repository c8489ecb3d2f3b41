from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="MiniAppAuthInputs")


@_attrs_define
class MiniAppAuthInputs:
    """
    Attributes:
        mini_app_id (str):
        device_id (None | str | Unset):
    """

    mini_app_id: str
    device_id: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        mini_app_id = self.mini_app_id

        device_id: None | str | Unset
        if isinstance(self.device_id, Unset):
            device_id = UNSET
        else:
            device_id = self.device_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "mini_app_id": mini_app_id,
            }
        )
        if device_id is not UNSET:
            field_dict["device_id"] = device_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        mini_app_id = d.pop("mini_app_id")

        def _parse_device_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        device_id = _parse_device_id(d.pop("device_id", UNSET))

        mini_app_auth_inputs = cls(
            mini_app_id=mini_app_id,
            device_id=device_id,
        )

        return mini_app_auth_inputs
