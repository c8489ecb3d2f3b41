"""Each store command's deadline, without a timer per command: one ticker for all commands in flight.

A timer per command (`asyncio.timeout` arms and cancels a loop timer) costs ~4 µs under uvloop,
measured — as much as the store's own work on a Redis hit, which makes one command (a miss makes
four). Here a command notes its deadline and task in an insertion-ordered dict: the timeout is one
value per store, so deadlines come in the order commands start and the oldest is always first. One
timer, armed while commands are in flight (it stops at the first tick that finds none), wakes every
`tick_s` and cancels each command past its deadline, which then raises TimeoutError. A command
gives up between its deadline and `tick_s` after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

T = TypeVar("T")

TICKS_PER_TIMEOUT: Final = 10  # a command overruns its deadline by at most a tenth of it
MIN_TICK_S: Final = 0.005


class _Command:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any]) -> None:
        self.deadline = deadline
        self.task = task
        self.expired = False


class CommandDeadlines:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tick_s = max(MIN_TICK_S, timeout_s / TICKS_PER_TIMEOUT)
        self._in_flight: dict[_Command, None] = {}
        self._ticker: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def in_flight(self) -> int:
        """How many commands are waiting for an answer."""
        return len(self._in_flight)

    @property
    def ticking(self) -> bool:
        """Whether the ticker is armed: from the first command in flight to the first tick that finds
        none (arming and cancelling it as each command starts and ends would be a timer per command)."""
        return self._ticker is not None

    async def run(self, send: Callable[[], Awaitable[T]]) -> T:
        """`send()`'s result, or TimeoutError once it runs past the deadline. A cancellation from
        elsewhere stays a cancellation — also one that redis-py swallowed: on Python 3.11 the
        asyncio.wait_for it times socket writes with drops a cancel() that lands as the write completes
        (CPython gh-86296), and a cancelled subscriber would loop forever, so a cancel request still
        pending when the command returns is delivered."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("store commands run in a task")
        loop = task.get_loop()
        if loop is not self._loop:
            self._loop, self._ticker = loop, None  # a new loop: what the old one had is gone
            self._in_flight.clear()
        command = _Command(loop.time() + self.timeout_s, task)
        self._in_flight[command] = None
        if self._ticker is None:
            self._ticker = loop.call_later(self.tick_s, self._tick)
        cancelling = task.cancelling()
        try:
            result = await send()
        except asyncio.CancelledError:
            if command.expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        except BaseException:
            self._settle(command, cancelling)
            raise
        finally:
            self._in_flight.pop(command, None)
        self._settle(command, cancelling)
        return result

    def _settle(self, command: _Command, cancelling: int) -> None:
        """After a command that did not raise CancelledError: take back our own cancel if it was
        swallowed, and deliver one from elsewhere that was."""
        task = command.task
        if command.expired:
            task.uncancel()
        if task.cancelling() > cancelling:
            raise asyncio.CancelledError

    def _tick(self) -> None:
        self._ticker = None
        loop = self._loop
        if loop is None:
            return
        now, in_flight = loop.time(), self._in_flight
        while in_flight:
            command = next(iter(in_flight))
            if command.deadline > now:
                break
            del in_flight[command]
            command.expired = True
            command.task.cancel()
        if in_flight:
            self._ticker = loop.call_later(self.tick_s, self._tick)
