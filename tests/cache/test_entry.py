"""The cache schedule: margin, refresh window with jitter, stale window, and the stored form."""

from __future__ import annotations

import random

import pytest

from gateway.cache.entry import CacheEntry, decode_entry, schedule

NOW = 1_700_000_000.0


def entry_for(lifetime_s: float, seed: int = 1) -> CacheEntry:
    return schedule(
        token="t",
        expires_at=NOW + lifetime_s,
        keep_without_expiry_s=600,
        data={"k": 1},
        upstream_request_id="r",
        now=NOW,
        rng=random.Random(seed),
    )


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [(7200, 60), (600, 60), (300, 30), (30, 3), (1, 0.1)],
)
def test_margin_is_ten_percent_capped_at_sixty_seconds(lifetime: float, margin: float) -> None:
    """serve_until is the expiry less min(60 s, 10 % of the lifetime)."""
    assert entry_for(lifetime).serve_until == pytest.approx(NOW + lifetime - margin)


def test_short_token_is_not_born_expired() -> None:
    """A 60 s token is fresh for 54 s, not 0 s as a fixed 60 s margin would make it."""
    entry = entry_for(60)
    assert entry.is_fresh(NOW + 53)
    assert not entry.is_fresh(NOW + 54.1)


def test_refresh_window_is_jittered_within_bounds() -> None:
    """refresh_at lies in [serve_until - ahead, serve_until - ahead/2], ahead = min(300 s, 20 %), and varies."""
    points = {entry_for(7200, seed).refresh_at for seed in range(50)}
    serve_until = NOW + 7200 - 60
    assert all(p is not None and serve_until - 300 <= p <= serve_until - 150 for p in points)
    assert len(points) == 50
    short = entry_for(100, seed=3)
    assert short.refresh_at is not None
    assert short.serve_until - 20 <= short.refresh_at <= short.serve_until - 10


def test_phases_fresh_refresh_stale_expired() -> None:
    """Fresh until refresh_at, refresh due until serve_until, then only valid (stale) until expiry."""
    entry = entry_for(100)
    assert entry.refresh_at is not None
    assert entry.is_fresh(NOW) and not entry.refresh_due(NOW)
    assert entry.is_fresh(entry.refresh_at) and entry.refresh_due(entry.refresh_at)
    assert not entry.is_fresh(NOW + 95) and entry.is_valid(NOW + 95)
    assert not entry.is_valid(NOW + 100)


def test_store_ttl_runs_to_the_vendor_expiry() -> None:
    """The store keeps the entry until the vendor's expiry, so a failing vendor can be covered."""
    assert entry_for(100).store_ttl_s(NOW + 10) == pytest.approx(90)


def test_without_expiry_it_is_kept_for_the_configured_time() -> None:
    """A bound bind check (no expiry) is fresh for keep_without_expiry_s, never refreshed ahead."""
    entry = schedule(
        token=None,
        expires_at=None,
        keep_without_expiry_s=600,
        data={"bound": True},
        upstream_request_id=None,
        now=NOW,
        rng=random.Random(0),
    )
    assert (entry.serve_until, entry.refresh_at) == (NOW + 600, None)
    assert entry.store_ttl_s(NOW) == 600
    assert not entry.is_valid(NOW + 600)


def test_round_trip_and_junk() -> None:
    """encode/decode round-trips; anything else decodes to None (a miss), never an exception."""
    entry = entry_for(100)
    assert decode_entry(entry.encode()) == entry
    for junk in (b"", b"{", b"[]", b'{"token": 1}', b'{"token":"t","expires_at":"x"}', b"\xff\xfe"):
        assert decode_entry(junk) is None
