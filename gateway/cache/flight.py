"""In-process single flight: identical concurrent work done once, every caller under way sharing it.

`SingleFlight` (vendor calls) runs each key's work as a task that every caller waits on through a
shield, so a caller that leaves (a client disconnecting) does not cancel what the others wait for, and
work started for callers that all left still finishes (a vendor call whose answer is cached).

`SharedReads` (store reads: a burst of identical cold requests is one Redis read, not a burst on Redis)
needs neither: a read is short and worth nothing once its callers have gone. Its first caller awaits
the read itself — no task, no shield on the path every Redis hit takes — and hands the answer to the
callers that came meanwhile; if it fails or is cancelled, they read again themselves (one of them
first, the others sharing its read), so a caller that leaves costs the others a round trip, never an
error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Generic, TypeVar, cast

T = TypeVar("T")

# What a shared read's waiters get when its first caller had no answer for them.
_READ_AGAIN: Final = object()


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


class SharedReads(Generic[T]):
    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[object]]] = {}  # key -> callers waiting on it

    async def run(self, key: str, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`'s result, shared with every caller of `key` that comes while it runs."""
        while (waiting := self._waiting.get(key)) is not None:
            answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            waiting.append(answer)
            result = await answer  # a caller cancelled here cancels only its own future
            if result is not _READ_AGAIN:
                return cast(T, result)
        waiters: list[asyncio.Future[object]] = []
        self._waiting[key] = waiters
        outcome: object = _READ_AGAIN
        try:
            found = outcome = await read()
            return found
        finally:
            del self._waiting[key]
            for answer in waiters:
                if not answer.done():
                    answer.set_result(outcome)
