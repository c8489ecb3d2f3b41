"""What many tests share: waiting for a condition, and clocks the tests move."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], limit_s: float = 5.0, *, every_s: float = 0.02
) -> float:
    """Poll `condition` (sync or async) until it holds; how long that took. Fails the test with an
    AssertionError when it does not hold within `limit_s`."""
    started = time.monotonic()
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        assert time.monotonic() - started < limit_s, f"condition not met within {limit_s} s"
        await asyncio.sleep(every_s)


class ShiftedClock:
    """The machine's clocks as the gateway sees them, moved by tests (gateway.clock.Clock).

    `offset` shifts the wall clock alone (a host whose clock is off, or time that passed for the
    cache's expiries); `advance(s)` moves both clocks as passing time would (deadlines, breakers,
    grace periods) — so a test lets time pass without sleeping through it."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self._advanced = 0.0

    def time(self) -> float:
        return time.time() + self.offset + self._advanced

    def monotonic(self) -> float:
        return time.monotonic() + self._advanced

    def advance(self, seconds: float) -> None:
        self._advanced += seconds
