"""The store calls tests make most, each one real method of the store protocol."""

from __future__ import annotations

from gateway.store import Announcement, CredentialStore, Delete, LeaseClaim


async def get(store: CredentialStore, key: str) -> bytes | None:
    """One key's value through `read`."""
    return (await store.read([key])).values[0]


async def claim(store: CredentialStore, lease: str, owner: str, lease_s: float) -> bool:
    """Try to take the lease `lease` for `owner`, reading nothing beside it."""
    return (await store.read([], claim=LeaseClaim(lease, owner, lease_s))).leased


async def claim_and_read(
    store: CredentialStore,
    lease: str,
    owner: str,
    lease_s: float,
    keys: list[str],
) -> tuple[bool, list[bytes | None]]:
    """Try the lease and read `keys` after it, in one call: (taken, values)."""
    found = await store.read(keys, claim=LeaseClaim(lease, owner, lease_s))
    return found.leased, found.values


async def hand_back(store: CredentialStore, lease: str, owner: str) -> bool:
    """Hand the lease back (an owner-checked delete); True when it was removed."""
    return await store.delete(Delete([lease], owner=owner)) == 1


async def publish(store: CredentialStore, channel: str, message: str) -> None:
    """Announce `message` on `channel` without touching a key."""
    await store.delete(Delete([], announce=Announcement(channel, message)))
