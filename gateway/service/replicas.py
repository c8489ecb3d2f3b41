"""Single flight across replicas: one vendor call per identity however many replicas miss it at once.

The replica that holds the identity's lease in the store calls the vendor; the others wait for its
answer, polling with the same round trip that would take the lease (it also reads the entry, the
failure record and the quota ban, after the lease: an answer written before the lease was handed back
is always seen). It runs only after a plain read found no fresh entry, inside the in-process flight
for the identity, so a lease taken always has its call even if every caller leaves. Without the
store, each replica calls on its own — the in-process single flight still holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.cache.entry import CacheEntry, LoginResult
from gateway.cache.lease import Lease
from gateway.cache.shared import SharedCache
from gateway.clock import Clock
from gateway.errors import VendorTimeout
from gateway.metrics import Metrics
from gateway.providers.base import Inputs
from gateway.providers.registry import Provider
from gateway.service.vendor import VendorCalls
from gateway.store import CredentialStore, StoreUnavailable

LEASE_EXTRA_S = 5.0  # a lease outlasts the request deadline by this much (and is renewed meanwhile)
WAIT_FIRST_S, WAIT_MAX_S, WAIT_GROWTH = 0.02, 0.2, 1.5  # polling for another replica's answer


@dataclass
class ReplicaFlight:
    store: CredentialStore
    cache: SharedCache
    vendor: VendorCalls
    metrics: Metrics
    clock: Clock

    def lease(self, provider: Provider, key: str) -> Lease:
        """The identity's lease: it outlasts the whole vendor call, retries included (renewed anyway)."""
        lease_s = provider.settings.deadline_s + LEASE_EXTRA_S
        return Lease(self.store, self.cache.keys.lease(key), lease_s)

    async def fetch(
        self,
        provider: Provider,
        inputs: Inputs,
        key: str,
        seen: CacheEntry | None,
        deadline: float,
    ) -> LoginResult:
        """The vendor's answer, from this replica's call or another's; `seen` is the entry the caller
        had (an answer written since is another replica's)."""
        lease = self.lease(provider, key)
        interval, waited = WAIT_FIRST_S, False
        while True:
            try:
                leased, (current, failure, ban) = await lease.acquire_and_get(
                    self.cache.beside(provider.name, key)
                )
            except StoreUnavailable:
                return await self.vendor.call(provider, inputs, key, deadline)  # here only
            async with lease:  # hands the lease back on every way out unless the answer did
                newer = self.cache.newer(key, current, seen)
                if newer is not None:
                    return LoginResult.of(provider.name, provider.kind, newer, cached=False)
                self.vendor.failures.raise_if_cooling_down(provider.name, failure)
                if leased:
                    result = await self.vendor.call(provider, inputs, key, deadline, lease, ban)
                    if lease.lost:
                        self.metrics.lost_leases.inc()
                    return result
            if not waited:
                waited = True
                self.metrics.lock_waits.inc()
            if self.clock.monotonic() + interval >= deadline:
                raise VendorTimeout(
                    "another replica's call to the vendor for this identity did not finish in time",
                    provider=provider.name,
                )
            await asyncio.sleep(interval)
            interval = min(WAIT_MAX_S, interval * WAIT_GROWTH)
