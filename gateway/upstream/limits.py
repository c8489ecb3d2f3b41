"""Outbound limits per provider: a concurrency cap (per replica) and a rate shared by all replicas.

The rate is a GCRA token bucket kept in the store (one key per provider, updated atomically by the
store), so N replicas together stay under `rate_per_s` with bursts up to `burst`. A caller waits for a
slot while its deadline allows, else gets 429 `outbound_limited` — the vendor never sees the excess.
If the store is down the rate falls back to a per-replica bucket (the cap then holds per replica).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from gateway.errors import OutboundLimited
from gateway.resilience.gcra import LocalBucket
from gateway.settings import LimitSettings
from gateway.store import CredentialStore, StoreUnavailable


class OutboundLimiter:
    def __init__(
        self,
        provider: str,
        settings: LimitSettings,
        store: CredentialStore,
        *,
        key: str,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self._provider = provider
        self._settings = settings
        self._store = store
        self._key = key
        self._on_reject = on_reject
        self._local = LocalBucket()
        cap = settings.max_concurrency
        self._slots = asyncio.Semaphore(cap) if cap is not None else None

    @asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Hold one outbound slot for a vendor call; 429 if none frees up before `deadline`."""
        await self._wait_for_rate(deadline)
        if self._slots is None:
            yield
            return
        try:
            await asyncio.wait_for(
                self._slots.acquire(), timeout=max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            raise self._rejected("the outbound concurrency limit is full") from None
        try:
            yield
        finally:
            self._slots.release()

    async def _wait_for_rate(self, deadline: float) -> None:
        rate = self._settings.rate_per_s
        if rate is None:
            return
        interval = 1.0 / rate
        while True:
            try:
                wait = await self._store.take_rate_slot(self._key, interval, self._settings.burst)
            except StoreUnavailable:
                wait = self._local.take(interval, self._settings.burst)
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise self._rejected("the outbound rate limit is full", retry_after_s=wait)
            await asyncio.sleep(wait)

    def _rejected(self, detail: str, retry_after_s: float = 1.0) -> OutboundLimited:
        if self._on_reject is not None:
            self._on_reject()
        return OutboundLimited(
            f"{detail}; the vendor was not called",
            provider=self._provider,
            retry_after_s=max(1, round(retry_after_s)),
        )
