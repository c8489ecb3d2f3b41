"""A Redis Cluster's slot map and its nodes: which primary serves each hash slot, read with CLUSTER SLOTS
from any node that answers (serving primaries first, then the startup nodes, then any other node
seen), at the first command and again — at most every `refresh_interval_s`, in the background — when
asked (after a MOVED reply, a node failing, a slot no node serves).

Each node is a `RedisStore` (a `NodeStore`) behind its own health guard: a dead primary takes out only
the keys of its slots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis

from gateway.store import StoreUnavailable
from gateway.store.guarded import UNREPORTED, GuardedStore, Guarding
from gateway.store.redis import RedisStore

SLOTS: Final = 16384
DEFAULT_REFRESH_INTERVAL_S: Final = 0.5

Address = tuple[str, int]


class NodeStore(RedisStore):
    """A `RedisStore` on one Cluster node: PING asks whether the node serves, and it reads the map."""

    async def ping(self) -> None:
        """Return when the node answers and serves (cluster_state ok); StoreUnavailable otherwise.

        A node answers PING even while the cluster is down and refuses every key; that is not up."""
        info = await self._command(
            "CLUSTER INFO",
            lambda: self._client.execute_command("CLUSTER INFO"),  # type: ignore[no-untyped-call]
        )
        state = _cluster_state(info)
        if state != "ok":
            raise StoreUnavailable(f"redis cluster node is not serving: cluster_state is {state}")

    async def slot_owners(self) -> list[tuple[int, int, Address]]:
        """(first slot, last slot, primary) for each served range, from CLUSTER SLOTS."""
        reply: list[Any] = await self._command(
            "CLUSTER SLOTS",
            lambda: self._client.execute_command("CLUSTER SLOTS"),  # type: ignore[no-untyped-call]
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
class Node:
    address: Address
    store: NodeStore  # the node's own client: discovery and subscriptions (not guarded)
    guarded: GuardedStore  # what commands go through


@dataclass
class _Topology:
    slots: list[Address | None] = field(default_factory=lambda: [None] * SLOTS)
    serving: list[Address] = field(default_factory=list)  # the primaries in `slots`, in order
    unserved: int = SLOTS  # slots no primary serves
    discovered: bool = False
    refreshed_at: float = float("-inf")
    last_failure: str = "none tried yet"  # why the last reading found no node, for error messages


class SlotMap:
    def __init__(
        self,
        startup_nodes: Sequence[Address],
        node_options: Mapping[str, Any],
        *,
        pubsub_heartbeat_s: float,
        command_timeout_s: float,
        refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
        guarding: Guarding = UNREPORTED,
    ) -> None:
        self.startup = list(startup_nodes)
        self._node_options = dict(node_options)
        self._pubsub_heartbeat_s = pubsub_heartbeat_s
        self._command_timeout_s = command_timeout_s
        self._refresh_interval_s = refresh_interval_s
        self._guarding = guarding
        self._clock = guarding.clock
        self.nodes: dict[Address, Node] = {}
        self._topology = _Topology()
        self._refreshing: asyncio.Task[None] | None = None

    def owner(self, slot: int) -> Address | None:
        return self._topology.slots[slot]

    def moved(self, slot: int, owner: Address) -> None:
        """A MOVED reply: `slot` is served by `owner` now (the whole map is read again soon)."""
        self._topology.slots[slot] = owner
        if owner not in self._topology.serving:
            self._topology.serving.append(owner)
        self.refresh_soon()

    def serving(self) -> list[Address]:
        return list(self._topology.serving)

    def serving_up(self) -> list[Address]:
        return [a for a in self._topology.serving if self.node(a).guarded.up]

    def unserved(self) -> int:
        return self._topology.unserved

    def node(self, address: Address) -> Node:
        node = self.nodes.get(address)
        if node is None:
            host, port = address
            store = NodeStore(
                Redis(host=host, port=port, decode_responses=False, **self._node_options),
                pubsub_heartbeat_s=self._pubsub_heartbeat_s,
                command_timeout_s=self._command_timeout_s,
            )
            guarded = GuardedStore(
                store,
                name=f"{host}:{port}",
                guarding=self._guarding,
            )
            node = self.nodes[address] = Node(address, store, guarded)
        return node

    async def discover(self) -> None:
        """Read the map if none was read yet (all callers wait for one reading); while no node answers,
        at most one reading is tried per refresh interval and the others fail at once."""
        if self._topology.discovered:
            return
        self.refresh_soon()
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        if not self._topology.discovered:
            raise StoreUnavailable(
                f"redis cluster: no node answered CLUSTER SLOTS (last: {self._topology.last_failure})"
            )

    def refresh_soon(self) -> None:
        """Read the map again in the background, unless a reading is under way or was just made."""
        if self._refreshing is not None:
            return
        if self._clock() - self._topology.refreshed_at < self._refresh_interval_s:
            return
        self._topology.refreshed_at = self._clock()
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        self._refreshing.add_done_callback(self._refresh_done)

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            await asyncio.wait({self._refreshing})
        for node in self.nodes.values():
            await node.store.close()

    async def subscriber_candidates(self, last: Address | None) -> list[Address]:
        """Where to subscribe: the node that last worked, serving primaries up, the startup nodes."""
        with contextlib.suppress(StoreUnavailable):  # the startup nodes are still worth a try
            await self.discover()
        first = [] if last is None else [last]
        return list(dict.fromkeys([*first, *self.serving_up(), *self.startup]))

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # retrieved: a failed reading is reported by the callers that needed it

    async def _refresh(self) -> None:
        candidates = dict.fromkeys([*self.serving_up(), *self.startup, *self.nodes])
        for address in candidates:
            try:
                ranges = await self.node(address).store.slot_owners()
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
        on_change = self._guarding.on_change
        if on_change is not None:
            for address in before.symmetric_difference(topology.serving):
                on_change(self.node(address).guarded)


def _cluster_state(info: Any) -> str:
    """cluster_state from a CLUSTER INFO reply, parsed by redis-py or not."""
    if isinstance(info, Mapping):
        return str(info.get("cluster_state"))
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return fields.get("cluster_state", "unknown").strip()
