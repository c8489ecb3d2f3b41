"""The records beside the credentials: remembered rejections and quota bans, with a clock the tests
move instead of sleeping."""

from __future__ import annotations

import pytest

from gateway.cache.keys import KeySpace
from gateway.cache.records import FailureMemory, QuotaBans
from gateway.errors import UpstreamDetail, VendorQuotaExceeded, VendorRejectedInput
from gateway.store.memory import MemoryStore
from tests.helpers import ShiftedClock
from tests.store.ops import get


async def test_a_rejection_is_answered_again_until_the_cooldown_passes() -> None:
    """A remembered 422 is raised again with the vendor's words and Retry-After; once the cooldown has
    passed on the clock it is not."""
    store, clock = MemoryStore(), ShiftedClock()
    memory = FailureMemory(store, 30, clock)
    rejected = VendorRejectedInput(
        "the vendor answered code 41", upstream=UpstreamDetail(code="41", message="bad")
    )
    await memory.remember("k:fail", rejected)
    record = await get(store, "k:fail")
    with pytest.raises(VendorRejectedInput) as again:
        memory.raise_if_cooling_down("prov", record)
    assert again.value.retry_after_s == 30
    assert again.value.upstream == UpstreamDetail(code="41", message="bad")
    assert "remembered" in again.value.detail
    clock.offset += 31
    memory.raise_if_cooling_down("prov", record)  # no longer


async def test_no_cooldown_remembers_nothing_and_an_unreadable_record_is_ignored() -> None:
    """failure_cooldown_s 0 writes no record; a record that is not one is no reason to refuse."""
    store = MemoryStore()
    off = FailureMemory(store, 0, ShiftedClock())
    await off.remember("k:fail", VendorRejectedInput("no"))
    assert await get(store, "k:fail") is None
    FailureMemory(store, 30, ShiftedClock()).raise_if_cooling_down("p", b"not json")


async def test_a_ban_holds_on_every_replica_and_locally_while_the_store_is_gone() -> None:
    """A quota answer bans the provider: another replica reading the shared record refuses too, the
    banning replica refuses without any record, and the ban ends with its seconds."""
    store, clock = MemoryStore(), ShiftedClock()
    keys = KeySpace("gw", {})
    changes: list[tuple[str, bool]] = []
    here = QuotaBans(store, keys, clock, lambda name, on: changes.append((name, on)))
    there = QuotaBans(store, keys, clock)
    quota = VendorQuotaExceeded("limited", retry_after_s=60)
    await here.ban("top", quota, default_s=30)
    record = await get(store, keys.ban("top"))
    with pytest.raises(VendorQuotaExceeded) as seen_there:
        there.raise_if_banned("top", record)
    assert 59 <= seen_there.value.retry_after_s <= 60
    with pytest.raises(VendorQuotaExceeded):
        here.raise_if_banned("top", None)  # no record read: remembered here
    clock.offset += 61
    here.raise_if_banned("top", None)
    assert changes[0] == ("top", True) and changes[-1] == ("top", False)


async def test_a_quota_answer_without_seconds_bans_for_the_default() -> None:
    """A call-limited answer naming no duration bans for the provider's default, and says so."""
    store, clock = MemoryStore(), ShiftedClock()
    bans = QuotaBans(store, KeySpace("gw", {}), clock)
    quota = VendorQuotaExceeded("limited")
    await bans.ban("top", quota, default_s=45)
    assert quota.retry_after_s == 45
