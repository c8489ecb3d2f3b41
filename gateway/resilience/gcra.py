"""GCRA (generic cell rate algorithm) token bucket in one process: one slot per `interval_s` on
average, `burst` at once.

The store's shared bucket (gateway.store.redis, TAKE_RATE_SLOT_LUA) is the same arithmetic in Lua on
the server's clock; this one serves per-process limits and the fallback while the store is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LocalBucket:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next request

    def take(self, interval_s: float, burst: int) -> float:
        """0 when a slot was taken, else the seconds to wait before asking again."""
        now = self._clock()
        tat = max(self._tat, now)
        allow_at = tat + interval_s - burst * interval_s
        if allow_at > now:
            return allow_at - now
        self._tat = tat + interval_s
        return 0.0
