"""A provider's retries, circuit breaker and outbound limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)


class RetrySettings(BaseModel):
    """Retries of transient vendor failures, with full-jitter exponential backoff, within a budget."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    # 5 attempts: at 30 % transient failures, 1 - 0.3^5 = 99.76 % of logins succeed, ~1.43 calls each.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 5
    """Attempts per login, the first included; only transient failures (network, HTTP 5xx, the
    vendor's own 'unavailable' codes) are retried."""

    base_delay_s: Annotated[float, Field(ge=0, le=10)] = 0.1
    """Backoff before the first retry; each further retry doubles it, and the actual wait is drawn
    at random up to it (full jitter)."""

    max_delay_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    """Cap on the backoff before one retry."""

    # Retries per first attempt over budget_window_s (per replica): a vendor that is down sees at
    # most (1 + budget_ratio) x the logins; 30 % transient faults need ~0.43, well inside 0.5.
    budget_ratio: Annotated[float, Field(ge=0, le=10)] = 0.5
    """Retries may add at most this share of the first attempts made over `budget_window_s` (per
    replica and provider): 0.5 lets a vendor that is down see at most 1.5 x the logins."""

    budget_min_retries: Annotated[int, Field(ge=0)] = 10
    """Retries always allowed per window whatever the ratio, so that at low traffic a single login
    keeps its retries."""

    budget_window_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """The sliding window over which first attempts and retries are counted for the budget."""


class BreakerSettings(BaseModel):
    """Per-provider circuit breaker over the vendor attempts (each retry counts), per replica.

    It opens when `consecutive_failures` attempts in a row failed — a dead vendor is cut off within
    that many attempts at any traffic — or when, among at least `min_calls` attempts in the last
    `window_s`, a share `failure_ratio` failed. The defaults stay closed under 30 % transient faults
    (twelve in a row has odds of 0.3^12, about 5e-7 per attempt)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    window_s: Annotated[float, Field(gt=0)] = 30.0
    """The sliding window of attempts the failure ratio is taken over."""

    min_calls: Annotated[int, Field(ge=1)] = 20
    """Attempts needed in the window before the ratio can open the breaker."""

    failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    """Share of failed attempts in the window (at least `min_calls`) that opens the breaker."""

    consecutive_failures: Annotated[int, Field(ge=1)] | None = 12
    """Failed attempts in a row that open the breaker at any traffic (null: only the ratio opens
    it)."""

    open_s: Annotated[float, Field(gt=0)] = 15.0
    """How long an open breaker answers 503 vendor_circuit_open before it lets one probe call
    through."""


class LimitSettings(BaseModel):
    """Outbound limits that keep a vendor account under its quota (null: unlimited).

    On by default: one client's flood must not earn the app key a quota ban (TOP code 7) that every
    other client shares. Size `rate_per_s` a little under the vendor's quota for this app key (it is
    shared by every replica through Redis), and `max_concurrency` to the rate times the vendor's p99
    latency, doubled, divided by the replicas."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    rate_per_s: Annotated[float, Field(gt=0)] | None = 50.0
    """Vendor calls per second for this provider, shared by every replica through a GCRA bucket in
    Redis (null: no rate limit)."""

    burst: Annotated[int, Field(ge=1)] = 50
    """Calls the rate bucket lets through at once after a quiet period."""

    max_concurrency: Annotated[int, Field(ge=1)] | None = 64
    """Vendor calls in flight at once for this provider, per replica (null: no cap)."""
