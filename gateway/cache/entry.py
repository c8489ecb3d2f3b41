"""A cached credential and its schedule: when it is fresh, when to refresh it ahead, when it expires.

    issued ── fresh ──┤refresh_at├── fresh, refresh ahead ──┤serve_until├── stale only ──┤expires_at
                       (jittered)                            (expiry - margin)             (vendor's)

- margin = min(60 s, 10 % of the lifetime): a fixed 60 s would make a 60 s token "born expired";
- refresh_at falls at a random point of the window min(300 s, 20 %) · [½, 1] before serve_until, so a
  fleet that logged many users in at once does not refresh them all in the same second;
- past serve_until a credential is served only when the vendor fails ("stale"), and never past
  expires_at.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_MARGIN_S = 60.0
MARGIN_FRACTION = 0.1
MAX_REFRESH_AHEAD_S = 300.0
REFRESH_AHEAD_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class CacheEntry:
    token: str | None
    expires_at: (
        float | None
    )  # the vendor's expiry in this host's clock; None: no expiry (bind check)
    data: dict[str, Any]
    upstream_request_id: str | None
    issued_at: float
    serve_until: float
    refresh_at: float | None
    # The service's ready-made answer for a hit on this entry (built once, kept in the local cache only).
    hit: Any = field(default=None, compare=False)

    def is_fresh(self, now: float) -> bool:
        return now < self.serve_until

    def refresh_due(self, now: float) -> bool:
        return self.refresh_at is not None and now >= self.refresh_at

    def is_valid(self, now: float) -> bool:
        """Still usable at all (for stale serving): before the vendor's expiry."""
        return now < (self.expires_at if self.expires_at is not None else self.serve_until)

    def store_ttl_s(self, now: float) -> float:
        """Kept in the store until the vendor's expiry, so a failing vendor can still be covered."""
        return (self.expires_at if self.expires_at is not None else self.serve_until) - now

    def with_hit(self, hit: Any) -> CacheEntry:
        """This entry keeping `hit`, its ready answer (built directly: dataclasses.replace costs more
        than the rest of a Redis hit's own work)."""
        return CacheEntry(
            self.token, self.expires_at, self.data, self.upstream_request_id, self.issued_at,
            self.serve_until, self.refresh_at, hit,
        )  # fmt: skip

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "token": self.token,
                "expires_at": self.expires_at,
                "data": self.data,
                "upstream_request_id": self.upstream_request_id,
                "issued_at": self.issued_at,
                "serve_until": self.serve_until,
                "refresh_at": self.refresh_at,
            }
        )


def decode_entry(raw: bytes) -> CacheEntry | None:
    """The entry, or None for anything that is not one (the caller then treats it as a miss)."""
    try:
        value = orjson.loads(raw)
        entry = CacheEntry(
            token=value["token"],
            expires_at=_number_or_none(value["expires_at"]),
            data=dict(value["data"]),
            upstream_request_id=value["upstream_request_id"],
            issued_at=float(value["issued_at"]),
            serve_until=float(value["serve_until"]),
            refresh_at=_number_or_none(value["refresh_at"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if entry.token is not None and not isinstance(entry.token, str):
        return None
    return entry


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def margin_s(lifetime_s: float) -> float:
    return min(MAX_MARGIN_S, MARGIN_FRACTION * lifetime_s)


def schedule(
    *,
    token: str | None,
    expires_at: float | None,
    keep_without_expiry_s: float,
    data: dict[str, Any],
    upstream_request_id: str | None,
    now: float,
    rng: random.Random,
) -> CacheEntry:
    """The entry for a credential issued `now`; without an expiry it is kept `keep_without_expiry_s`."""
    if expires_at is None:
        return CacheEntry(
            token, None, data, upstream_request_id, now, now + keep_without_expiry_s, None
        )
    lifetime = max(0.0, expires_at - now)
    serve_until = expires_at - margin_s(lifetime)
    ahead = min(MAX_REFRESH_AHEAD_S, REFRESH_AHEAD_FRACTION * lifetime)
    refresh_at = serve_until - ahead * (0.5 + 0.5 * rng.random())
    return CacheEntry(token, expires_at, data, upstream_request_id, now, serve_until, refresh_at)


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The normalized answer for one `/auth/<provider>` call (DESIGN.md "Success (200)")."""

    provider: str
    kind: str
    token: str | None
    expires_at: int | None
    cached: bool
    data: dict[str, Any] = field(default_factory=dict)
    upstream_request_id: str | None = None
    stale: bool = False
    vendor_ms: float | None = field(default=None, compare=False)  # for the log line, not the body
    body: bytes | None = field(default=None, compare=False)  # as_json() already serialized

    @classmethod
    def of(
        cls, provider: str, kind: str, entry: CacheEntry, *, cached: bool, stale: bool = False
    ) -> LoginResult:
        expires_at = None if entry.expires_at is None else int(entry.expires_at)
        return cls(
            provider, kind, entry.token, expires_at, cached, entry.data,
            entry.upstream_request_id, stale,
        )  # fmt: skip

    def serialized(self) -> LoginResult:
        """This result with its body rendered once (a hit answer kept for repeats)."""
        return LoginResult(
            self.provider, self.kind, self.token, self.expires_at, self.cached, self.data,
            self.upstream_request_id, self.stale, self.vendor_ms, orjson.dumps(self.as_json()),
        )  # fmt: skip

    def encoded(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.as_json())

    def as_json(self) -> dict[str, Any]:
        body = {
            "provider": self.provider,
            "kind": self.kind,
            "token": self.token,
            "expires_at": self.expires_at,
            "cached": self.cached,
            "data": self.data,
            "upstream_request_id": self.upstream_request_id,
        }
        if self.stale:
            body["stale"] = True
        return body
