"""Redis Cluster credential store: `redis+cluster://` and `rediss+cluster://`.

    redis+cluster://[[user]:password@]host[:port][,host[:port]…][/0][?username=…&password=…]

The hosts are startup nodes (port 6379 when left out): any one that answers is enough to discover the
cluster. The gateway's keys for one identity share a hash tag (`<prefix>:v1:{<keyed hash>}:cred`,
`…:lock`, `…:fail`), so an identity's entry, lease and failure record sit in one slot and each store
call is one script on one node; different identities spread over the nodes.

This store routes commands itself, over one `RedisStore` per primary, each behind its own health guard
(gateway.store.guarded), instead of using redis-py's cluster client: that client, when it has lost the
topology, re-discovers it before every command and asks one "default" node for the command table
first — with the primary owning slot 0 dead, no command went anywhere although two thirds of the slots
were healthy. Here:

- the slot map is read with CLUSTER SLOTS from any node that answers (serving primaries first, then the
  startup nodes, then any other node seen), at the first command and again — at most every
  `refresh_interval_s`, in the background — after a MOVED reply or a node failing;
- a MOVED reply is followed at once (the slot's new owner is adopted and the command sent there once);
  a slot being migrated (ASK) or a slot no node serves is StoreUnavailable for its keys only;
- a node that keeps failing is skipped by its guard, so only the keys of its slots fall back to the
  vendor; after a failover the refreshed map sends them to the promoted replica.

Run the cluster with `cluster-require-full-coverage no` to have the healthy slots keep serving while a
primary without a replica is down; with the default (`yes`) every node refuses every key until it is
back, and every key falls back to the vendor.

Pub/sub: a classic PUBLISH reaches the subscribers on every node (the cluster bus broadcasts it), so a
subscription needs a connection to just one node: the one that last worked, else a serving primary, else
a startup node. `rediss+cluster://` speaks TLS to every node, with the same options as `rediss://`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.crc import key_slot

from gateway.store import (
    Announcement,
    CredentialStore,
    LeaseClaim,
    LeaseRef,
    ReadResult,
    StoreUnavailable,
)
from gateway.store.guarded import GuardedStore, OnFailure
from gateway.store.redis import (
    DEFAULT_PUBSUB_HEARTBEAT_S,
    DEFAULT_SOCKET_TIMEOUT_S,
    RedisStore,
    multi_host_options,
    unavailable_on_error,
)
from gateway.store.urls import parse_multi_host_url

DEFAULT_CLUSTER_PORT: Final = 6379
QUERY_NAMES: Final = frozenset({"username", "password"})
SLOTS: Final = 16384
DEFAULT_REFRESH_INTERVAL_S: Final = 0.5

Address = tuple[str, int]
T = TypeVar("T")


class NodeStore(RedisStore):
    """A `RedisStore` on one Cluster node: PING asks whether the node serves, and it reads the map."""

    async def ping(self) -> None:
        """Return when the node answers and serves (cluster_state ok); StoreUnavailable otherwise.

        A node answers PING even while the cluster is down and refuses every key; that is not up."""
        with unavailable_on_error("CLUSTER INFO"):
            info = await self._client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        state = _cluster_state(info)
        if state != "ok":
            raise StoreUnavailable(f"redis cluster node is not serving: cluster_state is {state}")

    async def slot_owners(self) -> list[tuple[int, int, Address]]:
        """(first slot, last slot, primary) for each served range, from CLUSTER SLOTS."""
        with unavailable_on_error("CLUSTER SLOTS"):
            reply: list[Any] = await self._client.execute_command(  # type: ignore[no-untyped-call]
                "CLUSTER SLOTS"
            )
        asked_host = self._client.connection_pool.connection_kwargs.get("host", "127.0.0.1")
        ranges = []
        for first, last, primary, *_replicas in reply:
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            # An empty or "?" host means "the address you reached me on" (cluster-announce unset).
            address = (host if host not in ("", "?") else asked_host, int(primary[1]))
            ranges.append((int(first), int(last), address))
        return ranges


@dataclass
class _Node:
    address: Address
    store: NodeStore  # the node's own client, for discovery (not guarded)
    guarded: GuardedStore  # what commands go through


@dataclass
class _Topology:
    slots: list[Address | None] = field(default_factory=lambda: [None] * SLOTS)
    serving: list[Address] = field(default_factory=list)  # the primaries in `slots`, in order
    unserved: int = SLOTS  # slots no primary serves
    discovered: bool = False
    refreshed_at: float = float("-inf")
    last_failure: str = "none tried yet"  # why the last reading found no node, for error messages

    def move(self, slot: int, owner: Address) -> None:
        """A MOVED reply: `slot` is served by `owner` now."""
        self.slots[slot] = owner
        if owner not in self.serving:
            self.serving.append(owner)


class ClusterStore:
    """`CredentialStore` over a Redis Cluster: commands routed by hash slot, one guard per primary."""

    def __init__(
        self,
        startup_nodes: Sequence[Address],
        *,
        node_options: Mapping[str, Any],
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
        refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
        on_change: Callable[[GuardedStore], None] | None = None,
        on_failure: OnFailure | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if node_options.get("decode_responses"):
            raise ValueError(
                "ClusterStore needs a client that returns bytes (decode_responses=False)"
            )
        if not startup_nodes:
            raise ValueError("ClusterStore needs at least one startup node")
        self._startup = list(startup_nodes)
        self._node_options = dict(node_options)
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        self._refresh_interval_s = refresh_interval_s
        self._on_change = on_change
        self._on_failure = on_failure
        self._clock = clock
        self._nodes: dict[Address, _Node] = {}
        self._topology = _Topology()
        self._refreshing: asyncio.Task[None] | None = None
        self._last_subscriber: Address | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        pubsub_heartbeat_s: float = DEFAULT_PUBSUB_HEARTBEAT_S,
        on_change: Callable[[GuardedStore], None] | None = None,
        on_failure: OnFailure | None = None,
    ) -> ClusterStore:
        """A store for a `redis+cluster://` or `rediss+cluster://` URL (see the module docstring).

        ValueError for a malformed URL, never quoting it. No connection is made here.
        """
        parsed = parse_cluster_url(url)
        options = multi_host_options(
            url,
            tls=parsed.tls,
            socket_timeout_s=socket_timeout_s,
            ssl_ca_certs=ssl_ca_certs,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        options.update(username=parsed.username, password=parsed.password)
        return cls(
            parsed.nodes,
            node_options=options,
            pubsub_heartbeat_s=pubsub_heartbeat_s,
            on_change=on_change,
            on_failure=on_failure,
        )

    def guards(self) -> list[GuardedStore]:
        """The health guards of the primaries that serve slots now (what /readyz reports)."""
        return [self._node(address).guarded for address in self._topology.serving]

    def unserved_slots(self) -> int:
        """How many slots no primary serves (say, a dead primary's when a refresh no longer lists them)."""
        return self._topology.unserved

    # --- the store methods ----------------------------------------------------------------------

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """One script on the lease's node for the keys in its slot; the other keys read after it.

        A script may only touch keys of one slot; the gateway's per-identity keys share one, a
        per-provider key (a quota ban) does not. Those are read best-effort: a key whose node cannot
        answer reads as absent, so a dead node takes out only its own keys, never the lease. With
        `claim.unless_cached`, `keys[0]` must be in the lease's slot."""
        if claim is None:
            values: dict[str, bytes | None] = {}
            for slot, group in _by_slot(keys).items():
                values.update(zip(group, await self._read_slot(slot, group), strict=True))
            return ReadResult([values[key] for key in keys])
        slot = key_slot(claim.key.encode())
        local = [key for key in keys if key_slot(key.encode()) == slot]
        if claim.unless_cached and keys and local[:1] != [keys[0]]:
            raise ValueError("unless_cached needs keys[0] in the lease's hash slot")
        result = await self._on_slot(slot, "read", lambda s: s.read(local, claim=claim))
        if claim.unless_cached and result.values and result.values[0] is not None:
            return ReadResult([result.values[0]] + [None] * (len(keys) - 1))
        found = dict(zip(local, result.values, strict=True))
        for key in keys:
            if key not in found:
                found[key] = await self._read_best_effort(key)
        return ReadResult([found[key] for key in keys], leased=result.leased)

    async def write(
        self,
        key: str,
        value: bytes,
        ttl_s: float,
        *,
        release: LeaseRef | None = None,
        announce: Announcement | None = None,
    ) -> bool:
        """One script on the key's node; the lease must share the key's hash slot."""
        slot = key_slot(key.encode())
        if release is not None and key_slot(release.key.encode()) != slot:
            raise ValueError("write: the lease must share the key's hash slot")
        return await self._on_slot(
            slot, "write", lambda s: s.write(key, value, ttl_s, release=release, announce=announce)
        )

    async def delete(
        self,
        keys: Sequence[str],
        *,
        owner: str | None = None,
        announce: Announcement | None = None,
    ) -> int:
        """One script per hash slot among `keys`; the announcement goes with the first."""
        groups = _by_slot(keys)
        if not groups:
            if announce is not None:
                await self._on_any_node("delete", lambda s: s.delete([], announce=announce))
            return 0
        removed = 0
        for slot, group in groups.items():
            removed += await self._delete_slot(slot, group, owner, announce)
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
        for address in await self._subscriber_candidates():
            subscription = self._node(address).store.subscribe(channel)
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
        await self._discover()
        guards = self.guards()
        outcomes = await asyncio.gather(*(g.ping() for g in guards), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, StoreUnavailable):
                raise failure
        if failures or self.unserved_slots():
            self._schedule_refresh()
        if len(failures) == len(guards):
            raise StoreUnavailable(
                f"no cluster node serves: {failures[0] if failures else 'none known'}"
            )

    async def close(self) -> None:
        """Close every node's connections, and stop a map refresh under way."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            await asyncio.wait({self._refreshing})
        for node in self._nodes.values():
            await node.store.close()

    # --- routing ----------------------------------------------------------------------------------

    async def _on_slot(
        self, slot: int, operation: str, call: Callable[[CredentialStore], Awaitable[T]]
    ) -> T:
        """`call` on the guarded store of the primary serving `slot`, following one MOVED."""
        await self._discover()
        owner = self._topology.slots[slot]
        if owner is None:
            self._schedule_refresh()
            self._report(operation)
            raise StoreUnavailable(f"redis cluster slot {slot} is not served by any node")
        try:
            return await call(self._node(owner).guarded)
        except StoreUnavailable as error:
            if error.kind == "moved" and error.moved_to is not None:
                self._topology.move(slot, error.moved_to)
                self._schedule_refresh()
                return await call(self._node(error.moved_to).guarded)
            if error.kind == "down":
                self._schedule_refresh()
            raise

    async def _on_any_node(
        self, operation: str, call: Callable[[CredentialStore], Awaitable[T]]
    ) -> T:
        """`call` on the first serving primary that is up (for commands without a key)."""
        await self._discover()
        guards = sorted(self.guards(), key=lambda g: not g.up)
        if not guards:
            self._report(operation)
            raise StoreUnavailable("redis cluster has no serving node")
        return await call(guards[0])

    async def _read_slot(self, slot: int, keys: list[str]) -> list[bytes | None]:
        found = await self._on_slot(slot, "read", lambda store: store.read(keys))
        return found.values

    async def _delete_slot(
        self, slot: int, keys: list[str], owner: str | None, announce: Announcement | None
    ) -> int:
        return await self._on_slot(
            slot, "delete", lambda store: store.delete(keys, owner=owner, announce=announce)
        )

    async def _read_best_effort(self, key: str) -> bytes | None:
        try:
            return (await self._read_slot(key_slot(key.encode()), [key]))[0]
        except StoreUnavailable:
            return None

    def _node(self, address: Address) -> _Node:
        node = self._nodes.get(address)
        if node is None:
            host, port = address
            store = NodeStore(
                Redis(host=host, port=port, decode_responses=False, **self._node_options),
                pubsub_heartbeat_s=self._pubsub_heartbeat_s,
            )
            guarded = GuardedStore(
                store,
                name=f"{host}:{port}",
                clock=self._clock,
                on_change=self._on_change,
                on_failure=self._on_failure,
            )
            node = self._nodes[address] = _Node(address, store, guarded)
        return node

    def _report(self, operation: str) -> None:
        """A call that failed before any node's guard saw it (nothing serves its slot)."""
        if self._on_failure is not None:
            self._on_failure(operation, "failed")

    # --- the slot map -----------------------------------------------------------------------------

    async def _discover(self) -> None:
        """Read the slot map if none was read yet (all callers wait for one reading); while no node
        answers, at most one reading is tried per refresh interval and the others fail at once."""
        if self._topology.discovered:
            return
        self._schedule_refresh()
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        if not self._topology.discovered:
            raise StoreUnavailable(
                f"redis cluster: no node answered CLUSTER SLOTS (last: {self._topology.last_failure})"
            )

    def _schedule_refresh(self) -> None:
        """Read the map again in the background, unless a reading is under way or was just made."""
        if self._refreshing is None and (
            self._clock() - self._topology.refreshed_at >= self._refresh_interval_s
        ):
            self._start_refresh()

    def _start_refresh(self) -> None:
        self._topology.refreshed_at = self._clock()
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        self._refreshing.add_done_callback(self._refresh_done)

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # retrieved: a failed reading is reported by the callers that needed it

    async def _refresh(self) -> None:
        for address in self._discovery_candidates():
            try:
                ranges = await self._node(address).store.slot_owners()
            except StoreUnavailable as error:
                self._topology.last_failure = str(error)
                continue
            self._apply(ranges)
            return

    def _apply(self, ranges: list[tuple[int, int, Address]]) -> None:
        topology = self._topology
        before = set(topology.serving)
        slots: list[Address | None] = [None] * SLOTS
        for first, last, primary in ranges:
            slots[first : last + 1] = [primary] * (last - first + 1)
        topology.slots = slots
        topology.serving = list(dict.fromkeys(primary for _, _, primary in ranges))
        topology.unserved = slots.count(None)
        topology.discovered = True
        if self._on_change is not None:
            for address in before.symmetric_difference(topology.serving):
                self._on_change(self._node(address).guarded)

    def _serving_up(self) -> list[Address]:
        return [a for a in self._topology.serving if self._node(a).guarded.up]

    def _discovery_candidates(self) -> list[Address]:
        """Serving primaries that are up, then the startup nodes, then every other node seen."""
        return list(dict.fromkeys([*self._serving_up(), *self._startup, *self._nodes]))

    async def _subscriber_candidates(self) -> list[Address]:
        with contextlib.suppress(StoreUnavailable):  # the startup nodes are still worth a try
            await self._discover()
        first = [] if self._last_subscriber is None else [self._last_subscriber]
        return list(dict.fromkeys([*first, *self._serving_up(), *self._startup]))


def _by_slot(keys: Sequence[str]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return groups


def _cluster_state(info: Any) -> str:
    """cluster_state from a CLUSTER INFO reply, parsed by redis-py or not."""
    if isinstance(info, Mapping):
        return str(info.get("cluster_state"))
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return fields.get("cluster_state", "unknown").strip()


@dataclass(frozen=True)
class ClusterUrl:
    """What a `redis+cluster://` URL says; the credentials are left out of the repr."""

    nodes: tuple[Address, ...]
    tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def parse_cluster_url(url: str) -> ClusterUrl:
    """Parse a `redis+cluster://` or `rediss+cluster://` URL; ValueError (never quoting it) if bad."""
    parts = parse_multi_host_url(url, default_port=DEFAULT_CLUSTER_PORT, query_names=QUERY_NAMES)
    if parts.path not in ((), ("0",)):
        raise ValueError(
            f"bad {parts.scheme}:// store URL: a cluster has only database 0 "
            "(leave the path out or give /0)"
        )
    return ClusterUrl(
        nodes=parts.hosts, tls=parts.tls, username=parts.username, password=parts.password
    )
