"""Caller authentication: `Authorization: Bearer <key>` found by its SHA-256 among the hashes of the
config, plus each client's optional request rate."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ClientRateLimited, MissingApiKey, ProviderForbidden, UnknownApiKey
from gateway.resilience.gcra import LocalBucket
from gateway.service import CallerBudget
from gateway.settings import ClientSettings

KEY_PREFIX = "agw"


def new_api_key() -> str:
    """`agw_<id>_<secret>`: the `agw_<id>` part is not secret and may be logged (see key_id)."""
    return f"{KEY_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def key_id(key: str, digest: bytes | None = None) -> str:
    """What a log may say about a key: its public prefix for generated keys, else a short fingerprint
    (from `digest`, the key's SHA-256, when the caller already has it)."""
    parts = key.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) == 3 and parts[0] == KEY_PREFIX and len(parts[1]) == 8:
        return f"{parts[0]}_{parts[1]}"
    return "sha256:" + (digest or hashlib.sha256(key.encode()).digest()).hex()[:8]


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """An authenticated client, one per configured key and configuration (shared by its requests)."""

    name: str
    settings: ClientSettings
    key_id: str
    bucket: LocalBucket = field(repr=False)
    vendor_bucket: LocalBucket = field(repr=False)

    def require(self, provider: str) -> None:
        """403 unless this client may use `provider` — asked before the name is looked up, so for a
        limited key an unknown name gets this same answer. The problem names neither the provider nor
        whether it exists (a restricted caller must not learn which providers are configured)."""
        if not self.settings.may_use(provider):
            raise ProviderForbidden(f"the key of {self.name!r} may not use this provider")

    def take_rate_slot(self) -> None:
        """429 when this client is over its own rate of requests (per replica)."""
        settings = self.settings
        _take(self.bucket, settings.rate_limit_per_s, settings.rate_limit_burst, self.name, "")

    def charge_vendor_call(self) -> None:
        """429 when this client is over its vendor calls per second (per replica); hits are free."""
        settings = self.settings
        rate, burst = settings.vendor_calls_per_s, settings.vendor_calls_burst
        _take(self.vendor_bucket, rate, burst, self.name, VENDOR_CALLS)

    def budget(self) -> CallerBudget:
        """What the service charges vendor calls and waiting polls to."""
        return CallerBudget(self.name, self.charge_vendor_call, self.settings.max_concurrent_polls)


VENDOR_CALLS = " that need the vendor (misses and refreshes; cached answers are not limited)"


def _take(bucket: LocalBucket, rate: float | None, burst: int, client: str, what: str) -> None:
    """A slot of `bucket` at `rate` per second (None: unlimited), else 429 naming the limit."""
    if rate is None:
        return
    wait = bucket.take(1.0 / rate, burst)
    if wait > 0:
        raise ClientRateLimited(
            f"client {client!r} is limited to {rate:g} requests/s{what}",
            retry_after_s=max(1, round(wait)),
        )


@dataclass(frozen=True)
class _Tables:
    """One configuration's callers, swapped whole on a reload."""

    names: dict[bytes, str]  # SHA-256 digest of a configured key -> its client
    clients: dict[str, ClientSettings]
    buckets: dict[str, tuple[LocalBucket, LocalBucket]]
    # The Caller of each configured key, made at its first request (its key_id needs the key itself).
    # Bounded by the configured keys: an unknown key's digest is never a key here.
    callers: dict[bytes, Caller] = field(default_factory=dict)


class CallerAuth:
    """Finds the client an API key belongs to by the SHA-256 digest of the key: one hash and one
    dict lookup per request, and no raw key kept.

    No secret is compared byte by byte: the presented key is hashed, and the lookup compares that
    digest (the caller's own, known to the caller) with the configured ones — by a keyed hash of the
    digest first (Python's SipHash, keyed per process), so the `==` that could exit early runs only
    for the matching digest. Its timing says whether the presented key is known, which the answer
    says anyway; finding a configured digest's key from it would need a SHA-256 preimage."""

    def __init__(self, clients: Mapping[str, ClientSettings], clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock  # the rate buckets' time: tests move it instead of sleeping
        self._tables = _Tables({}, {}, {})
        self.use(clients)

    def use(self, clients: Mapping[str, ClientSettings]) -> None:
        """Authenticate against these clients from now on (a reload); a client kept keeps its rate
        buckets. The tables are swapped whole, so a request sees the old set or the new one."""
        names: dict[bytes, str] = {}
        for name, settings in clients.items():
            for digest in settings.key_hashes():
                # A key listed under two clients belongs to the first (as it did before).
                names.setdefault(bytes.fromhex(digest), name)
        kept = self._tables.buckets
        buckets = {name: kept.get(name) or self._new_buckets() for name in clients}
        self._tables = _Tables(names, dict(clients), buckets)

    def _new_buckets(self) -> tuple[LocalBucket, LocalBucket]:
        monotonic = self._clock.monotonic
        return LocalBucket(monotonic), LocalBucket(monotonic)

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        tables = self._tables  # one configuration for the whole request, whatever a reload does
        caller = tables.callers.get(digest)
        if caller is not None:
            return caller
        name = tables.names.get(digest)
        if name is None:
            raise UnknownApiKey("the API key is not known")
        caller = Caller(name, tables.clients[name], key_id(key, digest), *tables.buckets[name])
        tables.callers[digest] = caller
        return caller
