"""In-process single flight: one task per key, and every caller of that key under way joins it.

A caller that leaves (a client disconnecting) does not cancel the task the others wait for: each
waits on a shield. The gateway runs two: one for store reads (a burst of identical cold requests is one
Redis read, not a burst on Redis) and one for vendor calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self, *, on_join: Callable[[], None] | None = None) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}
        self._started_for_caller: set[str] = set()  # tasks whose first caller has not joined yet
        self._on_join = on_join

    def __contains__(self, key: str) -> bool:
        return key in self._tasks

    async def run(self, key: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """`call()`'s result, shared with every caller of `key` while it runs."""
        task = self._tasks.get(key)
        if task is None:
            task = self.start(key, call)
        elif key in self._started_for_caller:
            self._started_for_caller.discard(key)  # the caller it was started for
        elif self._on_join is not None:
            self._on_join()
        return await asyncio.shield(task)

    def start(
        self, key: str, call: Callable[[], Coroutine[Any, Any, T]], *, for_caller: bool = False
    ) -> asyncio.Task[T]:
        """Start `call()` for `key` now; `for_caller`: its first `run` is the caller it is for (not a
        joiner)."""
        task = asyncio.ensure_future(call())
        self._tasks[key] = task
        if for_caller:
            self._started_for_caller.add(key)
        task.add_done_callback(lambda done: self._ended(key, done))
        return task

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()

    def _ended(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
            self._started_for_caller.discard(key)
        if not task.cancelled():
            task.exception()  # retrieved here so a task whose callers all left is not reported
