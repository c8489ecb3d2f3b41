"""SingleFlight: one task per key, joiners share it, a leaving caller does not cancel it. SharedReads:
one read per key at a time, awaited by its first caller, a leaving or failing first caller costing
the others a read of their own, never an error."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.flight import SharedReads, SingleFlight


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


class GatedRead:
    """A read that waits for `gate` and counts its calls; the first `failures` calls raise."""

    def __init__(self, *, failures: int = 0) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.failures = failures

    async def __call__(self) -> str:
        self.calls += 1
        call = self.calls
        await asyncio.sleep(0)  # a store read waits for its reply, even once the gate is open
        await self.gate.wait()
        if call <= self.failures:
            raise ConnectionError("redis went away")
        return f"read {call}"


async def test_concurrent_reads_of_a_key_are_one_read_and_the_key_is_free_after() -> None:
    """Ten callers of one key while its read runs make one read; each gets its answer; a later caller
    reads afresh; another key is read on its own."""
    reads: SharedReads[str] = SharedReads()
    read, other = GatedRead(), GatedRead()
    callers = [asyncio.ensure_future(reads.run("k", read)) for _ in range(10)]
    elsewhere = asyncio.ensure_future(reads.run("other", other))
    await asyncio.sleep(0)
    read.gate.set()
    other.gate.set()
    assert await asyncio.gather(*callers) == ["read 1"] * 10
    assert (await elsewhere, other.calls) == ("read 1", 1)
    assert await reads.run("k", read) == "read 2"


async def test_a_first_reader_that_leaves_costs_the_others_one_read_not_an_error() -> None:
    """Cancelling the caller whose read the others wait for: they share one read of their own and all
    get its answer; the cancelled caller sees its cancellation."""
    reads: SharedReads[str] = SharedReads()
    read = GatedRead()
    first = asyncio.ensure_future(reads.run("k", read))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(reads.run("k", read)) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    read.gate.set()
    assert await asyncio.gather(*others) == ["read 2"] * 5
    assert first.cancelled() and read.calls == 2


async def test_a_waiting_reader_that_leaves_disturbs_nobody() -> None:
    """A caller cancelled while it waits for another's read: the read and the other callers go on."""
    reads: SharedReads[str] = SharedReads()
    read = GatedRead()
    first = asyncio.ensure_future(reads.run("k", read))
    await asyncio.sleep(0)
    leaving, staying = (asyncio.ensure_future(reads.run("k", read)) for _ in range(2))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    read.gate.set()
    assert (await first, await staying, read.calls) == ("read 1", "read 1", 1)
    assert leaving.cancelled()


async def test_a_failed_read_is_raised_to_its_caller_and_the_others_read_again() -> None:
    """The first caller's read fails: it gets the error; the callers that waited for it read again
    (sharing one read) and get that read's answer."""
    reads: SharedReads[str] = SharedReads()
    read = GatedRead(failures=1)
    first = asyncio.ensure_future(reads.run("k", read))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(reads.run("k", read)) for _ in range(3)]
    await asyncio.sleep(0)
    read.gate.set()
    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*others) == ["read 2"] * 3
    assert read.calls == 2
