"""Log lines for events that come in bursts: the first at once, then at most one per interval per kind.

A store outage or a flood of malformed requests produces thousands of identical events a second; one line
each would drown the log (and cost the log pipeline more than the events cost us). Each kind of event is
logged when it first happens; repeats within `interval_s` are only counted, and the next line that kind
logs says how many there were (`repeated`). Counting every event is the metrics' job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import structlog


class BurstLog:
    def __init__(
        self,
        logger: Any,
        event: str,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._event = event
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, tuple[float, int]] = {}  # kind -> (logged at, repeats since)

    def note(self, kind: Hashable, **fields: Any) -> None:
        """One event of `kind`: logged unless one of its kind was logged less than `interval_s` ago."""
        now = self._clock()
        logged_at, repeats = self._last.get(kind, (float("-inf"), 0))
        if now - logged_at < self._interval_s:
            self._last[kind] = (logged_at, repeats + 1)
            return
        self._last[kind] = (now, 0)
        self._logger.warning(self._event, repeated=repeats, **fields)


def burst_log(name: str, event: str, *, interval_s: float = 10.0) -> BurstLog:
    """A BurstLog writing `event` lines through the structlog logger `name`."""
    return BurstLog(structlog.get_logger(name), event, interval_s=interval_s)
