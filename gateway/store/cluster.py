"""Redis Cluster credential store: `redis+cluster://` and `rediss+cluster://`.

    redis+cluster://[[user]:password@]host[:port][,host[:port]…][/0][?username=…&password=…]

The hosts are startup nodes (port 6379 when left out): any one that answers is enough to discover the
cluster. The gateway's keys for one identity share a hash tag (`<prefix>:v1:{<keyed hash>}:cred`,
`…:lock`, `…:fail`), so an identity's entry, lease and failure record sit in one slot and each store
call is one script on one node; different identities spread over the nodes.

This store routes commands itself over its slot map (gateway.store.cluster_map: one `RedisStore` per
primary, each behind its own health guard) instead of using redis-py's cluster client: that client,
when it has lost the topology, re-discovers it before every command and asks one "default" node for
the command table first — with the primary owning slot 0 dead, no command went anywhere although two
thirds of the slots were healthy. Here a MOVED reply is followed at once (the slot's new owner is
adopted and the command sent there once); a slot being migrated (ASK) or a slot no node serves is
StoreUnavailable for its keys only; a node that keeps failing is skipped by its guard, and after a
failover the refreshed map sends its keys to the promoted replica.

Run the cluster with `cluster-require-full-coverage no` to have the healthy slots keep serving while a
primary without a replica is down; with the default (`yes`) every node refuses every key until it is
back, and every key falls back to the vendor.

Pub/sub: a classic PUBLISH reaches the subscribers on every node (the cluster bus broadcasts it), so a
subscription needs a connection to just one node. `rediss+cluster://` speaks TLS to every node, with
the same options as `rediss://`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.crc import key_slot

from gateway.store import CredentialStore, Delete, LeaseClaim, ReadResult, StoreUnavailable, Write
from gateway.store.cluster_map import DEFAULT_REFRESH_INTERVAL_S, Address, SlotMap
from gateway.store.connection import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    Connection,
)
from gateway.store.guarded import UNREPORTED, GuardedStore, Guarding
from gateway.store.urls import parse_cluster_url

T = TypeVar("T")


class ClusterStore:
    """`CredentialStore` over a Redis Cluster: commands routed by hash slot, one guard per primary."""

    def __init__(
        self,
        startup_nodes: Sequence[Address],
        *,
        node_options: Mapping[str, Any],
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
        command_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
        guarding: Guarding = UNREPORTED,
    ) -> None:
        if node_options.get("decode_responses"):
            raise ValueError(
                "ClusterStore needs a client that returns bytes (decode_responses=False)"
            )
        if not startup_nodes:
            raise ValueError("ClusterStore needs at least one startup node")
        self._on_failure = guarding.on_failure
        self._map = SlotMap(
            startup_nodes,
            node_options,
            pubsub_heartbeat_s=pubsub_heartbeat_s,
            command_timeout_s=command_timeout_s,
            refresh_interval_s=refresh_interval_s,
            guarding=guarding,
        )
        self._last_subscriber: Address | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        connection: Connection = Connection(),  # noqa: B008
        *,
        guarding: Guarding = UNREPORTED,
    ) -> ClusterStore:
        """A store for a `redis+cluster://` or `rediss+cluster://` URL (see the module docstring).

        ValueError for a malformed URL, never quoting it. No connection is made here.
        """
        parsed = parse_cluster_url(url)
        options = connection.client_options(url, tls=parsed.tls)
        options.update(username=parsed.username, password=parsed.password)
        return cls(
            parsed.nodes,
            node_options=options,
            pubsub_heartbeat_s=connection.pubsub_heartbeat_s,
            command_timeout_s=connection.socket_timeout_s,
            guarding=guarding,
        )

    def guards(self) -> list[GuardedStore]:
        """The health guards of the primaries that serve slots now (what /readyz reports)."""
        return [self._map.node(address).guarded for address in self._map.serving()]

    def unserved_slots(self) -> int:
        """How many slots no primary serves (say, a dead primary's when a refresh no longer lists them)."""
        return self._map.unserved()

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """One script on the lease's node for the keys in its slot; the other keys read after it.

        A script may only touch keys of one slot; the gateway's per-identity keys share one, a
        per-provider key (a quota ban) does not. Those are read best-effort: a key whose node cannot
        answer reads as absent, so a dead node takes out only its own keys, never the lease."""
        if claim is None:
            values: dict[str, bytes | None] = {}
            for slot, group in _by_slot(keys).items():
                values.update(zip(group, await self._read_slot(slot, group), strict=True))
            return ReadResult([values[key] for key in keys])
        slot = key_slot(claim.key.encode())
        local = [key for key in keys if key_slot(key.encode()) == slot]
        result = await self._on_slot(slot, "read", lambda s: s.read(local, claim=claim))
        found = dict(zip(local, result.values, strict=True))
        for key in keys:
            if key not in found:
                found[key] = await self._read_best_effort(key)
        return ReadResult([found[key] for key in keys], leased=result.leased)

    async def write(self, request: Write) -> bool:
        """One script on the key's node; the lease must share the key's hash slot."""
        slot = key_slot(request.key.encode())
        if request.release is not None and key_slot(request.release.key.encode()) != slot:
            raise ValueError("write: the lease must share the key's hash slot")
        return await self._on_slot(slot, "write", lambda s: s.write(request))

    async def delete(self, request: Delete) -> int:
        """One script per hash slot among the keys; the announcement goes with the first."""
        groups = _by_slot(request.keys)
        if not groups:
            if request.announce is not None:
                await self._on_any_node("delete", lambda s: s.delete(request))
            return 0
        removed, announce = 0, request.announce
        for slot, group in groups.items():
            removed += await self._delete_slot(slot, Delete(group, request.owner, announce))
            announce = None
        return removed

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        return await self._on_slot(
            key_slot(key.encode()), "renew", lambda s: s.renew(key, owner, lease_s)
        )

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        return await self._on_slot(
            key_slot(key.encode()), "rate", lambda s: s.take_rate_slot(key, interval_s, burst)
        )

    async def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Subscribe on the first node that confirms; StoreUnavailable when none does, or when the
        subscription's node is lost later (subscribe again)."""
        for address in await self._map.subscriber_candidates(self._last_subscriber):
            subscription = self._map.node(address).store.subscribe(channel)
            try:
                live = await anext(subscription)
            except StoreUnavailable:
                await subscription.aclose()
                continue
            self._last_subscriber = address
            try:
                yield live
                async for message in subscription:
                    yield message
            finally:
                await subscription.aclose()
            return
        raise StoreUnavailable("redis SUBSCRIBE failed on every cluster node tried")

    async def ping(self) -> None:
        """Probe every serving primary (each guard learns its node's state); StoreUnavailable when none
        answers and serves. A node that fails asks for a fresh map, so a promotion is picked up."""
        await self._map.discover()
        guards = self.guards()
        outcomes = await asyncio.gather(*(g.ping() for g in guards), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, StoreUnavailable):
                raise failure
        if failures or self._map.unserved():
            self._map.refresh_soon()
        if len(failures) == len(guards):
            raise StoreUnavailable(
                f"no cluster node serves: {failures[0] if failures else 'none known'}"
            )

    async def close(self) -> None:
        """Close every node's connections, and stop a map refresh under way."""
        await self._map.close()

    # --- routing ----------------------------------------------------------------------------------

    async def _on_slot(
        self, slot: int, operation: str, call: Callable[[CredentialStore], Awaitable[T]]
    ) -> T:
        """`call` on the guarded store of the primary serving `slot`, following one MOVED."""
        await self._map.discover()
        owner = self._map.owner(slot)
        if owner is None:
            self._map.refresh_soon()
            self._report(operation)
            raise StoreUnavailable(f"redis cluster slot {slot} is not served by any node")
        try:
            return await call(self._map.node(owner).guarded)
        except StoreUnavailable as error:
            if error.kind == "moved" and error.moved_to is not None:
                self._map.moved(slot, error.moved_to)
                return await call(self._map.node(error.moved_to).guarded)
            if error.kind == "down":
                self._map.refresh_soon()
            raise

    async def _on_any_node(
        self, operation: str, call: Callable[[CredentialStore], Awaitable[T]]
    ) -> T:
        """`call` on the first serving primary that is up (for commands without a key)."""
        await self._map.discover()
        guards = sorted(self.guards(), key=lambda g: not g.up)
        if not guards:
            self._report(operation)
            raise StoreUnavailable("redis cluster has no serving node")
        return await call(guards[0])

    async def _read_slot(self, slot: int, keys: list[str]) -> list[bytes | None]:
        found = await self._on_slot(slot, "read", lambda store: store.read(keys))
        return found.values

    async def _delete_slot(self, slot: int, request: Delete) -> int:
        return await self._on_slot(slot, "delete", lambda store: store.delete(request))

    async def _read_best_effort(self, key: str) -> bytes | None:
        try:
            return (await self._read_slot(key_slot(key.encode()), [key]))[0]
        except StoreUnavailable:
            return None

    def _report(self, operation: str) -> None:
        """A call that failed before any node's guard saw it (nothing serves its slot)."""
        if self._on_failure is not None:
            self._on_failure(operation, "failed")


def _by_slot(keys: Sequence[str]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return groups
