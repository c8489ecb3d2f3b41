"""Circuit breaker per provider, per process: closed → open on a failure ratio → half-open probe.

Only vendor trouble counts as a failure (transport errors and the vendor's own transient errors); a
caller's bad input or a quota answer says nothing about the vendor's health. While open, calls fail at
once with 503 and Retry-After instead of piling onto a failing vendor; after `open_s` one probe at a time
is let through, and its outcome closes or re-opens the circuit.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

from gateway.errors import CircuitOpen
from gateway.settings import BreakerSettings


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Breaker:
    def __init__(
        self,
        settings: BreakerSettings,
        *,
        on_change: Callable[[BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._on_change = on_change
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._failures = 0
        self.state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probing = False

    def before_call(self, provider: str) -> None:
        """Raise CircuitOpen unless a call may go to the vendor now."""
        if self.state is BreakerState.OPEN:
            remaining = self._opened_at + self._settings.open_s - self._clock()
            if remaining > 0:
                raise CircuitOpen(
                    f"the vendor is failing; calls resume in {remaining:.0f} s",
                    provider=provider,
                    retry_after_s=max(1, round(remaining)),
                )
            self._set(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self._probing:
                raise CircuitOpen(
                    "the vendor is failing; a probe call is under way",
                    provider=provider,
                    retry_after_s=1,
                )
            self._probing = True

    def release_probe(self) -> None:
        """A let-through call ended without a vendor answer to judge by: let another probe go."""
        self._probing = False

    def record(self, *, failed: bool) -> None:
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            self._reset_window()
            if failed:
                self._open(now)
            else:
                self._set(BreakerState.CLOSED)
            return
        self._outcomes.append((now, failed))
        self._failures += failed
        self._forget_before(now - self._settings.window_s)
        calls = len(self._outcomes)
        if (
            calls >= self._settings.min_calls
            and self._failures / calls >= self._settings.failure_ratio
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._reset_window()
        self._set(BreakerState.OPEN)

    def _forget_before(self, horizon: float) -> None:
        while self._outcomes and self._outcomes[0][0] < horizon:
            _, failed = self._outcomes.popleft()
            self._failures -= failed

    def _reset_window(self) -> None:
        self._outcomes.clear()
        self._failures = 0

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
