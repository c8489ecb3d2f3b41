"""SingleFlight: one task per key, joiners share it, a leaving caller does not cancel it."""

from __future__ import annotations

import asyncio

from gateway.cache.flight import SingleFlight


async def test_concurrent_callers_of_a_key_share_one_call_and_its_result() -> None:
    """Ten callers of one key make one call; all get its result; joiners (not the first) are counted."""
    calls, joins = 0, 0

    def joined() -> None:
        nonlocal joins
        joins += 1

    flight: SingleFlight[str] = SingleFlight(on_join=joined)

    async def call() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "answer"

    results = await asyncio.gather(*(flight.run("k", call) for _ in range(10)))
    assert (results, calls, joins) == (["answer"] * 10, 1, 9)
    assert "k" not in flight  # the key is free again once the call ended


async def test_a_caller_that_leaves_does_not_cancel_the_call_the_others_wait_for() -> None:
    """Cancelling the first caller leaves the shared call running for the second."""
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()

    async def call() -> str:
        await release.wait()
        return "done"

    first = asyncio.ensure_future(flight.run("k", call))
    second = asyncio.ensure_future(flight.run("k", call))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "done"


async def test_a_task_started_for_a_caller_does_not_count_that_caller_as_a_joiner() -> None:
    """start(for_caller=True) then run(): the first run is the caller it was started for; the next is a
    joiner."""
    joins = 0

    def joined() -> None:
        nonlocal joins
        joins += 1

    flight: SingleFlight[int] = SingleFlight(on_join=joined)

    async def call() -> int:
        await asyncio.sleep(0.01)
        return 7

    flight.start("k", call, for_caller=True)
    assert await asyncio.gather(flight.run("k", call), flight.run("k", call)) == [7, 7]
    assert joins == 1


async def test_a_failure_reaches_every_caller_and_frees_the_key() -> None:
    """An exception is raised to each caller, and the next call of the key starts afresh."""
    flight: SingleFlight[int] = SingleFlight()

    async def fails() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("vendor down")

    outcomes = await asyncio.gather(
        *(flight.run("k", fails) for _ in range(3)), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ValueError] * 3

    async def works() -> int:
        return 1

    assert await flight.run("k", works) == 1
