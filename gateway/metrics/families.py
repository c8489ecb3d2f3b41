"""The metric families /metrics exposes, and the label values each can take: the contract the dashboard
and the alerts read (deploy/monitoring), and what docs/reference/metrics.md is generated from. An
attribute of `Metrics` (gateway/metrics/__init__.py) per family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.catalogue import ERROR_CATALOGUE

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# The label values each labelled family can take, so that `Metrics.initialise` makes every child the
# dashboard and the alerts read at 0 before it first happens: a counter that does not exist yet is
# "No data" on a panel and an empty side of a ratio, where an operator needs to read 0. The sets are
# bounded by the code (and the providers by the config), never by a request.
CACHE_RESULTS = ("hit", "miss", "bypass", "stale")
RETRY_DENIAL_REASONS = ("budget", "breaker")  # gateway/upstream: the retry budget, the breaker
# gateway/store/forwarding.py names the operations, gateway/store/guarded.py the reasons.
STORE_OPERATIONS = ("read", "write", "delete", "renew", "rate", "ping")
STORE_ERROR_REASONS = ("failed", "skipped", "refused")
# The HTTP listeners make their own children (gateway/api/edge.py), with these values.
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


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family as /metrics exposes it: its type, name, help and label names."""

    type: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # histograms only
    multiprocess_mode: str | None = None  # gauges only: how the workers' values combine

    def make(self, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
        options: dict[str, Any] = {"registry": registry}
        if self.buckets is not None:
            options["buckets"] = self.buckets
        if self.multiprocess_mode is not None:
            options["multiprocess_mode"] = self.multiprocess_mode
        return self.type(self.name, self.help, self.labels, **options)


# Metrics attribute -> its family. The names, help and labels are the contract the dashboard and the
# alerts read (deploy/monitoring); docs/reference/metrics.md is generated from them.
FAMILIES: dict[str, Family] = {
    "requests": Family(
        Counter,
        "gateway_requests",
        "Requests answered, by provider, outcome (problem code or ok) and status class.",
        ("provider", "outcome", "status_class"),
    ),
    "request_seconds": Family(
        Histogram,
        "gateway_request_duration_seconds",
        "Time to answer a /auth request.",
        ("provider",),
        buckets=LATENCY_BUCKETS,
    ),
    "vendor_calls": Family(
        Counter,
        "gateway_vendor_calls",
        "Vendor calls made, by provider and outcome (ok or problem code).",
        ("provider", "outcome"),
    ),
    "vendor_seconds": Family(
        Histogram,
        "gateway_vendor_call_duration_seconds",
        "Vendor call latency, including failures.",
        ("provider",),
        buckets=LATENCY_BUCKETS,
    ),
    "cache_lookups": Family(
        Counter,
        "gateway_cache_lookups",
        "Credential lookups, by provider and result (hit, miss, bypass, stale).",
        ("provider", "result"),
    ),
    "store_errors": Family(
        Counter,
        "gateway_store_errors",
        "Credential store calls that failed, by operation (read, write, delete, renew, rate, "
        "ping) and reason (failed: the backend was tried; skipped: it was marked down; refused: "
        "it answered an error). A failed read is a miss, a failed write is an answer not cached.",
        ("operation", "reason"),
    ),
    "credential_lifetime_seconds": Family(
        Histogram,
        "gateway_credential_lifetime_seconds",
        "Remaining lifetime of a credential when the vendor issued it.",
        ("provider",),
        buckets=(60, 300, 900, 1800, 3600, 7200, 21600, 86400, 604800),
    ),
    "flight_waiters": Family(
        Counter,
        "gateway_single_flight_waiters",
        "Requests that joined a vendor call already under way in this process.",
    ),
    "lock_waits": Family(
        Counter,
        "gateway_lock_waits",
        "Vendor calls this process did not make because another replica held the identity's lease.",
    ),
    "lost_leases": Family(
        Counter,
        "gateway_lock_leases_lost",
        "Leases found taken by another owner while this process was still calling the vendor.",
    ),
    "refresh_ahead": Family(
        Counter,
        "gateway_refresh_ahead",
        "Background refreshes started for credentials inside their refresh window.",
        ("provider",),
    ),
    "cooldown_rejections": Family(
        Counter,
        "gateway_failure_cooldown_rejections",
        "Requests answered from a remembered vendor rejection, without calling the vendor.",
        ("provider",),
    ),
    "vendor_retries": Family(
        Counter,
        "gateway_vendor_retries",
        "Vendor calls repeated after a transient failure.",
        ("provider",),
    ),
    "retries_denied": Family(
        Counter,
        "gateway_vendor_retries_denied",
        "Retries of a transient failure not made, by reason: budget (retries already add their "
        "share of the first attempts) or breaker (it opened meanwhile); the failure was the answer.",
        ("provider", "reason"),
    ),
    # Across workers (multiprocess mode only) a gauge shows the worst live worker: any open
    # breaker, any ban, any worker that cannot reach the store.
    "breaker_state": Family(
        Gauge,
        "gateway_breaker_state",
        "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
        ("provider",),
        multiprocess_mode="livemax",
    ),
    "quota_ban_active": Family(
        Gauge,
        "gateway_quota_ban_active",
        "1 while the vendor has this provider's app key call-limited (TOP code 7 and kin).",
        ("provider",),
        multiprocess_mode="livemax",
    ),
    "outbound_rejections": Family(
        Counter,
        "gateway_outbound_limited",
        "Requests refused (429) because the provider's outbound rate or concurrency limit was full.",
        ("provider",),
    ),
    "store_up": Family(
        Gauge,
        "gateway_store_up",
        "1 while the credential store answers (at least one of its Redis servers is up).",
        multiprocess_mode="livemin",
    ),
    "store_nodes_down": Family(
        Gauge,
        "gateway_store_nodes_down",
        "Redis servers of the credential store marked down (Cluster primaries, or the one "
        "server); the keys they hold fall back to the vendor until they answer again.",
        multiprocess_mode="livemax",
    ),
    "config_reloads": Family(
        Counter,
        "gateway_config_reloads",
        "Configuration reloads (a changed file or SIGHUP), by result: applied or rejected (the "
        "new configuration did not load; the old one is kept).",
        ("result",),
    ),
    "config_last_reload_success": Family(
        Gauge,
        "gateway_config_last_reload_success",
        "1 unless the last configuration reload was rejected (the gateway runs on older settings).",
        multiprocess_mode="livemin",
    ),
    # The HTTP listeners (gateway/api/edge.py); `listener` is "service" or "metrics".
    "http_connections": Family(
        Gauge,
        "gateway_http_connections",
        "Client connections open now, by listener (across workers: the sum of the live ones).",
        ("listener",),
        multiprocess_mode="livesum",
    ),
    "http_connections_rejected": Family(
        Counter,
        "gateway_http_connections_rejected",
        "Connections the gateway closed without an answer, by listener and reason: cap "
        "(max_connections reached) or header_timeout (no complete request head in time).",
        ("listener", "reason"),
    ),
    "http_parser_errors": Family(
        Counter,
        "gateway_http_parser_errors",
        "Requests the HTTP parser refused (bad request line, header or framing), by listener.",
        ("listener",),
    ),
}
