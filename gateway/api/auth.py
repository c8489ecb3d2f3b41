"""Caller authentication: `Authorization: Bearer <key>` checked against sha256 hashes from the config,
plus each client's optional request rate."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass
class Caller:
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


class CallerAuth:
    """Finds the client an API key belongs to, comparing every configured hash in constant time."""

    def __init__(self, clients: Mapping[str, ClientSettings]) -> None:
        self._buckets: dict[str, tuple[LocalBucket, LocalBucket]] = {}
        self.use(clients)

    def use(self, clients: Mapping[str, ClientSettings]) -> None:
        """Authenticate against these clients from now on (a reload); a client kept keeps its rate
        buckets. The tables are swapped whole, so a request sees the old set or the new one."""
        hashes = [
            (name, bytes.fromhex(digest))
            for name, c in clients.items()
            for digest in c.key_hashes()
        ]
        buckets = {
            name: self._buckets.get(name) or (LocalBucket(), LocalBucket()) for name in clients
        }
        self._hashes, self._clients, self._buckets = hashes, dict(clients), buckets

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found: str | None = None
        # No early exit: every hash is compared, so timing says nothing about which clients exist.
        for name, expected in self._hashes:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        if found is None:
            raise UnknownApiKey("the API key is not known")
        return Caller(found, self._clients[found], key_id(key, digest), *self._buckets[found])
