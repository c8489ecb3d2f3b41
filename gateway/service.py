"""cache -> single flight -> vendor -> cache: the gateway's only orchestration.

A login is answered, in order, from: the in-process hit cache; the shared store; a vendor call that
identical concurrent callers share — in this process (one task) and across replicas (a lease in the
store; other replicas wait for its answer). A credential inside its refresh window is served at once
while one background call renews it; past its serve-until point it is served only if the vendor fails
("stale"), never past the vendor's expiry. A caller-class vendor rejection is remembered for a short
cooldown per identity. Store trouble turns into misses, never into errors (see README "How caching
works").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from gateway.cache.entry import CacheEntry, decode_entry, schedule
from gateway.cache.invalidation import Invalidation
from gateway.cache.lease import Lease
from gateway.cache.local import LocalCache
from gateway.errors import (
    CacheUnavailable,
    GatewayError,
    InvalidBody,
    UnknownProvider,
    UpstreamDetail,
    VendorRejectedInput,
    VendorTimeout,
)
from gateway.log_context import bind_log_context
from gateway.metrics import Metrics
from gateway.providers.base import Credential, Inputs
from gateway.providers.registry import Provider
from gateway.store import CredentialStore, StoreUnavailable
from gateway.store.factory import StoreHealth
from gateway.upstream import Upstream

log = structlog.get_logger("gateway.service")

LEASE_EXTRA_S = 5.0  # a lease outlasts the request deadline by this much (and is renewed meanwhile)
WAIT_POLL_FIRST_S, WAIT_POLL_MAX_S = 0.02, 0.2  # waiting for another replica's vendor call
BIND_POLL_FIRST_S, BIND_POLL_MAX_S = 0.5, 3.0  # the bind check's wait_s loop


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The normalized answer for one `/auth/<provider>` call (DESIGN.md "Success (200)")."""

    provider: str
    kind: str
    token: str | None
    expires_at: int | None
    cached: bool
    data: dict[str, Any] = field(default_factory=dict)
    upstream_request_id: str | None = None
    stale: bool = False
    vendor_ms: float | None = field(default=None, compare=False)  # for the log line, not the body
    body: bytes | None = field(default=None, compare=False)  # as_json() already serialized

    def encoded(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.as_json())

    def as_json(self) -> dict[str, Any]:
        body = {
            "provider": self.provider,
            "kind": self.kind,
            "token": self.token,
            "expires_at": self.expires_at,
            "cached": self.cached,
            "data": self.data,
            "upstream_request_id": self.upstream_request_id,
        }
        if self.stale:
            body["stale"] = True
        return body


@dataclass(frozen=True, slots=True)
class Claim:
    """A lease a store read took for a vendor call, with what it read beside the (absent) entry."""

    lease: Lease
    failure: bytes | None
    ban: bytes | None


@dataclass(frozen=True, slots=True)
class CacheOptions:
    key_prefix: str = "gw"
    cache_key_secret: str | None = None
    failure_cooldown_s: float = 30.0
    local_max_entries: int = 10_000
    local_max_age_s: float = 300.0


class AuthService:
    """Answers logins from the caches when it can, from the vendor when it must."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        store: CredentialStore,
        upstream: Upstream,
        metrics: Metrics,
        *,
        options: CacheOptions | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        store_health: Callable[[], StoreHealth] = lambda: StoreHealth(shards={}),
    ) -> None:
        options = options or CacheOptions()
        self._store_health = store_health
        self.providers = dict(providers)
        self._store = store
        self._upstream = upstream
        self._metrics = metrics
        self._options = options
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._flights: dict[str, asyncio.Task[LoginResult]] = {}
        self._unjoined: set[str] = set()  # flights a store read started for callers not there yet
        self._reads: dict[str, asyncio.Task[CacheEntry | None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.local = LocalCache(
            max_entries=options.local_max_entries, max_age_s=options.local_max_age_s
        )
        self.invalidation = Invalidation(store, self.local, f"{options.key_prefix}:v1:invalidate")
        # Each provider's cache keys are HMAC'd with the configured key, else with a key derived from
        # the provider's app secret — a secret every replica already shares.
        self._key_secrets = {
            name: (options.cache_key_secret or _derive(p.secret, "gateway cache key v1")).encode()
            for name, p in self.providers.items()
        }

    async def start(self) -> None:
        self._spawn(self.invalidation.run())

    async def close(self) -> None:
        for task in list(self._background) + list(self._flights.values()):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- the API the handlers use -------------------------------------------------------------

    async def store_health(self) -> StoreHealth:
        """A fresh reading of the store's health: a ping (the guards record its outcome), then what
        the guards say."""
        with contextlib.suppress(StoreUnavailable):
            await self._store.ping()
        return self._store_health()

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise UnknownProvider(f"there is no provider named {name!r}") from None

    def parse_inputs(self, provider: Provider, raw: Mapping[str, Any]) -> Inputs:
        """The kind's validated inputs, or a 400 naming every field at fault (the vendor is not called)."""
        try:
            return provider.parse_inputs(raw)
        except ValidationError as exc:
            fields = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            names = ", ".join(f["field"] for f in fields)
            raise InvalidBody(
                f"invalid input for {provider.kind}: {names}",
                provider=provider.name,
                extensions={"errors": fields},
            ) from None

    async def login(
        self, provider: Provider, inputs: Inputs, *, fresh: bool = False, key: str | None = None
    ) -> LoginResult:
        """The credential for this identity: cached unless `fresh`, else one shared vendor call.

        A bind check with `wait_s` polls until bound or the wait ends; concurrent waiters for the same
        identity share one poll loop."""
        wait_s = inputs.poll_wait_s()
        if wait_s is None:
            return await self._login_once(provider, inputs, fresh=fresh, key=key)
        if wait_s > provider.settings.bind_wait_max_s:
            raise InvalidBody(
                f"wait_s may be at most {provider.settings.bind_wait_max_s:g} for this provider",
                provider=provider.name,
                extensions={"errors": [{"field": "wait_s", "message": "too long"}]},
            )
        key = self.cache_key(provider, inputs) + ":poll"
        return await self._single_flight(
            key, lambda: self._poll_until_bound(provider, inputs, wait_s)
        )

    async def _poll_until_bound(
        self, provider: Provider, inputs: Inputs, wait_s: float
    ) -> LoginResult:
        ends_at = time.monotonic() + wait_s
        interval = BIND_POLL_FIRST_S
        while True:
            result = await self._login_once(provider, inputs, fresh=False)
            if result.data.get("bound") is True or time.monotonic() + interval >= ends_at:
                return result
            await asyncio.sleep(interval)
            interval = min(BIND_POLL_MAX_S, interval * 1.5)

    async def _login_once(
        self, provider: Provider, inputs: Inputs, *, fresh: bool, key: str | None = None
    ) -> LoginResult:
        deadline = time.monotonic() + provider.settings.deadline_s
        key = key or self.cache_key(provider, inputs)
        # Read even when `fresh`: what is cached now tells a newer answer (another replica's) from it.
        seen = await self._read(provider, inputs, key, deadline)
        if fresh:
            self._note_cache(provider, "bypass")
        else:
            now = self._clock()
            if seen is not None and seen.is_fresh(now):
                if seen.refresh_due(now):
                    self._refresh_ahead(provider, inputs, key, seen)
                self._note_cache(provider, "hit")
                return (
                    seen.hit
                    if seen.hit is not None
                    else self._remember_hit(provider, key, seen, now)
                )
            self._note_cache(provider, "miss")
        try:
            return await self._single_flight(
                key, lambda: self._fetch(provider, inputs, key, seen, deadline)
            )
        except GatewayError as error:
            if (
                not fresh
                and seen is not None
                and _may_cover(error)
                and seen.is_valid(self._clock())
            ):
                self._note_cache(provider, "stale")
                log.warning("served_stale", provider=provider.name, error=error.code)
                return _result(provider, seen, cached=True, stale=True)
            raise

    def _remember_hit(
        self, provider: Provider, key: str, entry: CacheEntry, now: float
    ) -> LoginResult:
        """The hit answer for this entry, serialized once and kept with it in the local cache."""
        result = _result(provider, entry, cached=True)
        hit = replace(result, body=orjson.dumps(result.as_json()))
        self.local.put(key, replace(entry, hit=hit), now)
        return hit

    async def forget(self, provider: Provider, inputs: Inputs) -> bool:
        """Drop the cached credential (and any remembered failure) for this identity everywhere."""
        key = self.cache_key(provider, inputs)
        self.local.drop(key)
        try:
            removed = await self._store.delete(
                [key, _failure_key(key)], announce=self.invalidation.announcement(key)
            )
        except StoreUnavailable:
            raise CacheUnavailable(
                "the credential store is unavailable; nothing was forgotten, try again",
                provider=provider.name,
            ) from None
        return removed > 0

    def cache_key(self, provider: Provider, inputs: Inputs) -> str:
        """`<prefix>:v1:{<keyed hash>}:cred`; the braces make a Redis Cluster hash tag per identity."""
        material = (
            provider.name.encode("utf-8")
            + b"\n"
            + orjson.dumps(provider.identity(inputs), option=orjson.OPT_SORT_KEYS)
        )
        digest = hmac.new(self._key_secrets[provider.name], material, hashlib.sha256).hexdigest()
        return f"{self._options.key_prefix}:v1:{{{digest[:40]}}}:cred"

    # --- single flight, in-process and across replicas ------------------------------------------

    async def _single_flight(
        self, key: str, call: Callable[[], Coroutine[Any, Any, LoginResult]]
    ) -> LoginResult:
        task = self._flights.get(key)
        if task is None:
            task = self._start_flight(key, call)
        elif key in self._unjoined:
            self._unjoined.discard(key)  # the caller whose read started it
        else:
            self._metrics.flight_waiters.inc()
        # shield: a caller that disconnects must not cancel the call the others are waiting for
        return await asyncio.shield(task)

    def _start_flight(
        self, key: str, call: Callable[[], Coroutine[Any, Any, LoginResult]]
    ) -> asyncio.Task[LoginResult]:
        task = asyncio.ensure_future(call())
        self._flights[key] = task
        task.add_done_callback(lambda done: self._end_flight(key, done))
        return task

    def _end_flight(self, key: str, task: asyncio.Task[LoginResult]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
            self._unjoined.discard(key)
        if not task.cancelled():
            task.exception()  # retrieved here so a flight whose waiters all left is not reported

    async def _fetch(
        self,
        provider: Provider,
        inputs: Inputs,
        key: str,
        seen: CacheEntry | None,
        deadline: float,
        claimed: Claim | None = None,
    ) -> LoginResult:
        """One vendor call for this identity across all replicas, or the answer another replica got.

        Each try for the lease reads, in the same store round trip, what decides whether to call: the
        cached entry (another replica's answer), this identity's failure record and the provider's
        quota ban. A lease the store read already took (`claimed`) is the first try."""
        lease = claimed.lease if claimed else self._lease(provider, key)
        reads = self._lease_reads(provider, key)
        attempt = (True, [None, claimed.failure, claimed.ban]) if claimed else None
        interval = WAIT_POLL_FIRST_S
        waited = False
        while True:
            if attempt is None:
                try:
                    attempt = await lease.acquire_and_get(reads)
                except StoreUnavailable:
                    return await self._call_vendor(provider, inputs, key, deadline)  # here only
            (acquired, (current, failure, ban)), attempt = attempt, None
            async with lease:  # hands the lease back on every way out unless the answer did
                newer = self._newer_entry(key, current, seen)
                if newer is not None:
                    return _result(provider, newer, cached=False)
                self._raise_if_cooling_down(provider, failure)
                if acquired:
                    result = await self._call_vendor(
                        provider, inputs, key, deadline, lease=lease, ban_record=ban
                    )
                    if lease.lost:
                        self._metrics.lost_leases.inc()
                    return result
            if not waited:
                waited = True
                self._metrics.lock_waits.inc()
            if time.monotonic() + interval >= deadline:
                raise VendorTimeout(
                    "another replica's call to the vendor for this identity did not finish in time",
                    provider=provider.name,
                )
            await asyncio.sleep(interval)
            interval = min(WAIT_POLL_MAX_S, interval * 1.5)

    def _newer_entry(
        self, key: str, raw: bytes | None, seen: CacheEntry | None
    ) -> CacheEntry | None:
        """The stored entry when it is fresh and was written since `seen` (by another replica)."""
        entry = decode_entry(raw) if raw is not None else None
        if entry is None or not entry.is_fresh(self._clock()):
            return None
        if seen is not None and entry.issued_at == seen.issued_at:
            return None
        self.local.put(key, entry, self._clock())
        return entry

    def _refresh_ahead(
        self, provider: Provider, inputs: Inputs, key: str, seen: CacheEntry
    ) -> None:
        if key in self._flights:
            return
        self._metrics.refresh_ahead.labels(provider.name).inc()
        deadline = time.monotonic() + provider.settings.deadline_s
        refresh = self._single_flight(
            key, lambda: self._fetch(provider, inputs, key, seen, deadline)
        )
        self._spawn(_log_failure(refresh, provider.name))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the vendor call and what is kept of it ---------------------------------------------------

    async def _call_vendor(
        self,
        provider: Provider,
        inputs: Inputs,
        key: str,
        deadline: float,
        *,
        lease: Lease | None = None,
        ban_record: bytes | None = None,
    ) -> LoginResult:
        started = time.perf_counter()
        try:
            credential = await self._upstream.login(
                provider, inputs, deadline=deadline, ban_record=ban_record
            )
        except VendorRejectedInput as rejected:
            await self._remember_failure(key, rejected)
            raise
        now = self._clock()
        entry = _entry_for(provider, credential, now, self._rng)
        if entry.expires_at is not None:
            self._metrics.credential_lifetime_seconds.labels(provider.name).observe(
                entry.expires_at - now
            )
        if credential.cacheable and entry.is_fresh(now):
            await self._write(key, entry, now, lease)
        result = _result(provider, entry, cached=False)
        return replace(result, vendor_ms=round((time.perf_counter() - started) * 1000, 3))

    async def _write(self, key: str, entry: CacheEntry, now: float, lease: Lease | None) -> None:
        """Keep the entry here and in the store, hand back the lease, tell the other replicas."""
        self.local.put(key, entry, now)
        value, ttl_s = entry.encode(), entry.store_ttl_s(now)
        announce = self.invalidation.announcement(key)
        # A write the store could not take is counted and logged by its guard; the answer stands.
        with contextlib.suppress(StoreUnavailable):
            if lease is None:
                await self._store.write(key, value, ttl_s, announce=announce)
            else:
                await lease.set_and_release(key, value, ttl_s, announce=announce)

    async def _read(
        self, provider: Provider, inputs: Inputs, key: str, deadline: float
    ) -> CacheEntry | None:
        """The entry from the in-process cache, else from the store — one store read however many
        identical requests arrive together (a burst of cold requests must not become a burst on Redis)."""
        entry = self.local.get(key, self._clock())
        if entry is not None:
            return entry
        read = self._reads.get(key)
        if read is None:
            read = asyncio.ensure_future(self._read_store(provider, inputs, key, deadline))
            self._reads[key] = read
            read.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(read)

    async def _read_store(
        self, provider: Provider, inputs: Inputs, key: str, deadline: float
    ) -> CacheEntry | None:
        """The stored entry. When there is none and no call for this identity is under way here, the
        same round trip takes the lease (with the failure and ban reads), and the vendor call starts
        at once; the callers find it under way and join it — a cold miss costs one round trip less."""
        now = self._clock()
        lease = self._lease(provider, key) if key not in self._flights else None
        try:
            if lease is None:
                taken, raw = False, (await self._store.read([key])).values[0]
            else:
                taken, (raw, failure, ban) = await lease.acquire_and_get(
                    self._lease_reads(provider, key), unless_cached=True
                )
        except StoreUnavailable:
            # Redis trouble is not "no session": carry on as a miss, the vendor can still answer.
            return None
        if lease is not None and taken:
            if key in self._flights:
                # Defensive: every caller of this key waits on this read before it can start a call,
                # so none should have started; if one did, it takes the lease on its own.
                self._spawn(lease.release())
            else:
                claim = Claim(lease, failure, ban)
                self._start_flight(
                    key, lambda: self._fetch(provider, inputs, key, None, deadline, claim)
                )
                self._unjoined.add(key)
            return None
        if raw is None:
            return None
        entry = decode_entry(raw)
        if entry is None:
            log.warning("cache_entry_unreadable", provider=provider.name)
            return None
        self.local.put(key, entry, now)
        return entry

    def _lease(self, provider: Provider, key: str) -> Lease:
        # The lease outlasts the whole vendor call, retries included; it is renewed meanwhile anyway.
        return Lease(self._store, _lock_key(key), provider.settings.deadline_s + LEASE_EXTRA_S)

    def _lease_reads(self, provider: Provider, key: str) -> tuple[str, str, str]:
        """What decides whether to call the vendor: the entry, the failure record, the quota ban."""
        return key, _failure_key(key), self._upstream.ban_key(provider)

    # --- failure cooldown -----------------------------------------------------------------------

    async def _remember_failure(self, key: str, rejected: VendorRejectedInput) -> None:
        cooldown = self._options.failure_cooldown_s
        if cooldown <= 0:
            return
        record = {
            "code": rejected.code,
            "detail": rejected.detail,
            "upstream": rejected.upstream.as_dict() if rejected.upstream else None,
            "until": self._clock() + cooldown,
        }
        with contextlib.suppress(StoreUnavailable):
            await self._store.write(_failure_key(key), orjson.dumps(record), cooldown)

    def _raise_if_cooling_down(self, provider: Provider, record_raw: bytes | None) -> None:
        """Answer a remembered vendor rejection of this identity again, without calling the vendor."""
        if record_raw is None or self._options.failure_cooldown_s <= 0:
            return
        try:
            record = orjson.loads(record_raw)
            upstream = UpstreamDetail(**record["upstream"]) if record["upstream"] else None
            remaining = max(1, int(record["until"] - self._clock() + 0.999))
            error = VendorRejectedInput(
                f"{record['detail']} (remembered: not sent to the vendor again for {remaining} s)",
                code=record["code"],
                provider=provider.name,
                upstream=upstream,
                retry_after_s=remaining,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        self._metrics.cooldown_rejections.labels(provider.name).inc()
        raise error

    def _note_cache(self, provider: Provider, result: str) -> None:
        self._metrics.note_cache(provider.name, result)
        bind_log_context(cache=result)


def _entry_for(
    provider: Provider, credential: Credential, now: float, rng: random.Random
) -> CacheEntry:
    """The cache entry for a vendor answer; a token without an expiry lives `token_ttl_s`."""
    expires_at = credential.expires_at
    if expires_at is None and credential.token is not None:
        expires_at = now + provider.settings.token_ttl_s
    return schedule(
        token=credential.token,
        expires_at=expires_at,
        keep_without_expiry_s=provider.settings.token_ttl_s,
        data=credential.data,
        upstream_request_id=credential.upstream_request_id,
        now=now,
        rng=rng,
    )


def _result(
    provider: Provider, entry: CacheEntry, *, cached: bool, stale: bool = False
) -> LoginResult:
    return LoginResult(
        provider=provider.name,
        kind=provider.kind,
        token=entry.token,
        expires_at=None if entry.expires_at is None else int(entry.expires_at),
        cached=cached,
        data=entry.data,
        upstream_request_id=entry.upstream_request_id,
        stale=stale,
    )


def _may_cover(error: GatewayError) -> bool:
    """Vendor trouble (not a rejection of this caller's input) may be covered by a still-valid credential."""
    return error.retryable or error.status >= 500


async def _log_failure(call: Coroutine[Any, Any, LoginResult], provider: str) -> None:
    try:
        await call
    except GatewayError as error:
        log.warning("refresh_ahead_failed", provider=provider, error=error.code)


def _lock_key(key: str) -> str:
    return key.removesuffix(":cred") + ":lock"


def _failure_key(key: str) -> str:
    return key.removesuffix(":cred") + ":fail"


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).hexdigest()
