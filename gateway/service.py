"""cache -> single flight -> vendor -> cache: the gateway's only orchestration.

A credential is cached under a key derived from the provider and the identity fields of the input
(a keyed hash: no user identifier reaches Redis in plain text), until the vendor's expiry minus a
safety margin. Identical concurrent misses in one process share one vendor call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from gateway.errors import CacheUnavailable, InvalidBody, UnknownProvider
from gateway.metrics import Metrics
from gateway.providers.base import Credential, Inputs
from gateway.providers.registry import Provider
from gateway.store import CredentialStore, StoreUnavailable
from gateway.upstream import Upstream

log = structlog.get_logger("gateway.service")

MAX_MARGIN_S = 60.0
MARGIN_FRACTION = 0.1


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

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "kind": self.kind,
            "token": self.token,
            "expires_at": self.expires_at,
            "cached": self.cached,
            "data": self.data,
            "upstream_request_id": self.upstream_request_id,
        }


def cache_ttl_s(expires_at: float, now: float) -> float:
    """How long a credential may be served from cache: its lifetime less min(60 s, 10 % of it).

    A proportional margin keeps short-lived credentials usable (a fixed 60 s would make a 60 s token
    "born expired") while never serving one past the vendor's expiry.
    """
    lifetime = expires_at - now
    return lifetime - min(MAX_MARGIN_S, MARGIN_FRACTION * lifetime)


class AuthService:
    """Answers logins from the credential store when it can, from the vendor when it must."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        store: CredentialStore,
        upstream: Upstream,
        metrics: Metrics,
        *,
        key_prefix: str = "gw",
        cache_key_secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.providers = dict(providers)
        self._store = store
        self._upstream = upstream
        self._metrics = metrics
        self._key_prefix = key_prefix
        self._clock = clock
        self._flights: dict[str, asyncio.Task[LoginResult]] = {}
        # Each provider's cache keys are HMAC'd with the configured key, else with a key derived from
        # the provider's app secret — a secret every replica already shares.
        self._key_secrets = {
            name: (cache_key_secret or _derive(p.secret, "gateway cache key v1")).encode("utf-8")
            for name, p in self.providers.items()
        }

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
        self, provider: Provider, inputs: Inputs, *, fresh: bool = False
    ) -> LoginResult:
        """The credential for this identity: cached unless `fresh`, else one shared vendor call."""
        key = self.cache_key(provider, inputs)
        if fresh:
            self._note_cache(provider, "bypass")
        else:
            cached = await self._read(provider, key)
            if cached is not None:
                self._note_cache(provider, "hit")
                return cached
            self._note_cache(provider, "miss")
        return await self._single_flight(key, lambda: self._call_vendor(provider, inputs, key))

    async def forget(self, provider: Provider, inputs: Inputs) -> bool:
        """Drop the cached credential for this identity; True when one was cached."""
        try:
            return await self._store.delete(self.cache_key(provider, inputs))
        except StoreUnavailable:
            self._metrics.store_errors.labels("delete").inc()
            raise CacheUnavailable(
                "the credential store is unavailable; nothing was forgotten, try again",
                provider=provider.name,
            ) from None

    def cache_key(self, provider: Provider, inputs: Inputs) -> str:
        """`<prefix>:v1:{<keyed hash>}:cred`; the braces make a Redis Cluster hash tag per identity."""
        material = (
            provider.name.encode("utf-8")
            + b"\n"
            + orjson.dumps(provider.identity(inputs), option=orjson.OPT_SORT_KEYS)
        )
        digest = hmac.new(self._key_secrets[provider.name], material, hashlib.sha256).hexdigest()
        return f"{self._key_prefix}:v1:{{{digest[:40]}}}:cred"

    async def _single_flight(
        self, key: str, call: Callable[[], Coroutine[Any, Any, LoginResult]]
    ) -> LoginResult:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._end_flight(key, done))
        # shield: a caller that disconnects must not cancel the call the others are waiting for
        return await asyncio.shield(task)

    def _end_flight(self, key: str, task: asyncio.Task[LoginResult]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here so a flight whose waiters all left is not reported

    async def _call_vendor(self, provider: Provider, inputs: Inputs, key: str) -> LoginResult:
        credential = await self._upstream.login(provider, inputs)
        now = self._clock()
        expires_at = _effective_expiry(provider, credential, now)
        result = LoginResult(
            provider=provider.name,
            kind=provider.kind,
            token=credential.token,
            expires_at=None if expires_at is None else int(expires_at),
            cached=False,
            data=credential.data,
            upstream_request_id=credential.upstream_request_id,
        )
        if expires_at is not None:
            self._metrics.credential_lifetime_seconds.labels(provider.name).observe(
                expires_at - now
            )
        ttl = self._ttl_for(provider, credential, expires_at, now)
        if ttl is not None and ttl > 0:
            await self._write(key, result, ttl)
        return result

    @staticmethod
    def _ttl_for(
        provider: Provider, credential: Credential, expires_at: float | None, now: float
    ) -> float | None:
        if not credential.cacheable:
            return None
        if (
            expires_at is None
        ):  # the bind check: a confirmed binding is kept for the configured time
            return float(provider.settings.token_ttl_s)
        return cache_ttl_s(expires_at, now)

    async def _read(self, provider: Provider, key: str) -> LoginResult | None:
        try:
            raw = await self._store.get(key)
        except StoreUnavailable:
            # Redis trouble is not "no session": carry on as a miss, the vendor can still answer.
            self._metrics.store_errors.labels("get").inc()
            self._note_cache(provider, "error")
            log.warning("store_unavailable", operation="get")
            return None
        if raw is None:
            return None
        return _decode_entry(raw, provider, self._clock())

    async def _write(self, key: str, result: LoginResult, ttl_s: float) -> None:
        entry = {
            "token": result.token,
            "expires_at": result.expires_at,
            "data": result.data,
            "upstream_request_id": result.upstream_request_id,
        }
        try:
            await self._store.set(key, orjson.dumps(entry), ttl_s)
        except StoreUnavailable:
            self._metrics.store_errors.labels("set").inc()
            log.warning("store_unavailable", operation="set")

    def _note_cache(self, provider: Provider, result: str) -> None:
        self._metrics.cache_lookups.labels(provider.name, result).inc()
        structlog.contextvars.bind_contextvars(cache=result)


def _effective_expiry(provider: Provider, credential: Credential, now: float) -> float | None:
    """The vendor's expiry; for a token the vendor gives no expiry for, `token_ttl_s` from now."""
    if credential.expires_at is not None:
        return credential.expires_at
    if credential.token is not None:
        return now + provider.settings.token_ttl_s
    return None


def _decode_entry(raw: bytes, provider: Provider, now: float) -> LoginResult | None:
    try:
        entry = orjson.loads(raw)
        expires_at = entry["expires_at"]
        if expires_at is not None and now >= expires_at:
            return None  # never serve past the vendor's expiry, whatever the store's clock did
        return LoginResult(
            provider=provider.name,
            kind=provider.kind,
            token=entry["token"],
            expires_at=expires_at,
            cached=True,
            data=entry["data"],
            upstream_request_id=entry["upstream_request_id"],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("cache_entry_unreadable")
        return None


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).hexdigest()
