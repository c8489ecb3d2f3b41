"""One vendor call for an identity, and what is kept of its answer.

In order: a quota ban on the provider answers 429 at once; the outbound slot is held while upstream's
attempts run (the breaker and retries are upstream's); a caller-class rejection is remembered for the
identity, a quota answer bans the provider on every replica; a success is scheduled as a cache entry
(a token without an expiry lives `token_ttl_s`) and written, the lease handed back in the same round
trip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from gateway.cache.entry import CacheEntry, LoginResult, schedule
from gateway.cache.lease import Lease
from gateway.cache.records import FailureMemory, QuotaBans
from gateway.cache.shared import SharedCache
from gateway.clock import Clock
from gateway.errors import VendorQuotaExceeded, VendorRejectedInput
from gateway.metrics import Metrics
from gateway.providers.base import Credential, Inputs
from gateway.providers.registry import Provider
from gateway.service.limits import OutboundLimits
from gateway.upstream import Upstream


@dataclass
class VendorCalls:
    upstream: Upstream
    cache: SharedCache
    limits: OutboundLimits
    failures: FailureMemory
    bans: QuotaBans
    metrics: Metrics
    clock: Clock
    rng: random.Random

    async def call(
        self,
        provider: Provider,
        inputs: Inputs,
        key: str,
        deadline: float,
        lease: Lease | None = None,
        ban: bytes | None = None,
    ) -> LoginResult:
        """The vendor's answer for the identity at `key`, kept in the cache. `ban` is the provider's ban
        record as the lease's read found it (None: none, or not read)."""
        started = self.clock.monotonic()
        self.bans.raise_if_banned(provider.name, ban)
        try:
            credential = await self.upstream.login(
                provider, inputs, deadline=deadline,
                slot=lambda: self.limits.slot(provider.name, deadline),
            )  # fmt: skip
        except VendorRejectedInput as rejected:
            await self.failures.remember(self.cache.keys.failure(key), rejected)
            raise
        except VendorQuotaExceeded as quota:
            await self.bans.ban(provider.name, quota, provider.settings.quota_ban_default_s)
            raise
        now = self.clock.time()
        entry = self._entry_for(provider, credential, now)
        if entry.expires_at is not None:
            lifetime = self.metrics.credential_lifetime_seconds.labels(provider.name)
            lifetime.observe(entry.expires_at - now)
        if credential.cacheable and entry.is_fresh(now):
            await self.cache.write(key, entry, lease)
        result = LoginResult.of(provider.name, provider.kind, entry, cached=False)
        return replace(result, vendor_ms=round((self.clock.monotonic() - started) * 1000, 3))

    def _entry_for(self, provider: Provider, credential: Credential, now: float) -> CacheEntry:
        expires_at = credential.expires_at
        if expires_at is None and credential.token is not None:
            expires_at = now + provider.settings.token_ttl_s
        return schedule(
            token=credential.token, expires_at=expires_at,
            keep_without_expiry_s=provider.settings.token_ttl_s, data=credential.data,
            upstream_request_id=credential.upstream_request_id, now=now, rng=self.rng,
        )  # fmt: skip
