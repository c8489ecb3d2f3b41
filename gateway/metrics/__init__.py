"""Prometheus metrics: `gateway_` prefix, base units, bounded labels (provider, outcome, never an identity).

One process keeps its values in memory. `serve --workers N` calls `share_between_processes` before it
forks: every worker then writes its values to files in one directory (prometheus_client's multiprocess
mode), and /metrics on any worker answers for all of them — counters and histograms summed, each gauge
combined as its `multiprocess_mode` says. Single-process serving never pays for the files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from gateway import __version__
from gateway.metrics.families import (
    CACHE_RESULTS,
    FAMILIES,
    HTTP_LISTENERS,
    HTTP_REJECTION_REASONS,
    LATENCY_BUCKETS,
    REQUEST_OUTCOMES,
    RETRY_DENIAL_REASONS,
    STORE_ERROR_REASONS,
    STORE_OPERATIONS,
    VENDOR_CALL_OUTCOMES,
)

__all__ = [
    "CACHE_RESULTS",
    "HTTP_LISTENERS",
    "HTTP_REJECTION_REASONS",
    "LATENCY_BUCKETS",
    "REQUEST_OUTCOMES",
    "RETRY_DENIAL_REASONS",
    "STORE_ERROR_REASONS",
    "STORE_OPERATIONS",
    "VENDOR_CALL_OUTCOMES",
    "Metrics",
    "share_between_processes",
]

# `*_created` series double the exposition for no use on dashboards or alerts.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's file values go

# prometheus_client picks file-backed values at import when PROMETHEUS_MULTIPROC_DIR is set. The gateway
# decides for itself: in memory unless `serve --workers` shares them, so a variable left in the
# environment can neither merge stale files into /metrics nor stop start-up on a missing directory.
values.ValueClass = values.MutexValue
_shared_dir: str | None = None


def share_between_processes(directory: str) -> None:
    """From now on, metrics made in this process and its forks keep their values in `directory`."""
    global _shared_dir
    os.environ[MULTIPROCESS_DIR_ENV] = directory  # read by each file-backed value as it is made
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _shared_dir = directory


class Metrics:
    """All of the gateway's metrics, in a registry of its own (one per app, so tests do not collide)."""

    requests: Counter
    request_seconds: Histogram
    vendor_calls: Counter
    vendor_seconds: Histogram
    cache_lookups: Counter
    store_errors: Counter
    credential_lifetime_seconds: Histogram
    flight_waiters: Counter
    lock_waits: Counter
    lost_leases: Counter
    refresh_ahead: Counter
    cooldown_rejections: Counter
    vendor_retries: Counter
    retries_denied: Counter
    breaker_state: Gauge
    quota_ban_active: Gauge
    outbound_rejections: Counter
    store_up: Gauge
    store_nodes_down: Gauge
    config_reloads: Counter
    config_last_reload_success: Gauge
    http_connections: Gauge
    http_connections_rejected: Counter
    http_parser_errors: Counter

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.exposed = self.registry  # what /metrics renders: this process, or every worker
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._cache_children: dict[tuple[str, str], Any] = {}
        for attribute, family in FAMILIES.items():
            setattr(self, attribute, family.make(self.registry))
        if _shared_dir is not None:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=_shared_dir)  # type: ignore[no-untyped-call]
        # An Info has no value to share: every worker states the same version, so it goes straight
        # into whichever registry /metrics renders.
        Info("gateway_build", "Version of the running gateway.", registry=self.exposed).info(
            {"version": __version__}
        )

    def initialise(self, providers: Iterable[str]) -> None:
        """Make every labelled child that a panel or an alert reads, at 0, for these providers (the
        configured names) and every known outcome, result and reason. Children that already exist
        keep their values; the HTTP listeners make their own (gateway/api/edge.py)."""
        for provider in providers:
            for outcome, status_class in REQUEST_OUTCOMES.items():
                self.requests.labels(provider, outcome, status_class)
            for outcome in VENDOR_CALL_OUTCOMES:
                self.vendor_calls.labels(provider, outcome)
            for result in CACHE_RESULTS:
                self.cache_lookups.labels(provider, result)
            for reason in RETRY_DENIAL_REASONS:
                self.retries_denied.labels(provider, reason)
            for family in (
                self.request_seconds,
                self.vendor_seconds,
                self.credential_lifetime_seconds,
                self.refresh_ahead,
                self.cooldown_rejections,
                self.vendor_retries,
                self.outbound_rejections,
                self.breaker_state,
                self.quota_ban_active,
            ):
                family.labels(provider)
        for operation in STORE_OPERATIONS:
            for reason in STORE_ERROR_REASONS:
                self.store_errors.labels(operation, reason)

    # labels() takes a lock and builds a key on every call; the hit path calls these per request, so
    # the children are looked up once per label set and kept (label sets are bounded by the config).
    def observe_request(
        self, provider: str, outcome: str, status_class: str, seconds: float
    ) -> None:
        key = (provider, outcome, status_class)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = (
                self.requests.labels(provider, outcome, status_class),
                self.request_seconds.labels(provider),
            )
        child[0].inc()
        child[1].observe(seconds)

    def note_cache(self, provider: str, result: str) -> None:
        child = self._cache_children.get((provider, result))
        if child is None:
            child = self._cache_children[(provider, result)] = self.cache_lookups.labels(
                provider, result
            )
        child.inc()

    def note_reload(self, applied: bool) -> None:
        self.config_reloads.labels("applied" if applied else "rejected").inc()
        self.config_last_reload_success.set(1 if applied else 0)

    def note_outbound_rejection(self, provider: str) -> None:
        self.outbound_rejections.labels(provider).inc()

    def note_replay(self, provider: str) -> None:
        """A remembered vendor rejection answered again, without calling the vendor."""
        self.cooldown_rejections.labels(provider).inc()

    def note_quota_ban(self, provider: str, banned: bool) -> None:
        self.quota_ban_active.labels(provider).set(1 if banned else 0)

    def note_store_health(self, *, up: bool, nodes_down: int) -> None:
        self.store_up.set(1 if up else 0)
        self.store_nodes_down.set(nodes_down)

    def observe_vendor_call(self, provider: str, outcome: str, seconds: float) -> None:
        self.vendor_calls.labels(provider, outcome).inc()
        self.vendor_seconds.labels(provider).observe(seconds)
