"""The in-process hit cache: bounded, short-lived, never past an entry's own validity.

It sits in front of the shared store so that a hit costs no network round trip. Other replicas'
writes and deletes reach it through the invalidation channel (see invalidation.py); `max_age_s`
bounds how long an entry may live here even if a message were missed.
"""

from __future__ import annotations

from collections import OrderedDict

from gateway.cache.entry import CacheEntry


class LocalCache:
    def __init__(self, *, max_entries: int, max_age_s: float) -> None:
        self._entries: OrderedDict[str, tuple[float, CacheEntry]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age_s = max_age_s

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: float) -> CacheEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        drop_at, entry = found
        if now >= drop_at:
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, entry: CacheEntry, now: float) -> None:
        if self._max_entries <= 0:
            return
        drop_at = min(now + self._max_age_s, now + entry.store_ttl_s(now))
        if drop_at <= now:
            return
        self._entries[key] = (drop_at, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)  # the least recently written goes first

    def replace(self, key: str, entry: CacheEntry) -> None:
        """Swap the entry held for `key` (if any) for `entry`, keeping its place and its drop time."""
        found = self._entries.get(key)
        if found is not None:
            self._entries[key] = (found[0], entry)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
