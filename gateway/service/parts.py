"""How the service's parts are put together from the configuration (what AuthService is made of)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.cache.keys import KeySpace, derived_hash_secret
from gateway.cache.local import LocalCache
from gateway.cache.records import FailureMemory, QuotaBans
from gateway.cache.shared import SharedCache
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.providers.registry import Provider
from gateway.service.limits import CallerBudget, OutboundLimits
from gateway.service.replicas import ReplicaFlight
from gateway.service.vendor import VendorCalls
from gateway.store import CredentialStore
from gateway.upstream import Upstream

ANONYMOUS = CallerBudget("", lambda: None, max_polls=1 << 30)  # a caller the API did not name


@dataclass(frozen=True, slots=True)
class CacheOptions:
    key_prefix: str = "gw"
    cache_key_secret: str | None = None
    failure_cooldown_s: float = 30.0
    local_max_entries: int = 10_000
    local_max_age_s: float = 300.0


def shared_cache(
    providers: Mapping[str, Provider], store: CredentialStore, options: CacheOptions, clock: Clock
) -> SharedCache:
    """The hit cache in front of the store, with the key space of these providers."""
    secret = options.cache_key_secret
    hash_secrets = (
        dict.fromkeys(providers, secret.encode())
        if secret
        else {name: derived_hash_secret(p.secret) for name, p in providers.items()}
    )
    keys = KeySpace(options.key_prefix, hash_secrets)
    local = LocalCache(max_entries=options.local_max_entries, max_age_s=options.local_max_age_s)
    return SharedCache(store, local, keys, clock)


def replica_flight(
    providers: Mapping[str, Provider],
    store: CredentialStore,
    cache: SharedCache,
    upstream: Upstream,
    metrics: Metrics,
    options: CacheOptions,
    clock: Clock,
    rng: random.Random,
) -> ReplicaFlight:
    """The cross-replica flight over the vendor calls, with their limits and records."""
    keys = cache.keys
    limits = {name: p.settings.limits for name, p in providers.items()}
    vendor = VendorCalls(
        upstream,
        cache,
        OutboundLimits(limits, store, keys, clock, on_reject=metrics.note_outbound_rejection),
        FailureMemory(store, options.failure_cooldown_s, clock, on_replay=metrics.note_replay),
        QuotaBans(store, keys, clock, on_change=metrics.note_quota_ban),
        metrics,
        clock,
        rng,
    )
    return ReplicaFlight(store, cache, vendor, metrics, clock)
