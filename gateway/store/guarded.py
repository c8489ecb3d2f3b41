"""Store health: a backend that keeps failing is skipped for a moment, then probed again.

Without this, every request during a Redis outage would wait out a socket timeout before falling back
to the vendor. With it, after `consecutive_failures` failures in a row the backend is marked down: calls
fail at once (StoreUnavailable, "skipped") and, every `open_s`, one call goes through as a probe whose
success marks it up again. It is the same breaker the vendor calls use, with a store's policy: a quick
probe (a restarted Redis is used again within a fraction of a second) and three strikes, so one slow
answer under a burst is a blip, not an outage.

Only the backend being unreachable counts against it; an error reply or a Cluster redirection means the
backend answered. A Redis Cluster has one guard per node (gateway.store.cluster), so a dead node takes
only the keys of its slots out of the cache. Each guard's state feeds /readyz and `gateway_store_up`;
each failed or skipped call is reported through `on_failure`, which the app counts and logs. What the
guards report to and the clock they keep time by is one `Guarding`, handed down to every guard made.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import structlog

from gateway.resilience.breaker import Breaker, BreakerPolicy, BreakerState
from gateway.store import CredentialStore, StoreUnavailable
from gateway.store.forwarding import ForwardingStore
from gateway.tracing import span_event

log = structlog.get_logger("gateway.store")
T = TypeVar("T")

STORE_POLICY: Final = BreakerPolicy(open_s=0.25, consecutive_failures=3)

OnFailure = Callable[[str, str], None]  # (operation, reason): reason is failed, skipped or refused


@dataclass(frozen=True)
class Guarding:
    """Whom a health guard tells (`on_change`: up or down; `on_failure`: a failed or skipped call) and
    the clock it keeps time in state by (the app's, so the readiness grace follows a test's clock)."""

    on_change: Callable[[GuardedStore], None] | None = None
    on_failure: OnFailure | None = None
    clock: Callable[[], float] = time.monotonic


UNREPORTED: Final = Guarding()


class GuardedStore(ForwardingStore):
    """A `CredentialStore` that remembers its backend's health and fails fast while it is down."""

    def __init__(
        self,
        inner: CredentialStore,
        *,
        name: str = "redis",
        policy: BreakerPolicy = STORE_POLICY,
        guarding: Guarding = UNREPORTED,
    ) -> None:
        super().__init__(inner)
        self.name = name  # the backend (a node's host:port in a Cluster), for /readyz and logs
        self._guarding = guarding
        self._reported_up = True
        self._reported_at = guarding.clock()
        self._breaker = Breaker(policy, clock=guarding.clock, on_change=self._changed)

    @property
    def up(self) -> bool:
        """False from the moment the backend is marked down until a probe succeeds."""
        return self._breaker.state is BreakerState.CLOSED

    def seconds_in_state(self) -> float:
        """How long the backend has been up, or down, without a change."""
        return self._guarding.clock() - self._reported_at

    async def _forward(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        if self._breaker.allow() is not None:
            self._failed(operation, "skipped")
            raise StoreUnavailable(f"{self.name} is marked down; it will be tried again shortly")
        try:
            result = await call()
        except StoreUnavailable as error:
            # An error reply or a redirection is an answer: the backend is up.
            self._breaker.record(failed=error.kind == "down")
            span_event("store", {"store.operation": operation, "store.failed": error.kind})
            if error.kind != "moved":  # a redirection is followed by the Cluster store, not lost
                self._failed(operation, "failed" if error.kind == "down" else "refused")
            raise
        except BaseException:
            self._breaker.release_probe()  # cancelled: no outcome to judge the backend by
            raise
        self._breaker.record(failed=False)
        span_event("store", {"store.operation": operation, "store.backend": self.name})
        return result

    def _failed(self, operation: str, reason: str) -> None:
        if self._guarding.on_failure is not None:
            self._guarding.on_failure(operation, reason)

    def _changed(self, state: BreakerState) -> None:
        # Half-open is still down, and a failed probe re-opens: only up <-> down is news.
        if self.up == self._reported_up:
            return
        self._reported_up = self.up
        self._reported_at = self._guarding.clock()
        log.warning("store_up" if self.up else "store_down", store=self.name)
        if self._guarding.on_change is not None:
            self._guarding.on_change(self)
