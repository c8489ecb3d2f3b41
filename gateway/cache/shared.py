"""The credential cache as the service sees it: the in-process hit cache in front of the shared store.

A read looks in this process first, then in the store — one GET of the entry, nothing else: a hit needs
neither the failure record nor the quota ban, and a miss reads them beside the lease it takes
(gateway.service.replicas). A write keeps the entry here, stores it until the vendor's expiry, hands
the lease back and tells the other replicas, in one round trip. Store trouble turns reads into misses
and writes into answers not cached, never into errors (the store counts them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import structlog

from gateway.cache.entry import CacheEntry, LoginResult, decode_entry
from gateway.cache.invalidation import Invalidation
from gateway.cache.keys import KeySpace
from gateway.cache.lease import Lease
from gateway.cache.local import LocalCache
from gateway.clock import Clock
from gateway.errors import CacheUnavailable
from gateway.store import CredentialStore, Delete, StoreUnavailable, Write

log = structlog.get_logger("gateway.cache")


class SharedCache:
    def __init__(
        self, store: CredentialStore, local: LocalCache, keys: KeySpace, clock: Clock
    ) -> None:
        self._store = store
        self.local = local
        self.keys = keys
        self._clock = clock
        self.invalidation = Invalidation(store, local, keys.channel)

    def local_entry(self, key: str) -> CacheEntry | None:
        return self.local.get(key, self._clock.time())

    def beside(self, provider: str, key: str) -> Sequence[str]:
        """What decides whether to call the vendor: the entry, the failure record, the quota ban."""
        return key, self.keys.failure(key), self.keys.ban(provider)

    async def read(self, provider: str, key: str) -> CacheEntry | None:
        """The stored entry (kept here too), or None: absent, unreadable, or the store unavailable."""
        try:
            raw = (await self._store.read([key])).values[0]
        except StoreUnavailable:
            return None  # not "no session": carry on as a miss, the vendor can answer
        return self._keep(provider, key, raw)

    def newer(self, key: str, raw: bytes | None, seen: CacheEntry | None) -> CacheEntry | None:
        """The stored entry when it is fresh and was written since `seen` (by another replica)."""
        entry = decode_entry(raw) if raw is not None else None
        now = self._clock.time()
        if entry is None or not entry.is_fresh(now):
            return None
        if seen is not None and entry.issued_at == seen.issued_at:
            return None
        self.local.put(key, entry, now)
        return entry

    def remember_hit(self, key: str, entry: CacheEntry, hit: LoginResult) -> LoginResult:
        """Keep the serialized hit answer with the entry this process holds, for the repeats."""
        serialized = hit.serialized()
        self.local.replace(key, entry.with_hit(serialized))
        return serialized

    async def write(self, key: str, entry: CacheEntry, lease: Lease | None) -> None:
        """Keep the entry here and in the store, hand back the lease, tell the other replicas."""
        now = self._clock.time()
        self.local.put(key, entry, now)
        value, ttl_s = entry.encode(), entry.store_ttl_s(now)
        announce = self.invalidation.announcement(key)
        with contextlib.suppress(
            StoreUnavailable
        ):  # counted by the store's guard; the answer stands
            if lease is None:
                await self._store.write(Write(key, value, ttl_s, announce=announce))
            else:
                await lease.set_and_release(key, value, ttl_s, announce=announce)

    async def forget(self, provider: str, key: str) -> bool:
        """Drop the entry and its failure record everywhere; 503 when the store cannot say so."""
        self.local.drop(key)
        try:
            forget = [key, self.keys.failure(key)]
            removed = await self._store.delete(
                Delete(forget, announce=self.invalidation.announcement(key))
            )
        except StoreUnavailable:
            raise CacheUnavailable(
                "the credential store is unavailable; nothing was forgotten, try again",
                provider=provider,
            ) from None
        return removed > 0

    def _keep(self, provider: str, key: str, raw: bytes | None) -> CacheEntry | None:
        if raw is None:
            return None
        entry = decode_entry(raw)
        if entry is None:
            log.warning("cache_entry_unreadable", provider=provider)
            return None
        self.local.put(key, entry, self._clock.time())
        return entry
