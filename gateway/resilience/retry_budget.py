"""A retry budget: retries may add at most a share of the first attempts made over a sliding window.

In the spirit of Envoy's retry budgets and gRPC's retry throttling: against a vendor that fails now and
then, every failed attempt still gets its retry (30 % transient faults need ~0.43 retries per call, well
inside a 50 % budget); against a vendor that is down, retries stop multiplying the load — it sees at most
(1 + ratio) times the calls, however many attempts each call was allowed. `min_retries` is a floor per window
so that at low traffic a single call still gets all its retries.

The window is kept as `BUCKETS` counters of first attempts and retries, so memory stays constant at any
rate; the oldest bucket falls out as time moves on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

BUCKETS = 10


@dataclass(frozen=True, slots=True)
class RetryBudgetPolicy:
    ratio: float = 0.5  # retries per first attempt, over the window
    min_retries: int = 10  # retries always allowed per window, whatever the traffic
    window_s: float = 10.0


class RetryBudget:
    def __init__(
        self, policy: RetryBudgetPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._bucket_s = policy.window_s / BUCKETS
        self._firsts = [0] * BUCKETS
        self._retries = [0] * BUCKETS
        self._current = int(clock() / self._bucket_s)  # index of the newest bucket, unwrapped

    def note_first_attempt(self) -> None:
        self._firsts[self._advance()] += 1

    def try_spend(self) -> bool:
        """True (and the retry is counted) when the budget allows one more retry now."""
        slot = self._advance()
        allowed = max(self._policy.min_retries, self._policy.ratio * sum(self._firsts))
        if sum(self._retries) >= allowed:
            return False
        self._retries[slot] += 1
        return True

    def _advance(self) -> int:
        """The newest bucket's slot, after emptying the buckets the clock has moved past."""
        now = int(self._clock() / self._bucket_s)
        for passed in range(self._current + 1, min(now, self._current + BUCKETS) + 1):
            self._firsts[passed % BUCKETS] = self._retries[passed % BUCKETS] = 0
        self._current = max(self._current, now)
        return self._current % BUCKETS
