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
from gateway.catalogue import ERROR_CATALOGUE

# `*_created` series double the exposition for no use on dashboards or alerts.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's file values go

# prometheus_client picks file-backed values at import when PROMETHEUS_MULTIPROC_DIR is set. The gateway
# decides for itself: in memory unless `serve --workers` shares them, so a variable left in the
# environment can neither merge stale files into /metrics nor stop start-up on a missing directory.
values.ValueClass = values.MutexValue
_shared_dir: str | None = None

# The label values each labelled family can take, so that `Metrics.initialise` makes every child the
# dashboard and the alerts read at 0 before it first happens: a counter that does not exist yet is
# "No data" on a panel and an empty side of a ratio, where an operator needs to read 0. The sets are
# bounded by the code (and the providers by the config), never by a request.
CACHE_RESULTS = ("hit", "miss", "bypass", "stale")
RETRY_DENIAL_REASONS = ("budget", "breaker")  # gateway/upstream: the retry budget, the breaker
# gateway/store/forwarding.py names the operations, gateway/store/guarded.py the reasons.
STORE_OPERATIONS = ("read", "write", "delete", "renew", "rate", "ping")
STORE_ERROR_REASONS = ("failed", "skipped", "refused")
# The HTTP listeners make their own children (gateway/api/server.py), with these values.
HTTP_LISTENERS = ("service", "metrics")
HTTP_REJECTION_REASONS = ("cap", "header_timeout")
# Every problem code with its status class, and `ok`: what a request's outcome can be.
REQUEST_OUTCOMES: dict[str, str] = {
    "ok": "2xx",
    **{entry.code: f"{entry.status // 100}xx" for entry in ERROR_CATALOGUE},
}
# A vendor call's outcome is `ok` or an error read from the vendor's answer (or its absence): the
# catalogue's vendor_* codes, less the breaker's, which answers before any call is made.
VENDOR_CALL_OUTCOMES = (
    "ok",
    *(
        entry.code
        for entry in ERROR_CATALOGUE
        if entry.code.startswith("vendor_") and entry.code != "vendor_circuit_open"
    ),
)


def share_between_processes(directory: str) -> None:
    """From now on, metrics made in this process and its forks keep their values in `directory`."""
    global _shared_dir
    os.environ[MULTIPROCESS_DIR_ENV] = directory  # read by each file-backed value as it is made
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _shared_dir = directory


class Metrics:
    """All of the gateway's metrics, in a registry of its own (one per app, so tests do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.exposed = self.registry  # what /metrics renders: this process, or every worker
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._cache_children: dict[tuple[str, str], Any] = {}
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by provider, outcome (problem code or ok) and status class.",
            ["provider", "outcome", "status_class"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "gateway_request_duration_seconds",
            "Time to answer a /auth request.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.vendor_calls = Counter(
            "gateway_vendor_calls",
            "Vendor calls made, by provider and outcome (ok or problem code).",
            ["provider", "outcome"],
            registry=r,
        )
        self.vendor_seconds = Histogram(
            "gateway_vendor_call_duration_seconds",
            "Vendor call latency, including failures.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_lookups = Counter(
            "gateway_cache_lookups",
            "Credential lookups, by provider and result (hit, miss, bypass, stale).",
            ["provider", "result"],
            registry=r,
        )
        self.store_errors = Counter(
            "gateway_store_errors",
            "Credential store calls that failed, by operation (read, write, delete, renew, rate, "
            "ping) and reason (failed: the backend was tried; skipped: it was marked down; refused: "
            "it answered an error). A failed read is a miss, a failed write is an answer not cached.",
            ["operation", "reason"],
            registry=r,
        )
        self.credential_lifetime_seconds = Histogram(
            "gateway_credential_lifetime_seconds",
            "Remaining lifetime of a credential when the vendor issued it.",
            ["provider"],
            buckets=(60, 300, 900, 1800, 3600, 7200, 21600, 86400, 604800),
            registry=r,
        )
        self.flight_waiters = Counter(
            "gateway_single_flight_waiters",
            "Requests that joined a vendor call already under way in this process.",
            registry=r,
        )
        self.lock_waits = Counter(
            "gateway_lock_waits",
            "Vendor calls this process did not make because another replica held the identity's lease.",
            registry=r,
        )
        self.lost_leases = Counter(
            "gateway_lock_leases_lost",
            "Leases found taken by another owner while this process was still calling the vendor.",
            registry=r,
        )
        self.refresh_ahead = Counter(
            "gateway_refresh_ahead",
            "Background refreshes started for credentials inside their refresh window.",
            ["provider"],
            registry=r,
        )
        self.cooldown_rejections = Counter(
            "gateway_failure_cooldown_rejections",
            "Requests answered from a remembered vendor rejection, without calling the vendor.",
            ["provider"],
            registry=r,
        )
        self.vendor_retries = Counter(
            "gateway_vendor_retries",
            "Vendor calls repeated after a transient failure.",
            ["provider"],
            registry=r,
        )
        self.retries_denied = Counter(
            "gateway_vendor_retries_denied",
            "Retries of a transient failure not made, by reason: budget (retries already add their "
            "share of the first attempts) or breaker (it opened meanwhile); the failure was the answer.",
            ["provider", "reason"],
            registry=r,
        )
        # Across workers (multiprocess mode only) a gauge shows the worst live worker: any open
        # breaker, any ban, any worker that cannot reach the store.
        self.breaker_state = Gauge(
            "gateway_breaker_state",
            "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
            ["provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.quota_ban_active = Gauge(
            "gateway_quota_ban_active",
            "1 while the vendor has this provider's app key call-limited (TOP code 7 and kin).",
            ["provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.outbound_rejections = Counter(
            "gateway_outbound_limited",
            "Requests refused (429) because the provider's outbound rate or concurrency limit was full.",
            ["provider"],
            registry=r,
        )
        self.store_up = Gauge(
            "gateway_store_up",
            "1 while the credential store answers (at least one of its Redis servers is up).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.store_nodes_down = Gauge(
            "gateway_store_nodes_down",
            "Redis servers of the credential store marked down (Cluster primaries, or the one "
            "server); the keys they hold fall back to the vendor until they answer again.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.config_reloads = Counter(
            "gateway_config_reloads",
            "Configuration reloads (a changed file or SIGHUP), by result: applied or rejected (the "
            "new configuration did not load; the old one is kept).",
            ["result"],
            registry=r,
        )
        self.config_last_reload_success = Gauge(
            "gateway_config_last_reload_success",
            "1 unless the last configuration reload was rejected (the gateway runs on older settings).",
            registry=r,
            multiprocess_mode="livemin",
        )
        # The HTTP listeners (gateway/api/server.py); `listener` is "service" or "metrics".
        self.http_connections = Gauge(
            "gateway_http_connections",
            "Client connections open now, by listener (across workers: the sum of the live ones).",
            ["listener"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.http_connections_rejected = Counter(
            "gateway_http_connections_rejected",
            "Connections the gateway closed without an answer, by listener and reason: cap "
            "(max_connections reached) or header_timeout (no complete request head in time).",
            ["listener", "reason"],
            registry=r,
        )
        self.http_parser_errors = Counter(
            "gateway_http_parser_errors",
            "Requests the HTTP parser refused (bad request line, header or framing), by listener.",
            ["listener"],
            registry=r,
        )
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
        keep their values; the HTTP listeners make their own (gateway/api/server.py)."""
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
