from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="AiCloudLoginInputs")


@_attrs_define
class AiCloudLoginInputs:
    """
    Attributes:
        app_type (str):
        schema (str):
        user_id (str):
        utd_id (str):
    """

    app_type: str
    schema: str
    user_id: str
    utd_id: str

    def to_dict(self) -> dict[str, Any]:
        app_type = self.app_type

        schema = self.schema

        user_id = self.user_id

        utd_id = self.utd_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "app_type": app_type,
                "schema": schema,
                "user_id": user_id,
                "utd_id": utd_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        app_type = d.pop("app_type")

        schema = d.pop("schema")

        user_id = d.pop("user_id")

        utd_id = d.pop("utd_id")

        ai_cloud_login_inputs = cls(
            app_type=app_type,
            schema=schema,
            user_id=user_id,
            utd_id=utd_id,
        )

        return ai_cloud_login_inputs
