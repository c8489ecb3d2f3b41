"""cache → single flight → vendor → cache: the gateway's only orchestration.

A login is answered, in order, from: the in-process hit cache; the shared store; a vendor call that
identical concurrent callers share — in this process (gateway.cache.flight) and across replicas
(gateway.service.replicas). A credential inside its refresh window is served at once while one
background call renews it; past its serve-until point it is served only if the vendor fails
("stale"), never past the vendor's expiry. What a vendor call does and keeps is
gateway.service.vendor; a bind check with `wait_s` polls (gateway.cache.polling). Store trouble turns
into misses, never into errors.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog

from gateway.cache.entry import CacheEntry, LoginResult
from gateway.cache.flight import SharedReads, SingleFlight
from gateway.cache.invalidation import Invalidation
from gateway.cache.polling import Polls
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import GatewayError, UnknownProvider
from gateway.log_context import bind_log_context
from gateway.metrics import Metrics
from gateway.providers.base import Inputs
from gateway.providers.registry import Provider
from gateway.service.background import BackgroundTasks, logged_failure
from gateway.service.limits import CallerBudget, poll_wait_s
from gateway.service.parts import ANONYMOUS, CacheOptions, replica_flight, shared_cache
from gateway.store import CredentialStore, StoreUnavailable
from gateway.store.factory import StoreHealth
from gateway.upstream import Upstream

log = structlog.get_logger("gateway.service")


class AuthService:
    """Answers logins from the caches when it can, from the vendor when it must."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        store: CredentialStore,
        upstream: Upstream,
        metrics: Metrics,
        *,
        options: CacheOptions = CacheOptions(),  # noqa: B008 - frozen
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        store_health: Callable[[], StoreHealth] = lambda: StoreHealth(shards={}),
    ) -> None:
        self.providers = dict(providers)
        self._store, self._metrics, self._clock = store, metrics, clock
        self._store_health = store_health
        self.cache = shared_cache(self.providers, store, options, clock)
        rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._replicas = replica_flight(
            self.providers, store, self.cache, upstream, metrics, options, clock, rng
        )
        self._reads: SharedReads[CacheEntry | None] = SharedReads()
        self._flights: SingleFlight[LoginResult] = SingleFlight(on_join=metrics.flight_waiters.inc)
        self._polls: Polls[LoginResult] = Polls(clock)
        self._background = BackgroundTasks()
        for name in self.providers:
            metrics.quota_ban_active.labels(name).set(0)

    @property
    def invalidation(self) -> Invalidation:
        return self.cache.invalidation

    async def start(self) -> None:
        self._background.spawn(self.invalidation.run())

    async def close(self) -> None:
        self._flights.cancel_all()
        self._polls.cancel_all()
        await self._background.cancel_all()

    def use_secrets(self, secrets: Mapping[str, str]) -> None:
        """Call the vendors with these app secrets from now on (a reload). Identity hashes keep the
        key they were derived with at start: cached entries stay found (see cache_key_secret)."""
        self.providers = {
            name: replace(p, secret=secrets[name]) if name in secrets else p
            for name, p in self.providers.items()
        }

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise UnknownProvider(f"there is no provider named {name!r}") from None

    def cache_key(self, provider: Provider, inputs: Inputs) -> str:
        return self.cache.keys.credential(provider.name, provider.identity(inputs))

    async def store_health(self) -> StoreHealth:
        """A fresh reading: a ping (the guards record its outcome), then what the guards say."""
        with contextlib.suppress(StoreUnavailable):
            await self._store.ping()
        return self._store_health()

    async def forget(self, provider: Provider, inputs: Inputs) -> bool:
        """Drop the cached credential (and any remembered failure) for this identity everywhere."""
        return await self.cache.forget(provider.name, self.cache_key(provider, inputs))

    async def login(
        self,
        provider: Provider,
        inputs: Inputs,
        *,
        fresh: bool = False,
        key: str | None = None,
        caller: CallerBudget = ANONYMOUS,
    ) -> LoginResult:
        """The credential for this identity: cached unless `fresh`, else one shared vendor call; a
        bind check with `wait_s` polls until bound, each poll charged to `caller`."""
        key = key or self.cache_key(provider, inputs)
        wait_s = poll_wait_s(provider, inputs)
        if wait_s is None:
            return await self._login_once(provider, inputs, key, fresh, caller)
        return await self._polls.wait(
            key, wait_s, lambda: self._login_once(provider, inputs, key, False, caller),
            settled=lambda result: provider.settles(result.data),
            client=(caller.client, caller.max_polls),
            provider=(provider.name, provider.settings.max_concurrent_polls),
        )  # fmt: skip

    async def _login_once(
        self, provider: Provider, inputs: Inputs, key: str, fresh: bool, caller: CallerBudget
    ) -> LoginResult:
        deadline = self._clock.monotonic() + provider.settings.deadline_s
        # Read even when `fresh`: what is cached now tells a newer answer (another replica's) from it.
        # A plain read: the lease is taken only once it found no fresh entry (ReplicaFlight.fetch).
        seen = self.cache.local_entry(key) or await self._reads.run(
            key, lambda: self.cache.read(provider.name, key)
        )
        now = self._clock.time()
        if not fresh and seen is not None and seen.is_fresh(now):
            if seen.refresh_due(now) and key not in self._flights:
                self._refresh_ahead(provider, inputs, key, seen)
            self._note_cache(provider, "hit")
            if seen.hit is not None:
                return seen.hit  # type: ignore[no-any-return]  # the entry keeps its ready answer
            hit = LoginResult.of(provider.name, provider.kind, seen, cached=True)
            return self.cache.remember_hit(key, seen, hit)
        self._note_cache(provider, "bypass" if fresh else "miss")
        if key not in self._flights:
            caller.charge_vendor_call()  # a new vendor call on this caller's behalf
        try:
            return await self._flights.run(
                key, lambda: self._replicas.fetch(provider, inputs, key, seen, deadline)
            )
        except GatewayError as error:
            covers = error.retryable or error.status >= 500  # vendor trouble, not a rejection
            if fresh or seen is None or not covers or not seen.is_valid(self._clock.time()):
                raise
            self._note_cache(provider, "stale")
            log.warning("served_stale", provider=provider.name, error=error.code)
            return LoginResult.of(provider.name, provider.kind, seen, cached=True, stale=True)

    def _refresh_ahead(
        self, provider: Provider, inputs: Inputs, key: str, seen: CacheEntry
    ) -> None:
        self._metrics.refresh_ahead.labels(provider.name).inc()
        deadline = self._clock.monotonic() + provider.settings.deadline_s
        call = self._flights.run(
            key, lambda: self._replicas.fetch(provider, inputs, key, seen, deadline)
        )
        self._background.spawn(logged_failure(call, "refresh_ahead_failed", provider.name))

    def _note_cache(self, provider: Provider, result: str) -> None:
        self._metrics.note_cache(provider.name, result)
        bind_log_context(cache=result)
