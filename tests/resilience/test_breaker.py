"""The one circuit breaker, with a clock the tests move: both opening rules, the probe, the moot outcomes."""

from __future__ import annotations

from typing import Any

from gateway.resilience.breaker import PROBE_RETRY_AFTER_S, Breaker, BreakerPolicy, BreakerState


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **policy: Any) -> tuple[Breaker, list[BreakerState]]:
    """A breaker open for 10 s at a time, and the list of its state changes."""
    changes: list[BreakerState] = []
    policy.setdefault("open_s", 10.0)
    return Breaker(BreakerPolicy(**policy), clock=clock, on_change=changes.append), changes


def fail(b: Breaker, times: int) -> None:
    for _ in range(times):
        assert b.allow() is None
        b.record(failed=True)


def test_consecutive_failures_open_it_whatever_the_window() -> None:
    """N failures in a row open the circuit even with no ratio rule and calls spread over hours."""
    clock = Clock()
    b, changes = breaker(clock, consecutive_failures=3)
    for _ in range(3):
        clock.now += 3600
        fail(b, 1)
    assert b.state is BreakerState.OPEN and changes == [BreakerState.OPEN]
    assert b.allow() == 10.0


def test_a_success_between_failures_resets_the_run() -> None:
    """Failures broken by a success do not add up to the consecutive rule."""
    b, _ = breaker(Clock(), consecutive_failures=3)
    for _ in range(5):
        fail(b, 2)
        b.record(failed=False)
    assert b.state is BreakerState.CLOSED


def test_the_ratio_rule_needs_min_calls_within_the_window() -> None:
    """A failure ratio opens the circuit only once min_calls outcomes sit in the window; older ones
    fall out of it."""
    clock = Clock()
    b, _ = breaker(clock, failure_ratio=0.5, min_calls=4, window_s=30)
    fail(b, 3)
    assert b.state is BreakerState.CLOSED  # 3 < min_calls
    clock.now += 31  # the three failures leave the window
    b.record(failed=False)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED  # 2 of 3 in the window
    fail(b, 1)
    assert b.state is BreakerState.OPEN  # 3 of 4


def test_after_open_s_one_probe_goes_and_its_outcome_decides() -> None:
    """While open nothing goes; after open_s exactly one probe is let through; its failure re-opens
    for another open_s, its success closes."""
    clock = Clock()
    b, changes = breaker(clock, consecutive_failures=1)
    fail(b, 1)
    clock.now += 4
    assert b.allow() == 6.0
    clock.now += 6
    assert b.allow() is None  # the probe
    assert b.allow() == PROBE_RETRY_AFTER_S  # everyone else waits for it
    b.record(failed=True)
    assert b.state is BreakerState.OPEN and b.allow() == 10.0
    clock.now += 10
    assert b.allow() is None
    b.record(failed=False)
    assert b.state is BreakerState.CLOSED and b.allow() is None
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_a_probe_that_never_reports_stops_blocking_after_open_s() -> None:
    """A probe whose caller vanished (cancelled) does not keep the circuit half-open forever."""
    clock = Clock()
    b, _ = breaker(clock, consecutive_failures=1)
    fail(b, 1)
    clock.now += 10
    assert b.allow() is None  # the probe, never heard of again
    clock.now += 5
    assert b.allow() == PROBE_RETRY_AFTER_S
    clock.now += 5
    assert b.allow() is None  # a new probe


def test_a_released_probe_lets_the_next_caller_probe() -> None:
    """release_probe (no outcome to judge by) hands the probe to the next caller at once."""
    clock = Clock()
    b, _ = breaker(clock, consecutive_failures=1)
    fail(b, 1)
    clock.now += 10
    assert b.allow() is None
    b.release_probe()
    assert b.allow() is None


def test_outcomes_while_open_are_moot() -> None:
    """Late outcomes of calls let through before the circuit opened neither close nor extend it."""
    clock = Clock()
    b, _ = breaker(clock, consecutive_failures=2)
    fail(b, 2)
    b.record(failed=False)
    b.record(failed=True)
    assert b.state is BreakerState.OPEN
    clock.now += 10
    assert b.allow() is None
