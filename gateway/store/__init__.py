"""Credential store: one small interface, backed by Redis (standalone, Sentinel, Cluster) or memory.

The store is a key-value cache with per-key expiry, leases and publish/subscribe; what the keys and values
mean is the service's business. Its eight methods are what the callers need, each in one round trip:

- `read` keys (a hit: the entry alone), or take the identity's lease and read the records beside it;
- `write` a value, handing the lease back and telling the other replicas, in the same round trip;
- `delete` keys (a forgotten credential, or a lease handed back without an answer), announcing it;
  what a write or a delete does is one request object (`Write`, `Delete`), so an option is added once;
- `renew` a lease while a slow vendor call runs; `take_rate_slot` of a shared GCRA bucket;
- `subscribe` to the replicas' announcements; `ping`; `close`.

A lease is a plain key whose value is its owner. Taking one is idempotent for its owner (a command that
is retried after a lost reply reports the lease it took), and only its owner renews or hands it back.

Every backend raises `StoreUnavailable` (and nothing else) when it cannot answer, so the service can
carry on without it; `kind` says whether the backend is down (which the health guard counts), refused the
command, or redirected it to another Redis Cluster node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

UnavailableKind = Literal["down", "refused", "moved"]


class StoreUnavailable(Exception):
    """The backend did not answer (connection refused, timeout, cluster down, …) or refused the command.

    `kind`: "down" — the backend could not be reached or says it cannot serve (counted against its
    health); "refused" — it answered with an error reply; "moved" — a Redis Cluster node redirected the
    command to `moved_to` (host, port)."""

    def __init__(
        self,
        message: str,
        *,
        kind: UnavailableKind = "down",
        moved_to: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: UnavailableKind = kind
        self.moved_to = moved_to


@dataclass(frozen=True, slots=True)
class LeaseRef:
    """A lease held by `owner`, to hand back."""

    key: str
    owner: str


@dataclass(frozen=True, slots=True)
class LeaseClaim(LeaseRef):
    """Take the lease at `key` for `owner` for `lease_s` seconds, unless somebody else holds it."""

    lease_s: float


@dataclass(frozen=True, slots=True)
class Announcement:
    """A message for every subscriber of `channel` (every replica)."""

    channel: str
    message: str


@dataclass(frozen=True, slots=True)
class Write:
    """Store `value` at `key` for `ttl_s` seconds (> 0, millisecond precision); then, in the same round
    trip, hand back `release` and publish `announce`."""

    key: str
    value: bytes
    ttl_s: float
    release: LeaseRef | None = None
    announce: Announcement | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Forget `keys` — with `owner`, only those holding it (a lease handed back) — then publish
    `announce` (also with no keys)."""

    keys: Sequence[str] = ()
    owner: str | None = None
    announce: Announcement | None = None


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Each key's value in the order asked (None: absent), and whether the claimed lease was taken."""

    values: list[bytes | None]
    leased: bool = False


class CredentialStore(Protocol):
    """What the gateway needs from a cache backend."""

    async def read(self, keys: Sequence[str], *, claim: LeaseClaim | None = None) -> ReadResult:
        """The values of `keys`; with `claim`, the lease is tried first and the keys read after it, so a
        value the lease's last holder wrote before handing it back is always seen. Keys outside the
        lease's Redis Cluster hash slot cost a round trip more."""

    async def write(self, request: Write) -> bool:
        """Do the `Write`. False only when its lease was found held by another owner (it was lost)."""

    async def delete(self, request: Delete) -> int:
        """Do the `Delete`: how many keys were removed."""

    async def renew(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend the lease only if `owner` still holds it; False when the lease was lost."""

    async def take_rate_slot(self, key: str, interval_s: float, burst: int) -> float:
        """GCRA token bucket at `key`: 0 when a slot was taken, else seconds to wait before retrying.

        One slot per `interval_s` on average, up to `burst` at once; atomic across all clients."""

    def subscribe(self, channel: str) -> AsyncIterator[str | None]:
        """Messages published on `channel`: first yields None once the subscription is live, then each
        message as it arrives; raises StoreUnavailable when the connection is lost (subscribe again)."""

    async def ping(self) -> None:
        """Return when the backend answers; raise StoreUnavailable otherwise."""

    async def close(self) -> None:
        """Release connections."""
