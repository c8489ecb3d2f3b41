"""The records kept beside the credentials: remembered vendor rejections and quota bans.

Both are read in the round trip that takes an identity's lease (gateway.cache.keys), so deciding not to
call the vendor costs no extra store call.

- A caller-class rejection (the vendor refused this identity's input) is remembered for
  `failure_cooldown_s`, per identity: the same request is answered the same 422 again, with
  Retry-After, without calling the vendor — a client retrying a bad request in a loop costs one call.
- A quota answer (TOP code 7 and kin) bans the whole provider for the seconds the vendor names, on every
  replica: each remembers it locally too, so a ban holds while the store is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from gateway.cache.keys import KeySpace
from gateway.clock import Clock
from gateway.errors import UpstreamDetail, VendorQuotaExceeded, VendorRejectedInput
from gateway.store import CredentialStore, StoreUnavailable, Write

_RECORD_ERRORS = (orjson.JSONDecodeError, KeyError, TypeError, ValueError)


@dataclass
class FailureMemory:
    """Caller-class vendor rejections remembered per identity for `cooldown_s` (0: off)."""

    store: CredentialStore
    cooldown_s: float
    clock: Clock
    on_replay: Callable[[str], None] | None = None  # with the provider's name, per answer replayed

    async def remember(self, failure_key: str, rejected: VendorRejectedInput) -> None:
        if self.cooldown_s <= 0:
            return
        record = {
            "code": rejected.code,
            "detail": rejected.detail,
            "upstream": rejected.upstream.as_dict() if rejected.upstream else None,
            "until": self.clock.time() + self.cooldown_s,
        }
        # Not kept is not fatal: the next request asks the vendor again (the store counts the failure).
        with contextlib.suppress(StoreUnavailable):
            await self.store.write(Write(failure_key, orjson.dumps(record), self.cooldown_s))

    def raise_if_cooling_down(self, provider: str, record: bytes | None) -> None:
        """Answer a remembered rejection of this identity again, without calling the vendor."""
        if record is None or self.cooldown_s <= 0:
            return
        try:
            decoded = orjson.loads(record)
            remaining = decoded["until"] - self.clock.time()
            upstream = UpstreamDetail(**decoded["upstream"]) if decoded["upstream"] else None
            code, detail = str(decoded["code"]), str(decoded["detail"])
        except _RECORD_ERRORS:
            return
        if remaining <= 0:
            return
        seconds = max(1, int(remaining + 0.999))
        if self.on_replay is not None:
            self.on_replay(provider)
        raise VendorRejectedInput(
            f"{detail} (remembered: not sent to the vendor again for {seconds} s)",
            code=code,
            provider=provider,
            upstream=upstream,
            retry_after_s=seconds,
        )


@dataclass
class QuotaBans:
    """Providers the vendor has call-limited, shared through the store and remembered here."""

    store: CredentialStore
    keys: KeySpace
    clock: Clock
    on_change: Callable[[str, bool], None] | None = None  # (provider, banned now)
    _until: dict[str, float] = field(default_factory=dict)

    def raise_if_banned(self, provider: str, record: bytes | None) -> None:
        """429 at once while a ban holds. `record` is what the store holds at the ban key (None:
        nothing, or not read)."""
        until = self._until.get(provider, 0.0)
        if record is not None:
            with contextlib.suppress(*_RECORD_ERRORS):
                until = max(until, float(orjson.loads(record)["until"]))
                self._until[provider] = until  # remembered should the store go away
        remaining = until - self.clock.time()
        self._note(provider, banned=remaining > 0)
        if remaining > 0:
            raise VendorQuotaExceeded(
                f"the vendor has this app key call-limited for {remaining:.0f} more s; not called",
                provider=provider,
                retry_after_s=max(1, round(remaining)),
            )

    async def ban(self, provider: str, quota: VendorQuotaExceeded, default_s: int) -> None:
        """Ban the provider on every replica for the seconds the vendor named (else `default_s`)."""
        seconds = quota.retry_after_s or default_s
        quota.retry_after_s = seconds
        until = self.clock.time() + seconds
        self._until[provider] = until
        self._note(provider, banned=True)
        with contextlib.suppress(StoreUnavailable):
            await self.store.write(
                Write(self.keys.ban(provider), orjson.dumps({"until": until}), seconds)
            )

    def _note(self, provider: str, *, banned: bool) -> None:
        if self.on_change is not None:
            self.on_change(provider, banned)
