"""One calling app (`clients.<name>`): the hashes of its API keys and the providers it may use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
HASH_EXPECTED = (
    "expected the hex sha256 of the key, 64 characters "
    "(printf %s KEY | sha256sum, or python -m gateway hash-key)"
)


class ClientSettings(BaseModel):
    """One calling app: the sha256 of its API key(s) and the providers it may use.

    Several hashes may be listed at once, so a key is rotated without downtime: add the new key's hash,
    move the app to the new key, then remove the old hash. The hashes may also (or instead) be kept in
    `api_key_sha256_file`, one per line (a Secret volume): a running gateway re-reads it on change."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    api_key_sha256: list[str] = Field(default_factory=list)
    """The hex SHA-256 of the client's API key, or a list of them during a rotation (a single string
    is accepted; `python -m gateway hash-key` makes one)."""
    api_key_sha256_file: Path | None = None
    """A file of further hashes, one per line (a mounted Secret); a running gateway re-reads it when
    it changes. Give this, `api_key_sha256`, or both."""

    providers: Annotated[list[str], Field(min_length=1)]
    """The providers this client may use, by name, or ["*"] for every provider."""

    rate_limit_per_s: Annotated[float, Field(gt=0)] | None = None
    """Requests per second this client may make, per replica; 429 client_rate_limited beyond (null:
    no limit)."""

    rate_limit_burst: Annotated[int, Field(ge=1)] = 20
    """Requests the client's rate limit lets through at once."""

    # On by default so one client cannot spend the vendor quota all clients share; size it to the
    # client's peak of new logins per second per replica, with room.
    vendor_calls_per_s: Annotated[float, Field(gt=0)] | None = 20.0
    """Requests that need the vendor (misses, forced refreshes, each poll; hits are free) per
    second, per replica; 429 client_rate_limited beyond (null: no limit)."""

    vendor_calls_burst: Annotated[int, Field(ge=1)] = 40
    """Vendor-bound requests the client's vendor-call limit lets through at once."""

    max_concurrent_polls: Annotated[int, Field(ge=1)] = 20
    """Bind checks with `wait_s` this client may have waiting at once, per replica; 429
    polls_limited beyond."""

    @field_validator("api_key_sha256", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        if isinstance(values, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in values]
        return value

    @field_validator("api_key_sha256")
    @classmethod
    def _sha256_hex(cls, value: list[str]) -> list[str]:
        if not all(SHA256_HEX.match(v) for v in value):
            raise ValueError(HASH_EXPECTED)
        return value

    @model_validator(mode="after")
    def _some_key(self) -> ClientSettings:
        if not self.api_key_sha256 and self.api_key_sha256_file is None:
            raise ValueError("give api_key_sha256, api_key_sha256_file, or both")
        return self

    def key_hashes(self) -> list[str]:
        """The inline hashes and those of `api_key_sha256_file` (read now: it may have changed)."""
        if self.api_key_sha256_file is None:
            return self.api_key_sha256
        lines = self.api_key_sha256_file.read_text(encoding="utf-8").split()
        return self.api_key_sha256 + [line.strip().lower() for line in lines]

    def may_use(self, provider: str) -> bool:
        return "*" in self.providers or provider in self.providers
