from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.kind import Kind

if TYPE_CHECKING:
    from ..models.provider_list_providers_item_input_schema import (
        ProviderListProvidersItemInputSchema,
    )


T = TypeVar("T", bound="ProviderListProvidersItem")


@_attrs_define
class ProviderListProvidersItem:
    """
    Attributes:
        input_schema (ProviderListProvidersItemInputSchema): the JSON Schema of the request body
        kind (Kind): the installed kinds (`python -m gateway kinds`)
        provider (str):
    """

    input_schema: ProviderListProvidersItemInputSchema
    kind: Kind
    provider: str

    def to_dict(self) -> dict[str, Any]:
        input_schema = self.input_schema.to_dict()

        kind = self.kind.value

        provider = self.provider

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "input_schema": input_schema,
                "kind": kind,
                "provider": provider,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.provider_list_providers_item_input_schema import (
            ProviderListProvidersItemInputSchema,  # noqa: PLC0415
        )

        d = dict(src_dict)
        input_schema = ProviderListProvidersItemInputSchema.from_dict(d.pop("input_schema"))

        kind = Kind(d.pop("kind"))

        provider = d.pop("provider")

        provider_list_providers_item = cls(
            input_schema=input_schema,
            kind=kind,
            provider=provider,
        )

        return provider_list_providers_item
