"""Pick the credential store backend from the `redis_url` setting's scheme, behind its health guards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, TypedDict, Unpack

from gateway.store import CredentialStore
from gateway.store.cluster import ClusterStore
from gateway.store.connection import DEFAULT_SOCKET_TIMEOUT_S, Connection
from gateway.store.guarded import UNREPORTED, GuardedStore, Guarding
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.store.sentinel import SentinelStore
from gateway.store.urls import scheme_of

SUPPORTED_SCHEMES: Final = (
    "memory",
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)

StoreState = Literal["up", "degraded", "down"]


class TlsOptions(TypedDict, total=False):
    """Files for `rediss://`: the CA bundle to trust, and a client certificate and key if required."""

    ssl_ca_certs: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None


@dataclass(frozen=True)
class StoreHealth:
    """What the guards say now: each backend (a Cluster primary, or the one server) up or down."""

    shards: dict[str, bool]
    unserved_slots: int = 0
    seconds_in_state: float = 0.0

    @property
    def state(self) -> StoreState:
        """up: everything answers; down: nothing does; degraded: some keys fall back to the vendor."""
        if not self.shards:
            return "down" if self.unserved_slots else "up"
        up = sum(self.shards.values())
        if up == len(self.shards) and not self.unserved_slots:
            return "up"
        return "down" if up == 0 else "degraded"


@dataclass(frozen=True)
class OpenedStore:
    """The store the service uses, and how to read its health."""

    store: CredentialStore
    guards: Callable[[], Sequence[GuardedStore]] = field(default=lambda: ())
    unserved_slots: Callable[[], int] = field(default=lambda: 0)

    @classmethod
    def guarded(
        cls,
        store: CredentialStore,
        guarding: Guarding = UNREPORTED,
    ) -> OpenedStore:
        """A store made elsewhere (tests, embedding) behind one health guard, like a configured one."""
        guard = GuardedStore(store, guarding=guarding)
        return cls(guard, lambda: (guard,))

    def health(self) -> StoreHealth:
        guards = self.guards()
        return StoreHealth(
            shards={guard.name: guard.up for guard in guards},
            unserved_slots=self.unserved_slots(),
            seconds_in_state=min((g.seconds_in_state() for g in guards), default=0.0),
        )


def open_store(
    url: str,
    *,
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    guarding: Guarding = UNREPORTED,
    **tls_options: Unpack[TlsOptions],
) -> OpenedStore:
    """The store `url` names, each Redis server behind a health guard; ValueError for a malformed URL
    or a scheme this gateway cannot serve.

    No connection is made here, so a Redis that is down shows up at the first call as StoreUnavailable.
    Error messages never quote the URL beyond its scheme (it may carry a password).
    """
    scheme = scheme_of(url)
    if scheme == "memory":
        if any(value is not None for value in tls_options.values()):
            raise ValueError("TLS options need a rediss:// URL, not memory://")
        return OpenedStore(MemoryStore())
    connection = Connection(socket_timeout_s=socket_timeout_s, **tls_options)
    if scheme in ("redis+cluster", "rediss+cluster"):
        cluster = ClusterStore.from_url(url, connection, guarding=guarding)
        return OpenedStore(cluster, cluster.guards, cluster.unserved_slots)
    backend: RedisStore
    if scheme in ("redis", "rediss", "unix"):
        backend = RedisStore.from_url(url, connection)
    elif scheme in ("redis+sentinel", "rediss+sentinel"):
        backend = SentinelStore.from_url(url, connection)
    else:
        raise ValueError(_unsupported_scheme_message(scheme))
    guard = GuardedStore(backend, name=scheme.split("+")[-1], guarding=guarding)
    return OpenedStore(guard, lambda: (guard,))


def _unsupported_scheme_message(scheme: str) -> str:
    # Name only the scheme: the rest of the URL may carry a password.
    supported = ", ".join(f"{name}://" for name in SUPPORTED_SCHEMES)
    shown = f"{scheme}://" if scheme else "(none)"
    return f"unsupported store URL scheme {shown}; supported: {supported}"
