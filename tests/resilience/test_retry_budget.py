"""The retry budget, with a clock the tests move: the share, the floor, the sliding window."""

from __future__ import annotations

from gateway.resilience.retry_budget import RetryBudget, RetryBudgetPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def spend_all(budget: RetryBudget) -> int:
    spent = 0
    while budget.try_spend():
        spent += 1
    return spent


def test_retries_add_at_most_their_share_of_the_first_attempts() -> None:
    """100 first attempts allow 50 retries at ratio 0.5; the 51st is refused."""
    budget = RetryBudget(RetryBudgetPolicy(ratio=0.5, min_retries=3, window_s=10), clock=Clock())
    for _ in range(100):
        budget.note_first_attempt()
    assert spend_all(budget) == 50


def test_the_floor_keeps_a_lone_call_its_retries() -> None:
    """With one first attempt in the window, min_retries still allows that many retries."""
    budget = RetryBudget(RetryBudgetPolicy(ratio=0.5, min_retries=4, window_s=10), clock=Clock())
    budget.note_first_attempt()
    assert spend_all(budget) == 4


def test_the_window_slides() -> None:
    """First attempts and retries older than the window stop counting, so the budget refills."""
    clock = Clock()
    budget = RetryBudget(RetryBudgetPolicy(ratio=1.0, min_retries=0, window_s=10), clock=clock)
    for _ in range(10):
        budget.note_first_attempt()
    assert spend_all(budget) == 10
    clock.now += 5
    assert not budget.try_spend()  # still within the window
    clock.now += 6  # everything above is older than 10 s now
    assert not budget.try_spend()  # no first attempts left to retry a share of
    budget.note_first_attempt()
    assert spend_all(budget) == 1


def test_a_long_silence_empties_every_bucket() -> None:
    """After far more than a window of silence, nothing from before counts."""
    clock = Clock()
    budget = RetryBudget(RetryBudgetPolicy(ratio=1.0, min_retries=0, window_s=10), clock=clock)
    for _ in range(5):
        budget.note_first_attempt()
    clock.now += 10_000
    assert not budget.try_spend()
