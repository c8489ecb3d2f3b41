"""A circuit breaker: closed → open on repeated failures → half-open probe → closed or open again.

One type serves both the vendor calls (one breaker per provider) and the credential store (one per
Redis node): what differs is only the `BreakerPolicy`. The breaker opens when either rule trips:

- `consecutive_failures` outcomes in a row failed — a dead dependency is cut off within that many calls,
  whatever the traffic (a ratio alone needs `min_calls` in a window, which a quiet replica never reaches);
- at least `min_calls` outcomes in the last `window_s` and a share of failures ≥ `failure_ratio` — a
  dependency that mostly fails, with the odd success between.

While open, `allow()` answers the seconds until a call may go again; after `open_s` one probe at a time is
let through (`half-open`) and its outcome closes or re-opens the circuit. Callers record one outcome per
call they made (a vendor attempt, a store command), and `release_probe()` when a let-through call ended
without an outcome to judge by (refused before it was sent). A probe that never reports (its caller was
cancelled) stops counting after `open_s`, when another is let through: the circuit cannot stick.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

PROBE_RETRY_AFTER_S = 1.0  # what a caller is told while another caller's probe is under way


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to open (either rule) and for how long; None turns a rule off."""

    open_s: float
    consecutive_failures: int | None = None
    failure_ratio: float | None = None
    min_calls: int = 20
    window_s: float = 30.0


class Breaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._on_change = on_change
        self._outcomes: deque[tuple[float, bool]] = deque()  # (when, failed), for the ratio rule
        self._failures = 0  # failed outcomes in the window
        self._in_a_row = 0  # consecutive failed outcomes
        self._opened_at = 0.0
        self._probing = False
        self._probe_started = 0.0
        self.state = BreakerState.CLOSED

    def allow(self) -> float | None:
        """None when a call may go now (it may be the half-open probe); else seconds to wait."""
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.OPEN:
            remaining = self._opened_at + self._policy.open_s - self._clock()
            if remaining > 0:
                return remaining
            self._set(BreakerState.HALF_OPEN)
        now = self._clock()
        if self._probing and now - self._probe_started < self._policy.open_s:
            return PROBE_RETRY_AFTER_S
        self._probing = True
        self._probe_started = now
        return None

    def record(self, *, failed: bool) -> None:
        """The outcome of one call that `allow()` let through."""
        now = self._clock()
        if self.state is not BreakerState.CLOSED:
            # A probe's outcome decides; outcomes of calls let through before the circuit opened are
            # moot (they reflect the same trouble that opened it).
            if self._probing:
                self._probing = False
                self._reset()
                if failed:
                    self._open(now)
                else:
                    self._set(BreakerState.CLOSED)
            return
        self._in_a_row = self._in_a_row + 1 if failed else 0
        if self._policy.failure_ratio is not None:
            self._outcomes.append((now, failed))
            self._failures += failed
            horizon = now - self._policy.window_s
            while self._outcomes and self._outcomes[0][0] < horizon:
                self._failures -= self._outcomes.popleft()[1]
        if self._trips():
            self._open(now)

    def release_probe(self) -> None:
        """A let-through call ended without an outcome to judge by: let another probe go."""
        self._probing = False

    def _trips(self) -> bool:
        policy = self._policy
        if (
            policy.consecutive_failures is not None
            and self._in_a_row >= policy.consecutive_failures
        ):
            return True
        calls = len(self._outcomes)
        return (
            policy.failure_ratio is not None
            and calls >= policy.min_calls
            and self._failures >= policy.failure_ratio * calls
        )

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._reset()
        self._set(BreakerState.OPEN)

    def _reset(self) -> None:
        self._outcomes.clear()
        self._failures = 0
        self._in_a_row = 0

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
