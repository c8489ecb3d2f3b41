from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.bind_check_inputs_params_type_0 import BindCheckInputsParamsType0


T = TypeVar("T", bound="BindCheckInputs")


@_attrs_define
class BindCheckInputs:
    """
    Attributes:
        open_id (str):
        product_key (str):
        user_type (str):
        device_name (None | str | Unset):
        iot_id (None | str | Unset):
        params (BindCheckInputsParamsType0 | None | Unset):
        server_event_request_id (None | str | Unset):
        trace_id (None | str | Unset):
        wait_s (float | None | Unset):
    """

    open_id: str
    product_key: str
    user_type: str
    device_name: None | str | Unset = UNSET
    iot_id: None | str | Unset = UNSET
    params: BindCheckInputsParamsType0 | None | Unset = UNSET
    server_event_request_id: None | str | Unset = UNSET
    trace_id: None | str | Unset = UNSET
    wait_s: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.bind_check_inputs_params_type_0 import BindCheckInputsParamsType0  # noqa: PLC0415

        open_id = self.open_id

        product_key = self.product_key

        user_type = self.user_type

        device_name: None | str | Unset
        if isinstance(self.device_name, Unset):
            device_name = UNSET
        else:
            device_name = self.device_name

        iot_id: None | str | Unset
        if isinstance(self.iot_id, Unset):
            iot_id = UNSET
        else:
            iot_id = self.iot_id

        params: dict[str, Any] | None | Unset
        if isinstance(self.params, Unset):
            params = UNSET
        elif isinstance(self.params, BindCheckInputsParamsType0):
            params = self.params.to_dict()
        else:
            params = self.params

        server_event_request_id: None | str | Unset
        if isinstance(self.server_event_request_id, Unset):
            server_event_request_id = UNSET
        else:
            server_event_request_id = self.server_event_request_id

        trace_id: None | str | Unset
        if isinstance(self.trace_id, Unset):
            trace_id = UNSET
        else:
            trace_id = self.trace_id

        wait_s: float | None | Unset
        if isinstance(self.wait_s, Unset):
            wait_s = UNSET
        else:
            wait_s = self.wait_s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "open_id": open_id,
                "product_key": product_key,
                "user_type": user_type,
            }
        )
        if device_name is not UNSET:
            field_dict["device_name"] = device_name
        if iot_id is not UNSET:
            field_dict["iot_id"] = iot_id
        if params is not UNSET:
            field_dict["params"] = params
        if server_event_request_id is not UNSET:
            field_dict["server_event_request_id"] = server_event_request_id
        if trace_id is not UNSET:
            field_dict["trace_id"] = trace_id
        if wait_s is not UNSET:
            field_dict["wait_s"] = wait_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.bind_check_inputs_params_type_0 import BindCheckInputsParamsType0  # noqa: PLC0415

        d = dict(src_dict)
        open_id = d.pop("open_id")

        product_key = d.pop("product_key")

        user_type = d.pop("user_type")

        def _parse_device_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        device_name = _parse_device_name(d.pop("device_name", UNSET))

        def _parse_iot_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        iot_id = _parse_iot_id(d.pop("iot_id", UNSET))

        def _parse_params(data: object) -> BindCheckInputsParamsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                params_type_0 = BindCheckInputsParamsType0.from_dict(data)

                return params_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(BindCheckInputsParamsType0 | None | Unset, data)

        params = _parse_params(d.pop("params", UNSET))

        def _parse_server_event_request_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        server_event_request_id = _parse_server_event_request_id(
            d.pop("server_event_request_id", UNSET)
        )

        def _parse_trace_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        trace_id = _parse_trace_id(d.pop("trace_id", UNSET))

        def _parse_wait_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        wait_s = _parse_wait_s(d.pop("wait_s", UNSET))

        bind_check_inputs = cls(
            open_id=open_id,
            product_key=product_key,
            user_type=user_type,
            device_name=device_name,
            iot_id=iot_id,
            params=params,
            server_event_request_id=server_event_request_id,
            trace_id=trace_id,
            wait_s=wait_s,
        )

        return bind_check_inputs
