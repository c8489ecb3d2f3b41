"""Time, injectable: every part that reads the time takes a `Clock`, so tests move time instead of
sleeping through it (a breaker's open_s, a cooldown, an entry's expiry, a readiness grace).

`time()` is the wall clock in Unix seconds (what expiries and timestamps are written in); `monotonic()`
never jumps (what deadlines, windows and timeouts are measured in). Sleeping stays real: a part that
must wait for time to pass awaits asyncio.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
