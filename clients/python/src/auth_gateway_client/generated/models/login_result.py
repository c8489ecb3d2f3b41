from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.kind import Kind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.login_result_data import LoginResultData


T = TypeVar("T", bound="LoginResult")


@_attrs_define
class LoginResult:
    """The normalized credential, from the cache or fresh from the vendor.

    Attributes:
        cached (bool): served from the cache
        data (LoginResultData): the vendor's answer, normalized
        expires_at (int | None): Unix seconds (null: no expiry)
        kind (Kind): the installed kinds (`python -m gateway kinds`)
        provider (str):
        token (None | str): the session id or token (null: none)
        upstream_request_id (None | str):
        stale (bool | Unset): present (true) only when the vendor failed and an entry past its refresh time was served
            instead
    """

    cached: bool
    data: LoginResultData
    expires_at: int | None
    kind: Kind
    provider: str
    token: None | str
    upstream_request_id: None | str
    stale: bool | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        cached = self.cached

        data = self.data.to_dict()

        expires_at: int | None
        expires_at = self.expires_at

        kind = self.kind.value

        provider = self.provider

        token: None | str
        token = self.token

        upstream_request_id: None | str
        upstream_request_id = self.upstream_request_id

        stale = self.stale

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "cached": cached,
                "data": data,
                "expires_at": expires_at,
                "kind": kind,
                "provider": provider,
                "token": token,
                "upstream_request_id": upstream_request_id,
            }
        )
        if stale is not UNSET:
            field_dict["stale"] = stale

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.login_result_data import LoginResultData  # noqa: PLC0415

        d = dict(src_dict)
        cached = d.pop("cached")

        data = LoginResultData.from_dict(d.pop("data"))

        def _parse_expires_at(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        expires_at = _parse_expires_at(d.pop("expires_at"))

        kind = Kind(d.pop("kind"))

        provider = d.pop("provider")

        def _parse_token(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        token = _parse_token(d.pop("token"))

        def _parse_upstream_request_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        upstream_request_id = _parse_upstream_request_id(d.pop("upstream_request_id"))

        stale = d.pop("stale", UNSET)

        login_result = cls(
            cached=cached,
            data=data,
            expires_at=expires_at,
            kind=kind,
            provider=provider,
            token=token,
            upstream_request_id=upstream_request_id,
            stale=stale,
        )

        return login_result
