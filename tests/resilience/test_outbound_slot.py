"""The per-replica concurrency cap at the edge of a login's deadline (gateway.service.limits)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.keys import KeySpace
from gateway.errors import OutboundLimited
from gateway.service.limits import MIN_ATTEMPT_S, OutboundLimits
from gateway.settings import LimitSettings
from gateway.store.memory import MemoryStore
from tests.helpers import ShiftedClock

PROVIDER = "tencent-wechat"


def one_slot(clock: ShiftedClock, rejected: list[str]) -> OutboundLimits:
    settings = LimitSettings(rate_per_s=None, max_concurrency=1)
    return OutboundLimits(
        {PROVIDER: settings},
        MemoryStore(clock=clock.monotonic),
        KeySpace("t", {PROVIDER: b"k"}),
        clock,
        on_reject=rejected.append,
    )


async def wait_then_free(limits: OutboundLimits, clock: ShiftedClock, left_s: float) -> str:
    """A holder has the one slot; a second call waits with a 1 s deadline; time passes until `left_s`
    of it is left, and the holder lets go. What the second call got: "sent" or the problem's code."""
    deadline = clock.monotonic() + 1.0
    holder = limits.slot(PROVIDER, clock.monotonic() + 5.0)
    await holder.__aenter__()

    async def second() -> str:
        async with limits.slot(PROVIDER, deadline):
            return "sent"

    waiting = asyncio.create_task(second())
    await asyncio.sleep(0)  # the second call is now queued on the slot
    clock.advance(1.0 - left_s)
    await holder.__aexit__(None, None, None)
    try:
        return await waiting
    except OutboundLimited as error:
        return error.code


async def test_a_slot_freed_with_too_little_time_left_is_given_back_unsent() -> None:
    """The holder's timeout freed the slot at nearly the waiter's deadline: the waiter answers 429
    outbound_limited instead of sending a call the vendor cannot answer in time, and the slot is free."""
    clock, rejected = ShiftedClock(), []
    limits = one_slot(clock, rejected)
    assert await wait_then_free(limits, clock, left_s=MIN_ATTEMPT_S / 2) == "outbound_limited"
    assert rejected == [PROVIDER]
    async with asyncio.timeout(0.5), limits.slot(PROVIDER, clock.monotonic() + 1.0):
        pass  # given back: the next call gets it at once


@pytest.mark.parametrize("left_s", [MIN_ATTEMPT_S * 2, 0.5])
async def test_a_slot_freed_in_time_is_used(left_s: float) -> None:
    clock, rejected = ShiftedClock(), []
    assert await wait_then_free(one_slot(clock, rejected), clock, left_s=left_s) == "sent"
    assert rejected == []


async def test_a_free_slot_is_taken_however_little_time_is_left() -> None:
    """The rule is about time spent waiting for the limit: with a slot free at once, a call whose
    deadline is nearly spent elsewhere is not told the concurrency limit is full (it goes as it would
    with no cap, and upstream's own deadline check answers for it)."""
    clock, rejected = ShiftedClock(), []
    limits = one_slot(clock, rejected)
    async with limits.slot(PROVIDER, clock.monotonic() + MIN_ATTEMPT_S / 2):
        pass
    assert rejected == []
