"""Cross-replica invalidation of the in-process hit cache over the store's publish/subscribe.

Every write or delete of a credential publishes `<replica> <key>`; every other replica drops that key
from its local cache. The writer gets its own message back (Redis pub/sub has no "not to the
publisher") and skips it on the prefix alone: the entry it holds is the one it just wrote (or it
dropped it before a delete). The format is the one every version has published, so replicas of
different versions keep invalidating each other during a rollout.

If the subscription is lost while the store still answers, messages may have been missed, so the
local cache is cleared; if the store itself is down, the local cache is kept: it is then the fallback
that keeps answering without a login storm.
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

from gateway.cache.local import LocalCache
from gateway.store import Announcement, CredentialStore, StoreUnavailable

log = structlog.get_logger("gateway.cache")


class Invalidation:
    def __init__(
        self,
        store: CredentialStore,
        local: LocalCache,
        channel: str,
        *,
        reconnect_interval_s: float = 0.5,
    ) -> None:
        self._store = store
        self._local = local
        self._channel = channel
        self._reconnect_interval_s = reconnect_interval_s
        self._own = f"{uuid.uuid4().hex} "  # what starts this replica's messages: not for us
        self.live = False
        self.dropped = 0  # keys dropped for another replica's message
        self.ignored = 0  # own messages received and skipped

    def announcement(self, key: str) -> Announcement:
        """What tells the other replicas `key` changed (sent with the write or delete of it)."""
        return Announcement(self._channel, self._own + key)

    async def run(self) -> None:
        """Listen until cancelled, re-subscribing after every loss."""
        while True:
            try:
                async for message in self._store.subscribe(self._channel):
                    if message is None:
                        self.live = True
                        log.info("invalidation_subscribed")
                    else:
                        self._handle(message)
            except StoreUnavailable:
                pass
            if self.live:
                self.live = False
                await self._after_loss()
            await asyncio.sleep(self._reconnect_interval_s)

    def _handle(self, message: str) -> None:
        if message.startswith(self._own):
            self.ignored += 1
            return
        _, _, key = message.partition(" ")
        self._local.drop(key)
        self.dropped += 1

    async def _after_loss(self) -> None:
        try:
            await self._store.ping()
        except StoreUnavailable:
            log.warning("invalidation_lost_store_down_keeping_local_cache")
            return
        log.warning("invalidation_lost_clearing_local_cache")
        self._local.clear()
