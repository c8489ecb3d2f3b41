"""In-process credential store: a dict with per-key expiry, for one process (`memory://`, `serve --dev`).

It keeps the semantics of the Redis backend so the service cannot tell them apart: values and locks share
one key space, expiry is rounded to whole milliseconds, a lock is a key whose value is its owner, and
an announcement reaches every live subscriber in this process. Apart from a subscriber waiting for its
next message nothing here awaits, so each method runs to completion without interleaving on the event
loop; that is what makes check-then-set (claim, renew, hand back) atomic without an `asyncio.Lock`.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from gateway.store import Announcement, Delete, LeaseClaim, ReadResult, StoreUnavailable, Write

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_PENDING_MESSAGES = 10_000


def ttl_to_milliseconds(ttl_s: float) -> int:
    """Whole milliseconds for a TTL in seconds, at least 1; ValueError unless 0 < ttl_s < inf.

    Shared by both backends so they round a TTL the same way (Redis `PX` takes integer milliseconds and
    rejects 0, so a positive TTL below half a millisecond still means "expire very soon", never "keep").
    """
    if not (math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"a TTL must be a positive finite number of seconds, got {ttl_s!r}")
    return max(1, round(ttl_s * 1000))


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Ended:
    """Queued in place of messages when a subscription is cut off; `reason` becomes the error."""

    reason: str


_Inbox = asyncio.Queue[str | _Ended]


class MemoryStore:
    """`CredentialStore` in a dict; expired keys read as absent and are purged as writes come in.

    `max_entries` bounds memory: a write that would exceed it first drops expired keys, then the
    least recently written ones (like Redis under `maxmemory` with an LRU-ish policy). Keep it well above
    the working set, since an evicted lock is a lost lock.

    `max_pending_messages` bounds each subscriber's backlog: one that falls further behind is cut off
    with StoreUnavailable (as Redis disconnects a slow subscriber), so it knows it missed messages.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_pending_messages: int = DEFAULT_MAX_PENDING_MESSAGES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_pending_messages < 1:
            raise ValueError(f"max_pending_messages must be at least 1, got {max_pending_messages}")
        self._max_entries = max_entries
        self._max_pending_messages = max_pending_messages
        self._clock = clock
        self._subscribers: dict[str, set[_Inbox]] = {}
        self._rate_buckets: dict[str, float] = {}  # key -> theoretical arrival time (GCRA)
        # Insertion order is write order (writes re-insert), so the first key is the oldest write.
        self._entries: dict[str, _Entry] = {}
        # (expires_at, key) for every write; stale pairs (key rewritten or deleted) are skipped when
        # popped, so purging expired keys costs O(log n) per key instead of a scan of the dict.
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """How many keys are held, including expired ones not purged yet."""
        return len(self._entries)

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """The values of `keys`, after trying `claim`'s lease (see CredentialStore.read)."""
        if claim is None:
            return ReadResult([self._value(key) for key in keys])
        lease_ms = ttl_to_milliseconds(claim.lease_s)
        holder = self._value(claim.key)
        leased = holder is None or holder == claim.owner.encode()
        if leased:
            self._write(claim.key, claim.owner.encode(), lease_ms)
        return ReadResult([self._value(key) for key in keys], leased=leased)

    async def write(self, request: Write) -> bool:
        """Store the value, hand back the lease, publish the announcement (see `Write`)."""
        self._write(request.key, bytes(request.value), ttl_to_milliseconds(request.ttl_s))
        kept = True
        if (release := request.release) is not None:
            holder = self._value(release.key)
            if holder == release.owner.encode():
                del self._entries[release.key]
            kept = holder is None or holder == release.owner.encode()
        if request.announce is not None:
            self._publish(request.announce)
        return kept

    async def delete(self, request: Delete) -> int:
        """Forget the keys (only those holding the owner, when given), then publish (see `Delete`)."""
        owner = request.owner
        removed = 0
        for key in request.keys:
            value = self._value(key)
            if value is not None and (owner is None or value == owner.encode()):
                del self._entries[key]
                removed += 1
        if request.announce is not None:
            self._publish(request.announce)
        return removed

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""
        lease_ms = ttl_to_milliseconds(lease_s)
        if self._value(key) != owner.encode():
            return False
        self._write(key, owner.encode(), lease_ms)
        return True

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait."""
        now = self._clock()
        tat = max(self._rate_buckets.get(key, 0.0), now)
        allow_at = tat + interval_s - burst * interval_s
        if allow_at > now:
            return allow_at - now
        self._rate_buckets[key] = tat + interval_s
        return 0.0

    def _publish(self, announce: Announcement) -> None:
        """Send the message to every current subscriber of its channel in this process."""
        channel = announce.channel
        for inbox in list(self._subscribers.get(channel, ())):
            if inbox.full():
                self._cut_off(
                    channel, inbox, "the subscriber fell behind and messages were dropped"
                )
            else:
                inbox.put_nowait(announce.message)

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Yields None once subscribed, then each message published on `channel`.

        Raises StoreUnavailable when the subscriber fell too far behind or the store was closed.
        """
        inbox: _Inbox = asyncio.Queue(maxsize=self._max_pending_messages)
        self._subscribers.setdefault(channel, set()).add(inbox)
        try:
            yield None
            while True:
                item = await inbox.get()
                if isinstance(item, _Ended):
                    raise StoreUnavailable(
                        f"memory subscription to {channel!r} ended: {item.reason}"
                    )
                yield item
        finally:
            self._unsubscribe(channel, inbox)

    async def ping(self) -> None:
        """Always answers: the data lives in this process."""

    async def close(self) -> None:
        """End every subscription with StoreUnavailable; the data lives as long as this object."""
        for channel, inboxes in list(self._subscribers.items()):
            for inbox in list(inboxes):
                self._cut_off(channel, inbox, "the store was closed")

    def _unsubscribe(self, channel: str, inbox: _Inbox) -> None:
        inboxes = self._subscribers.get(channel)
        if inboxes is not None:
            inboxes.discard(inbox)
            if not inboxes:
                del self._subscribers[channel]

    def _cut_off(self, channel: str, inbox: _Inbox, reason: str) -> None:
        # Whatever is still queued is moot: the subscriber must assume it missed messages anyway.
        self._unsubscribe(channel, inbox)
        while not inbox.empty():
            inbox.get_nowait()
        inbox.put_nowait(_Ended(reason))

    def _live_entry(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _value(self, key: str) -> bytes | None:
        entry = self._live_entry(key)
        return None if entry is None else entry.value

    def _write(self, key: str, value: bytes, ttl_ms: int) -> None:
        now = self._clock()
        expires_at = now + ttl_ms / 1000
        self._entries.pop(key, None)  # re-insert so the key moves to the newest end
        self._entries[key] = _Entry(value, expires_at)
        heapq.heappush(self._expiries, (expires_at, key))
        self._purge_expired(now)
        self._evict_oldest_beyond_cap()
        self._compact_expiries()

    def _purge_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, key = heapq.heappop(self._expiries)
            entry = self._entries.get(key)
            # Only the pair that matches the current entry may remove it; older pairs are stale.
            if entry is not None and entry.expires_at == expires_at:
                del self._entries[key]

    def _evict_oldest_beyond_cap(self) -> None:
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]

    def _compact_expiries(self) -> None:
        # Overwrites, deletes and evictions leave stale heap pairs behind; rebuild once they dominate
        # so the heap stays O(live keys) even when keys are rewritten with ever longer TTLs.
        if len(self._expiries) > 2 * len(self._entries) + 64:
            self._expiries = [(entry.expires_at, key) for key, entry in self._entries.items()]
            heapq.heapify(self._expiries)
