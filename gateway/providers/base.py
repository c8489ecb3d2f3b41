"""The records every protocol module speaks in: inputs, the vendor request, the vendor answer, the credential."""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    model_validator,
)

from gateway.errors import VendorBadResponse
from gateway.providers.text import blank_class_for_schema, is_blank, normalise_identity
from gateway.redaction import MAX_VENDOR_TEXT, redact_text
from gateway.settings import ProviderSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 controls


def _printable(value: str) -> str:
    # Vendors reject (or worse, mis-sign) control characters and blank values; refuse them here so
    # that nothing invalid ever reaches a vendor. Blank includes invisible characters (gateway/providers/text.py).
    if is_blank(value):
        raise ValueError(BLANK_MESSAGE)
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


BLANK_MESSAGE = "must not be blank (empty, whitespace or invisible characters only)"
# Written after a field's own length limit (which matches the vendor's), e.g.
# `Annotated[str, Field(max_length=32), Printable]`: printable and not blank.
Printable = AfterValidator(_printable)


@functools.cache
def printable_pattern() -> str:
    """What `Printable` enforces, for the JSON Schema (OpenAPI) only: at least one character that is
    neither a control nor blank-rendering, and no control characters. The validator is what runs; the
    pattern leaves out the blank-rendering characters above U+FFFF (see `blank_class_for_schema`), so it
    is never stricter than the validator."""
    controls = r"\x00-\x1f\x7f-\x9f"
    return f"^[^{controls}]*[^{controls}{blank_class_for_schema()}][^{controls}]*$"


def _declare_printable(schema: dict[str, Any]) -> None:
    """Every string input is Printable; say so in the published schema (pattern, minLength)."""
    for prop in schema.get("properties", {}).values():
        for variant in [prop, *prop.get("anyOf", [])]:
            if variant.get("type") == "string":
                variant.setdefault("minLength", 1)
                variant["pattern"] = printable_pattern()


class Inputs(BaseModel):
    """Base of every kind's input model: strict types, unknown fields rejected, wire names only.

    A subclass declares `identity_fields`: the fields (Python names) that name whose credential this
    is — the cache key's material. Their values are normalised (gateway/providers/text.py) before
    anything else sees them, and the field's own rules (length, printable) hold for the normalised value
    as well as for what the caller sent."""

    # No populate_by_name: a client that sends the Python name (`schema_`) instead of the wire name
    # (`schema`) gets a 400 naming it, instead of passing unnoticed.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra=_declare_printable,
    )

    identity_fields: ClassVar[tuple[str, ...]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return  # a protocol's base of its inputs (e.g. TopInputs), not a kind's own model
        # Checked when the kind is defined, not on the first request: a missing declaration would
        # make every caller share one credential, a misspelt one would fail every login.
        if not hasattr(cls, "identity_fields"):
            raise TypeError(
                f"{cls.__name__} must declare identity_fields (() if every caller shares one credential)"
            )
        unknown = [name for name in cls.identity_fields if name not in cls.model_fields]
        if unknown:
            raise TypeError(f"{cls.__name__}.identity_fields names no field: {', '.join(unknown)}")

    @model_validator(mode="wrap")
    @classmethod
    def _normalise_identity(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        inputs = handler(data)  # what the caller sent, under every rule
        if not isinstance(data, Mapping):
            return inputs
        changed: dict[str, str] = {}
        for name in cls.identity_fields:
            value = getattr(inputs, name)
            if isinstance(value, str) and (normalised := normalise_identity(value)) != value:
                changed[cls.model_fields[name].alias or name] = normalised
        # Validated again, so a normalised value is held to the same limits (NFKC may lengthen it).
        return handler({**data, **changed}) if changed else inputs

    def poll_wait_s(self) -> float | None:
        """How long the gateway may poll the vendor until the answer changes (None: ask once).

        A method, not a getattr: a missing attribute on a pydantic model costs an exception, and this
        is asked on every request (profiled at ~3 % of a cache hit)."""
        return None


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


def json_in_string(raw: Any, name: str) -> Mapping[str, Any]:
    """A JSON object the vendor writes inside a string field (TOP's `auth_info`, `token_result`); an
    object as is, should the vendor stop double-encoding; else a 502 naming the field."""
    if isinstance(raw, Mapping):
        return raw
    if not isinstance(raw, str):
        raise VendorBadResponse(f"the vendor's answer has no {name}")
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise VendorBadResponse(f"the vendor's {name} is not JSON") from None
    if not isinstance(decoded, dict):
        raise VendorBadResponse(f"the vendor's {name} is not a JSON object")
    return decoded


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
    if value is None or not math.isfinite(value) or value <= 0:
        raise VendorBadResponse("the vendor's answer has no usable expiry")
    if value > 1e12:
        value = value / 1000.0
    elif value < 1e9:
        value = now + value
    if value > now + MAX_EXPIRY_HORIZON_S:
        raise VendorBadResponse("the vendor's answer has an expiry decades away")
    return value


MAX_EXPIRY_HORIZON_S = 10 * 365 * 86400


def scalar_text(value: Any) -> str | None:
    """A vendor value as text for `upstream`/`detail`: strings and numbers only (a nested value could be
    ~1000 levels deep, and str() of it overflows the stack), credential shapes redacted and cut at
    MAX_VENDOR_TEXT (gateway/redaction.py) — so that no error, nor the failure record the service keeps
    of it, ever holds a token-looking value."""
    # Redacted whole, then cut: cutting first could leave half of a secret that straddles the limit.
    return redact_text(value) if isinstance(value, str) else scalar_value(value)


def scalar_value(value: Any) -> str | None:
    """A vendor value as short text for the answer's `data` (not redacted: it is the caller's own data,
    e.g. a user id)."""
    if isinstance(value, bool) or value is None:
        return None if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else "(a very large number)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value[:MAX_VENDOR_TEXT]
    return "(a structured value)"


def checked_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """A caller's JSON object bound for a vendor: at most 8 levels deep and 4 KiB compact, every key and
    string printable, every integer within 64 bits."""
    _check_json(value, depth=0)
    if len(orjson.dumps(value)) > 4096:
        raise ValueError("must be at most 4096 bytes as compact JSON")
    return value


def _check_json(value: Any, depth: int) -> None:
    if depth > 8:
        raise ValueError("must be at most 8 levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if _CONTROL.search(key):
                raise ValueError("keys must not contain control characters")
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("strings must not contain control characters")
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ValueError("integers must fit in 64 bits")
