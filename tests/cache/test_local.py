"""The in-process hit cache: bounded, short-lived, never past an entry's validity."""

from __future__ import annotations

import random

from gateway.cache.entry import schedule
from gateway.cache.local import LocalCache

NOW = 1_700_000_000.0


def entry(lifetime: float = 100) -> object:
    return schedule(
        token="t",
        expires_at=NOW + lifetime,
        keep_without_expiry_s=60,
        data={},
        upstream_request_id=None,
        now=NOW,
        rng=random.Random(0),
    )


def test_entries_leave_at_max_age_or_at_expiry_whichever_first() -> None:
    """An entry lives max_age_s, or until its vendor expiry when that is sooner."""
    local = LocalCache(max_entries=10, max_age_s=30)
    local.put("long", entry(100), NOW)  # type: ignore[arg-type]
    local.put("short", entry(10), NOW)  # type: ignore[arg-type]
    assert local.get("long", NOW + 29) is not None
    assert local.get("long", NOW + 30) is None
    assert local.get("short", NOW + 9) is not None
    assert local.get("short", NOW + 10) is None


def test_bounded_by_entry_count_oldest_write_goes_first() -> None:
    """Past max_entries the least recently written entry is evicted."""
    local = LocalCache(max_entries=2, max_age_s=30)
    for key in ("a", "b", "c"):
        local.put(key, entry(), NOW)  # type: ignore[arg-type]
    assert (local.get("a", NOW), len(local)) == (None, 2)
    assert local.get("c", NOW) is not None


def test_disabled_with_zero_entries() -> None:
    """max_entries=0 stores nothing (the memory store needs no second in-process tier)."""
    local = LocalCache(max_entries=0, max_age_s=30)
    local.put("a", entry(), NOW)  # type: ignore[arg-type]
    assert local.get("a", NOW) is None


def test_drop_and_clear() -> None:
    """drop removes one key, clear removes all."""
    local = LocalCache(max_entries=5, max_age_s=30)
    local.put("a", entry(), NOW)  # type: ignore[arg-type]
    local.put("b", entry(), NOW)  # type: ignore[arg-type]
    local.drop("a")
    assert local.get("a", NOW) is None and local.get("b", NOW) is not None
    local.clear()
    assert len(local) == 0


def test_replace_swaps_the_entry_but_keeps_its_drop_time_and_its_place() -> None:
    """A hit's ready answer joins the entry held (CacheEntry.with_hit): it is dropped when the entry
    would have been, evicted in the entry's turn, and nothing is added for a key not held."""
    local = LocalCache(max_entries=2, max_age_s=30)
    first = entry()
    local.put("a", first, NOW)  # type: ignore[arg-type]
    local.put("b", entry(), NOW + 10)  # type: ignore[arg-type]
    answered = first.with_hit("ready answer")  # type: ignore[attr-defined]
    local.replace("a", answered)
    local.replace("absent", answered)
    assert local.get("a", NOW + 29) is answered and answered.hit == "ready answer"
    assert answered == first  # the ready answer is not part of the entry's value
    assert local.get("absent", NOW) is None and len(local) == 2
    assert local.get("a", NOW + 30) is None  # first's drop time (a replace does not extend it)
    local.put("a", first, NOW)  # type: ignore[arg-type]
    local.put("b", entry(), NOW)  # type: ignore[arg-type]
    local.replace("a", answered)
    local.put("c", entry(), NOW)  # type: ignore[arg-type]
    assert local.get("a", NOW) is None  # still the oldest write: evicted first
    assert local.get("b", NOW) is not None
