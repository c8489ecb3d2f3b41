"""Log lines for events that come in bursts (parser errors, refused connections, a store that is down):
one line at the first, then one line per quiet period with how many more came, so a flood costs a few
lines. Counting every event is the metrics' job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

# Distinct bursts kept at once; past this, new ones share one entry per event, so a flood from many
# addresses cannot grow the table (or the log) without bound.
MAX_BURSTS = 1024
OTHERS: Mapping[str, str] = {"burst": "other"}


@dataclass(slots=True)
class _Burst:
    level: str
    fields: dict[str, Any]  # repeated on the summary line
    timer: asyncio.TimerHandle | None = None
    repeated: int = 0


class BurstLog:
    """The first event of a burst is logged at once with all its details; later ones of the same event
    and `burst` fields (say, reason and peer) are only counted, and every `quiet_s` the count is logged
    (`repeated`) until a period passes without any. Details of the later ones are not kept."""

    def __init__(self, logger_name: str, quiet_s: float = 10.0, **fields: Any) -> None:
        self._log = structlog.get_logger(logger_name)
        self._quiet_s = quiet_s
        self._fields = fields  # on every line, e.g. the listener
        self._bursts: dict[tuple[str, tuple[tuple[str, str], ...]], _Burst] = {}

    def note(
        self, event: str, burst: Mapping[str, str], *, level: str = "info", **details: Any
    ) -> None:
        key = (event, tuple(burst.items()))
        found = self._bursts.get(key)
        if found is None and len(self._bursts) >= MAX_BURSTS:
            key, burst = (event, tuple(OTHERS.items())), OTHERS
            found = self._bursts.get(key)
        if found is not None:
            found.repeated += 1
            return
        fields = {**self._fields, **burst}
        found = self._bursts[key] = _Burst(level, fields)
        getattr(self._log, level)(event, **fields, **details)
        found.timer = asyncio.get_running_loop().call_later(self._quiet_s, self._summarize, key)

    def _summarize(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> None:
        burst = self._bursts[key]
        if not burst.repeated:
            del self._bursts[key]  # the burst is over; the next event is a first again
            return
        self._log_repeats(key[0], burst)
        burst.timer = asyncio.get_running_loop().call_later(self._quiet_s, self._summarize, key)

    def flush(self) -> None:
        """Log what is still counted and stop the timers (closing down)."""
        for key, burst in list(self._bursts.items()):
            if burst.timer is not None:
                burst.timer.cancel()
            self._log_repeats(key[0], burst)
        self._bursts.clear()

    def _log_repeats(self, event: str, burst: _Burst) -> None:
        if burst.repeated:
            fields = {**burst.fields, "repeated": burst.repeated, "window_s": self._quiet_s}
            getattr(self._log, burst.level)(event, **fields)
            burst.repeated = 0
