"""The records every protocol module speaks in: inputs, the vendor request, the vendor answer, the credential."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict

from gateway.errors import VendorBadResponse
from gateway.settings import ProviderSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    # Vendors reject (or worse, mis-sign) control characters and whitespace-only values; refuse them
    # here so that nothing invalid ever reaches a vendor.
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


# Written after a field's own length limit (which matches the vendor's), e.g.
# `Annotated[str, Field(max_length=32), Printable]`: printable and not blank.
Printable = AfterValidator(_printable)


class Inputs(BaseModel):
    """Base of every kind's input model: strict types, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class SendContext:
    """What varies per send: the clock reading, a nonce and a request id (passed in, so tests pin them)."""

    now: float
    nonce: int
    request_id: str


@dataclass(frozen=True, slots=True)
class VendorRequest:
    """The exact HTTP request for a vendor; `string_to_sign` is kept for `gateway sign` and debug logs."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    string_to_sign: str
    api: str


@dataclass(frozen=True, slots=True)
class VendorResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Credential:
    """A vendor's successful answer, normalized. `expires_at` is absolute Unix seconds, or None."""

    token: str | None
    expires_at: float | None
    data: dict[str, Any] = field(default_factory=dict)
    upstream_request_id: str | None = None
    cacheable: bool = True


class Operation(Protocol):
    """One vendor call: how to build its request and read its answer."""

    @property
    def kind(self) -> str: ...

    @property
    def input_model(self) -> type[Inputs]: ...

    @property
    def identity_fields(self) -> tuple[str, ...]: ...

    def build_request(
        self, inputs: Inputs, settings: ProviderSettings, secret: str, ctx: SendContext
    ) -> VendorRequest: ...

    def read_response(self, response: VendorResponse, now: float) -> Credential: ...


def require(mapping: Mapping[str, Any], name: str, typ: type | tuple[type, ...], where: str) -> Any:
    """`mapping[name]` when present and of type `typ`, else a 502 naming what was missing."""
    value = mapping.get(name)
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise VendorBadResponse(f"the vendor's answer has no usable {where}{name}")
    return value


def absolute_expiry(raw: Any, now: float) -> float:
    """Read an expiry the vendor may write as absolute seconds, milliseconds or relative seconds.

    Rule (VENDORS.md §3): milliseconds if > 10^12, relative seconds if < 10^9, else absolute seconds;
    numbers may arrive as strings.
    """
    try:
        value = (
            float(raw) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
        )
    except ValueError:
        value = None
    if value is None or value != value or value <= 0:  # value != value: NaN
        raise VendorBadResponse("the vendor's answer has no usable expiry")
    if value > 1e12:
        return value / 1000.0
    if value < 1e9:
        return now + value
    return value
