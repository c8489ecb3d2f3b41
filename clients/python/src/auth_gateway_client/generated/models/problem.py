from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.problem_code import ProblemCode
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.field_error import FieldError
    from ..models.upstream_detail import UpstreamDetail


T = TypeVar("T", bound="Problem")


@_attrs_define
class Problem:
    """RFC 9457 problem document: the only error shape the gateway answers with.

    Attributes:
        code (ProblemCode): stable snake_case problem code (docs: the error catalogue)
        detail (str): what went wrong (secrets redacted)
        provider (None | str): the provider, when the path named one
        request_id (None | str): this request's X-Request-ID
        retryable (bool): whether the same call may succeed
        status (int): the HTTP status, repeated
        title (str):
        type_ (str): `urn:auth-gateway:problem:<code>`
        upstream (None | UpstreamDetail): what the vendor said, when it said something
        errors (list[FieldError] | Unset): `invalid_input`: every field at fault
        instance (str | Unset): this request's trace span, when traced
    """

    code: ProblemCode
    detail: str
    provider: None | str
    request_id: None | str
    retryable: bool
    status: int
    title: str
    type_: str
    upstream: None | UpstreamDetail
    errors: list[FieldError] | Unset = UNSET
    instance: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.upstream_detail import UpstreamDetail  # noqa: PLC0415

        code = self.code.value

        detail = self.detail

        provider: None | str
        provider = self.provider

        request_id: None | str
        request_id = self.request_id

        retryable = self.retryable

        status = self.status

        title = self.title

        type_ = self.type_

        upstream: dict[str, Any] | None
        if isinstance(self.upstream, UpstreamDetail):
            upstream = self.upstream.to_dict()
        else:
            upstream = self.upstream

        errors: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.errors, Unset):
            errors = []
            for errors_item_data in self.errors:
                errors_item = errors_item_data.to_dict()
                errors.append(errors_item)

        instance = self.instance

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "code": code,
                "detail": detail,
                "provider": provider,
                "request_id": request_id,
                "retryable": retryable,
                "status": status,
                "title": title,
                "type": type_,
                "upstream": upstream,
            }
        )
        if errors is not UNSET:
            field_dict["errors"] = errors
        if instance is not UNSET:
            field_dict["instance"] = instance

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.field_error import FieldError  # noqa: PLC0415
        from ..models.upstream_detail import UpstreamDetail  # noqa: PLC0415

        d = dict(src_dict)
        code = ProblemCode(d.pop("code"))

        detail = d.pop("detail")

        def _parse_provider(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        provider = _parse_provider(d.pop("provider"))

        def _parse_request_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        request_id = _parse_request_id(d.pop("request_id"))

        retryable = d.pop("retryable")

        status = d.pop("status")

        title = d.pop("title")

        type_ = d.pop("type")

        def _parse_upstream(data: object) -> None | UpstreamDetail:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                upstream_type_0 = UpstreamDetail.from_dict(data)

                return upstream_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UpstreamDetail, data)

        upstream = _parse_upstream(d.pop("upstream"))

        _errors = d.pop("errors", UNSET)
        errors: list[FieldError] | Unset = UNSET
        if _errors is not UNSET:
            errors = []
            for errors_item_data in _errors:
                errors_item = FieldError.from_dict(errors_item_data)

                errors.append(errors_item)

        instance = d.pop("instance", UNSET)

        problem = cls(
            code=code,
            detail=detail,
            provider=provider,
            request_id=request_id,
            retryable=retryable,
            status=status,
            title=title,
            type_=type_,
            upstream=upstream,
            errors=errors,
            instance=instance,
        )

        return problem
