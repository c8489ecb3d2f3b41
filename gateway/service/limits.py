"""What may reach a vendor: the outbound limits per provider, a budget of vendor calls per client.

Per provider: a rate shared by every replica — a GCRA bucket in the store (one key per provider,
updated atomically there), so N replicas together stay under `rate_per_s` with bursts up to `burst`
— and a concurrency cap per replica. A login waits for a slot while its deadline allows, else gets
429 `outbound_limited`: the vendor never sees the excess (nor a call that waited for a slot until
under `MIN_ATTEMPT_S` of the deadline was left, which it could not answer in time). While the store
is down the rate falls back to a bucket per replica (the cap then holds per replica).

Per client: `vendor_calls_per_s` (per replica) counts the requests that need the vendor — misses,
forced refreshes and each poll of a bind check — and answers 429 `client_rate_limited` beyond it;
hits are never charged. One client's flood of distinct identities then cannot spend the app key's
vendor quota that every other client shares.

Per login: a bind check may poll for at most the provider's `bind_wait_max_s` (`poll_wait_s`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.cache.keys import KeySpace
from gateway.clock import Clock
from gateway.errors import InvalidBody, OutboundLimited
from gateway.providers.base import Inputs
from gateway.providers.registry import Provider
from gateway.resilience.gcra import LocalBucket
from gateway.settings import LimitSettings
from gateway.store import CredentialStore, StoreUnavailable

# Less than this left of the deadline when a slot frees up, and the call is not sent: no vendor
# answers across the network that fast (the real ones are tens of ms away).
MIN_ATTEMPT_S = 0.01


@dataclass(frozen=True, slots=True)
class CallerBudget:
    """What the service needs to know of the caller: whom to charge a vendor call to (raises
    ClientRateLimited when over), and how many waiting polls it may hold."""

    client: str
    charge_vendor_call: Callable[[], None]
    max_polls: int


@dataclass
class _ProviderLimit:
    settings: LimitSettings
    store: CredentialStore
    key: str
    clock: Clock
    slots: asyncio.Semaphore | None = field(init=False)
    _local: LocalBucket = field(init=False)

    def __post_init__(self) -> None:
        self._local = LocalBucket(self.clock.monotonic)
        cap = self.settings.max_concurrency
        self.slots = asyncio.Semaphore(cap) if cap is not None else None

    async def take_rate_slot(self, interval_s: float) -> float:
        try:
            return await self.store.take_rate_slot(self.key, interval_s, self.settings.burst)
        except StoreUnavailable:
            return self._local.take(interval_s, self.settings.burst)


class OutboundLimits:
    def __init__(
        self,
        limits: Mapping[str, LimitSettings],
        store: CredentialStore,
        keys: KeySpace,
        clock: Clock,
        *,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_reject = on_reject
        self._limits = {
            name: _ProviderLimit(settings, store, keys.rate(name), clock)
            for name, settings in limits.items()
        }

    @asynccontextmanager
    async def slot(self, provider: str, deadline: float) -> AsyncIterator[None]:
        """Hold one outbound slot for a vendor call; 429 if none frees up before `deadline`."""
        limit = self._limits[provider]
        await self._wait_for_rate(provider, limit, deadline)
        if limit.slots is None:
            yield
            return
        waited = limit.slots.locked()  # every slot taken: this call queues behind the limit
        try:
            remaining = max(0.0, deadline - self._clock.monotonic())
            await asyncio.wait_for(limit.slots.acquire(), timeout=remaining)
        except TimeoutError:
            raise self._rejected(provider, "the outbound concurrency limit is full") from None
        if waited and deadline - self._clock.monotonic() < MIN_ATTEMPT_S:
            # The slot freed up just as the wait ran out (the holder's timeout, at nearly our deadline,
            # released it): the time went to the limit, and a send now would spend a vendor call that
            # cannot be answered in time — so the answer is the limit's, and the vendor is not called.
            # A slot free at once blames nothing on the limit: the call goes as it would uncapped.
            limit.slots.release()
            raise self._rejected(provider, "the outbound concurrency limit is full")
        try:
            yield
        finally:
            limit.slots.release()

    async def _wait_for_rate(self, provider: str, limit: _ProviderLimit, deadline: float) -> None:
        rate = limit.settings.rate_per_s
        if rate is None:
            return
        while (wait := await limit.take_rate_slot(1.0 / rate)) > 0:
            if self._clock.monotonic() + wait > deadline:
                raise self._rejected(provider, "the outbound rate limit is full", wait)
            await asyncio.sleep(wait)

    def _rejected(self, provider: str, detail: str, retry_after_s: float = 1.0) -> OutboundLimited:
        if self._on_reject is not None:
            self._on_reject(provider)
        return OutboundLimited(
            f"{detail}; the vendor was not called",
            provider=provider,
            retry_after_s=max(1, round(retry_after_s)),
        )


def poll_wait_s(provider: Provider, inputs: Inputs) -> float | None:
    """How long a bind check may poll (`wait_s`), or None: no polling; 400 past bind_wait_max_s."""
    wait_s = inputs.poll_wait_s()
    if wait_s is not None and wait_s > provider.settings.bind_wait_max_s:
        raise InvalidBody(
            f"wait_s may be at most {provider.settings.bind_wait_max_s:g} for this provider",
            provider=provider.name,
            extensions={"errors": [{"field": "wait_s", "message": "too long"}]},
        )
    return wait_s
