"""Cross-replica invalidation of the in-process hit cache over the store's publish/subscribe.

Every write or delete of a credential publishes `<replica> <key>`; every other replica drops that key
from its local cache. If the subscription is lost while the store still answers, messages may have been
missed, so the local cache is cleared; if the store itself is down, the local cache is kept: it is then
the fallback that keeps answering without a login storm.
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
        self._replica = uuid.uuid4().hex  # our own messages are not for us
        self.live = False

    def announcement(self, key: str) -> Announcement:
        """What tells the other replicas `key` changed (sent with the write or delete of it)."""
        return Announcement(self._channel, f"{self._replica} {key}")

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
        replica, _, key = message.partition(" ")
        if replica != self._replica:
            self._local.drop(key)

    async def _after_loss(self) -> None:
        try:
            await self._store.ping()
        except StoreUnavailable:
            log.warning("invalidation_lost_store_down_keeping_local_cache")
            return
        log.warning("invalidation_lost_clearing_local_cache")
        self._local.clear()
