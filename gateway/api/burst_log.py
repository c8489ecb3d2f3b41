"""Log lines for events a client can repeat at will (parser errors, refused connections): one line at
the first, then one line per quiet period with how many more came, so a flood costs a few lines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("gateway.http")

# Distinct (event, reason, peer) bursts kept at once; past this, new peers share one entry, so a
# flood from many addresses cannot grow the table (or the log) without bound.
MAX_BURSTS = 1024
OTHER_PEERS = "other"


@dataclass(slots=True)
class _Burst:
    level: str
    fields: dict[str, Any]  # repeated on the summary line
    timer: asyncio.TimerHandle | None = None
    repeated: int = 0


class BurstLog:
    """The first event of a burst is logged at once with all its details; later ones with the same
    event, reason and peer are only counted, and every `quiet_s` the count is logged (`repeated`) until
    a period passes without any. Details of the later ones (e.g. request ids) are not kept."""

    def __init__(self, quiet_s: float, **fields: Any) -> None:
        self._quiet_s = quiet_s
        self._fields = fields  # on every line, e.g. the listener
        self._bursts: dict[tuple[str, str, str], _Burst] = {}

    def note(
        self, event: str, *, reason: str, peer: str, level: str = "info", **details: Any
    ) -> None:
        key = (event, reason, peer)
        burst = self._bursts.get(key)
        if burst is None and len(self._bursts) >= MAX_BURSTS:
            key = (event, reason, OTHER_PEERS)
            burst = self._bursts.get(key)
        if burst is not None:
            burst.repeated += 1
            return
        fields = {**self._fields, "reason": reason, "peer": key[2]}
        burst = self._bursts[key] = _Burst(level, fields)
        getattr(log, level)(event, **fields, **details)
        burst.timer = asyncio.get_running_loop().call_later(self._quiet_s, self._summarize, key)

    def _summarize(self, key: tuple[str, str, str]) -> None:
        burst = self._bursts[key]
        if not burst.repeated:
            del self._bursts[key]  # the burst is over; the next event is a first again
            return
        self._log_repeats(key[0], burst)
        burst.timer = asyncio.get_running_loop().call_later(self._quiet_s, self._summarize, key)

    def flush(self) -> None:
        """Log what is still counted and stop the timers (the listener is closing)."""
        for key, burst in list(self._bursts.items()):
            if burst.timer is not None:
                burst.timer.cancel()
            self._log_repeats(key[0], burst)
        self._bursts.clear()

    def _log_repeats(self, event: str, burst: _Burst) -> None:
        if burst.repeated:
            fields = {**burst.fields, "repeated": burst.repeated, "window_s": self._quiet_s}
            getattr(log, burst.level)(event, **fields)
            burst.repeated = 0
