from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="WeChatLoginInputs")


@_attrs_define
class WeChatLoginInputs:
    """
    Attributes:
        avatar (str):
        nick_name (str):
        wx_open_id (str):
    """

    avatar: str
    nick_name: str
    wx_open_id: str

    def to_dict(self) -> dict[str, Any]:
        avatar = self.avatar

        nick_name = self.nick_name

        wx_open_id = self.wx_open_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "avatar": avatar,
                "nick_name": nick_name,
                "wx_open_id": wx_open_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        avatar = d.pop("avatar")

        nick_name = d.pop("nick_name")

        wx_open_id = d.pop("wx_open_id")

        we_chat_login_inputs = cls(
            avatar=avatar,
            nick_name=nick_name,
            wx_open_id=wx_open_id,
        )

        return we_chat_login_inputs
