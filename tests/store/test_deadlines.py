"""Command deadlines (gateway/store/deadlines.py): one ticker for every command in flight.

The hung real Redis of tests/store/test_store_contract.py shows a store call giving up in time; these
pin down the cancellation rules, with commands that never answer, answer late or swallow a cancel as
redis-py can. A deadline of 0 expires at the ticker's first tick, so no test waits out a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from gateway.store.deadlines import MIN_TICK_S, CommandDeadlines


async def never_answers() -> None:
    await asyncio.get_running_loop().create_future()


async def swallows_a_cancel() -> str:
    """What redis-py may do (CPython gh-86296): a cancel that lands as a write completes is lost."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.get_running_loop().create_future()
    return "answered anyway"


def test_the_tick_is_a_tenth_of_the_timeout_and_never_below_the_minimum() -> None:
    assert CommandDeadlines(0.5).tick_s == pytest.approx(0.05)
    assert CommandDeadlines(0.01).tick_s == MIN_TICK_S


async def test_a_command_past_its_deadline_raises_timeout_and_the_ticker_stops() -> None:
    deadlines = CommandDeadlines(0)
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(TimeoutError):
        await deadlines.run(never_answers)
    assert task.cancelling() == 0  # the deadline's own cancel was taken back
    assert not deadlines.ticking  # nothing in flight: no timer left behind


async def test_every_command_in_flight_shares_one_ticker_and_each_times_out() -> None:
    deadlines = CommandDeadlines(0)
    commands = [asyncio.create_task(deadlines.run(never_answers)) for _ in range(50)]
    await asyncio.sleep(0)  # each has started and registered
    assert deadlines.ticking
    outcomes = await asyncio.gather(*commands, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [TimeoutError] * 50
    assert not deadlines.ticking


async def test_an_answer_in_time_is_returned_and_leaves_nothing_to_cancel() -> None:
    deadlines = CommandDeadlines(30)

    async def answers() -> str:
        await asyncio.sleep(0)
        return "value"

    assert await deadlines.run(answers) == "value"
    assert deadlines.in_flight == 0  # the ticker, still armed until its next tick, finds nothing


@pytest.mark.parametrize("send", [never_answers, swallows_a_cancel], ids=["delivered", "swallowed"])
async def test_a_cancel_from_elsewhere_stays_a_cancellation(
    send: Callable[[], Awaitable[object]],
) -> None:
    """Also when the library under the command lost the cancel: a cancelled task must stop (shutdown
    would hang on a subscriber that loops on)."""
    deadlines = CommandDeadlines(30)
    task = asyncio.create_task(deadlines.run(send))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.in_flight == 0


async def test_a_deadline_cancel_that_the_command_swallowed_leaves_its_answer_and_no_cancel() -> (
    None
):
    deadlines = CommandDeadlines(0)
    task = asyncio.current_task()
    assert task is not None
    assert await deadlines.run(swallows_a_cancel) == "answered anyway"
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # the task runs on: no cancel is left pending on it


async def test_a_cancel_from_elsewhere_after_the_deadline_fired_is_still_a_cancellation() -> None:
    deadlines = CommandDeadlines(0)
    expired = asyncio.Event()

    async def cancelled_after_expiry() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            expired.set()
            await asyncio.get_running_loop().create_future()  # the outer cancel lands here

    task = asyncio.create_task(deadlines.run(cancelled_after_expiry))
    await expired.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
