"""Waiting for the vendor's answer to change: a call with `wait_s` (the bind check) asks the vendor again
and again until the answer settles (bound) or the wait ends.

Concurrent waiters for one identity share one poll loop — the vendor sees one poll at a time for it —
but each keeps its own deadline: a caller that joined a longer poll gets the latest answer when its own
`wait_s` is over, and the loop runs only as long as its longest waiter. Waiting requests are capped per
client and per provider (each call names its caps); beyond, a 429 with Retry-After (when the soonest
of them ends). The vendor sees at most one poll per loop per
interval (first after `FIRST_INTERVAL_S`, then growing to `MAX_INTERVAL_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.clock import Clock
from gateway.errors import PollsLimited

FIRST_INTERVAL_S, MAX_INTERVAL_S, GROWTH = 0.5, 3.0, 1.5
T = TypeVar("T")


@dataclass
class _Loop(Generic[T]):
    ends_at: float  # the longest waiter's deadline (monotonic)
    latest: T | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Polls(Generic[T]):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._loops: dict[str, _Loop[T]] = {}
        self._waiting: Counter[tuple[str, str]] = Counter()  # ("client" | "provider", name)
        self._deadlines: dict[tuple[str, str], list[float]] = {}

    def cancel_all(self) -> None:
        """Stop every poll loop (shutting down)."""
        for loop in self._loops.values():
            if loop.task is not None:
                loop.task.cancel()

    async def wait(
        self,
        key: str,
        wait_s: float,
        poll: Callable[[], Awaitable[T]],
        settled: Callable[[T], bool],
        *,
        client: tuple[str, int],
        provider: tuple[str, int],
    ) -> T:
        """The answer once `settled` (or the latest when `wait_s` is over), polling through `poll`.

        `client` and `provider` are (name, how many waiting requests it may have at once)."""
        deadline = self._clock.monotonic() + wait_s
        with self._slot(client, provider, deadline):
            loop = self._loops.get(key)
            if loop is None:
                loop = self._loops[key] = _Loop(ends_at=deadline)
                loop.task = asyncio.ensure_future(self._run(key, loop, poll, settled))
            loop.ends_at = max(loop.ends_at, deadline)
            return await self._answer(loop, deadline, settled)

    async def _answer(self, loop: _Loop[T], deadline: float, settled: Callable[[T], bool]) -> T:
        task = loop.task
        if task is None:  # pragma: no cover - set right after the loop is made
            raise RuntimeError("poll loop without a task")
        while True:
            latest = loop.latest
            if latest is not None and (settled(latest) or self._clock.monotonic() >= deadline):
                return latest
            if task.done():
                await asyncio.shield(task)  # raises the loop's failure, if it failed
                if loop.latest is None:  # pragma: no cover - a loop that ends has an answer
                    raise RuntimeError("poll loop ended without an answer")
                return loop.latest
            loop.changed.clear()
            # Until the first answer, wait for it whatever the deadline: there is nothing to return.
            timeout = None if latest is None else max(0.0, deadline - self._clock.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.changed.wait(), timeout)

    async def _run(
        self,
        key: str,
        loop: _Loop[T],
        poll: Callable[[], Awaitable[T]],
        settled: Callable[[T], bool],
    ) -> None:
        interval = FIRST_INTERVAL_S
        try:
            while True:
                loop.latest = await poll()
                loop.changed.set()
                if settled(loop.latest) or self._clock.monotonic() + interval >= loop.ends_at:
                    return
                await asyncio.sleep(interval)
                interval = min(MAX_INTERVAL_S, interval * GROWTH)
        finally:
            if self._loops.get(key) is loop:
                del self._loops[key]
            loop.changed.set()

    @contextlib.contextmanager
    def _slot(
        self, client: tuple[str, int], provider: tuple[str, int], deadline: float
    ) -> Iterator[None]:
        """Count this waiter against its client's and its provider's caps (429 beyond either)."""
        holders = (("client", *client), ("provider", *provider))
        for kind, name, cap in holders:
            if self._waiting[kind, name] >= cap:
                soonest = min(self._deadlines[kind, name])
                retry_after = max(1, round(soonest - self._clock.monotonic() + 0.5))
                raise PollsLimited(
                    f"{kind} {name!r} already has {cap} polls waiting; try again later",
                    provider=provider[0],
                    retry_after_s=retry_after,
                )
        for kind, name, _ in holders:
            self._waiting[kind, name] += 1
            self._deadlines.setdefault((kind, name), []).append(deadline)
        try:
            yield
        finally:
            for kind, name, _ in holders:
                self._waiting[kind, name] -= 1
                self._deadlines[kind, name].remove(deadline)
                if not self._waiting[kind, name]:
                    del self._waiting[kind, name], self._deadlines[kind, name]
