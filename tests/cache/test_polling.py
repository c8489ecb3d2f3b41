"""Polls: one loop per identity, each waiter's own deadline, caps per client and provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.cache.polling import Polls
from gateway.clock import SYSTEM_CLOCK
from gateway.errors import PollsLimited

UNCAPPED = ("c", 100)


def counting_poll(answers: list[bool]) -> tuple[list[int], Callable[[], Awaitable[bool]]]:
    """A poll answering the next of `answers` (the last repeats), and the list counting its calls."""
    calls: list[int] = []

    async def poll() -> bool:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    return calls, poll


def settled(answer: bool) -> bool:
    return answer


async def test_waiters_share_one_loop_and_stop_at_the_settled_answer() -> None:
    """Three waiters of one key share the loop; it stops at the first settled answer."""
    polls: Polls[bool] = Polls(SYSTEM_CLOCK)
    calls, poll = counting_poll([False, False, True])
    answers = await asyncio.gather(
        *(polls.wait("k", 5, poll, settled, client=UNCAPPED, provider=("p", 100)) for _ in range(3))
    )
    assert answers == [True, True, True]
    assert len(calls) == 3


async def test_a_short_waiter_answers_at_its_own_deadline() -> None:
    """A 0.6 s waiter joining a 3 s poll answers the latest (unsettled) answer at about 0.6 s."""
    polls: Polls[bool] = Polls(SYSTEM_CLOCK)
    _, poll = counting_poll([False])
    longer = asyncio.ensure_future(
        polls.wait("k", 3, poll, settled, client=UNCAPPED, provider=("p", 100))
    )
    started = time.monotonic()
    answer = await polls.wait("k", 0.6, poll, settled, client=UNCAPPED, provider=("p", 100))
    assert answer is False and 0.5 <= time.monotonic() - started < 1.0
    polls.cancel_all()
    with pytest.raises(asyncio.CancelledError):
        await longer


async def test_waiters_beyond_a_cap_are_refused_with_retry_after() -> None:
    """A client allowed 2 waiting polls gets PollsLimited for a third, with Retry-After from the
    soonest deadline; a slot frees when a waiter ends."""
    polls: Polls[bool] = Polls(SYSTEM_CLOCK)
    _, poll = counting_poll([False])
    held = [
        asyncio.ensure_future(
            polls.wait(f"k{n}", 2, poll, settled, client=("c", 2), provider=("p", 100))
        )
        for n in range(2)
    ]
    await asyncio.sleep(0.05)
    with pytest.raises(PollsLimited) as refused:
        await polls.wait("k3", 2, poll, settled, client=("c", 2), provider=("p", 100))
    assert 1 <= refused.value.retry_after_s <= 3
    await asyncio.gather(*held)
    assert await polls.wait("k3", 0.1, poll, settled, client=("c", 2), provider=("p", 100)) is False


async def test_a_failing_poll_reaches_every_waiter() -> None:
    """When the poll raises, every waiter of the loop gets the error."""
    polls: Polls[bool] = Polls(SYSTEM_CLOCK)

    async def poll() -> bool:
        await asyncio.sleep(0.01)
        raise RuntimeError("vendor down")

    outcomes = await asyncio.gather(
        *(
            polls.wait("k", 5, poll, settled, client=UNCAPPED, provider=("p", 100))
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
