"""The one outbound HTTP client and the policies around each vendor call.

One login, in order: the provider's circuit breaker answers 503 while open; the caller's outbound
slot is held (the service passes it in: the shared rate and concurrency limits,
gateway.service.limits); then
up to `retry.max_attempts` attempts, each
signed anew (fresh timestamp, nonce and request id), each bounded by `timeout_s` and by what is left of
the request's deadline, with full-jitter exponential backoff between them — for transient classes only
(network errors, HTTP 5xx, TOP isp.* and code 10, Tencent InternalError, the bind check's internal
error). Caller, credential, configuration and quota errors are never retried.

Retries never multiply the load on a failing vendor: each is spent from the provider's retry budget
(a share of the first attempts over a sliding window) and must pass its breaker, which counts every
attempt; when either says no, the last failure is the answer. Every failure leaves as a
`GatewayError`; the string-to-sign is logged at debug level, the secret and signature never.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from email.utils import parsedate_to_datetime

import aiohttp
import structlog

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import (
    CircuitOpen,
    GatewayError,
    OutboundLimited,
    TransportError,
    VendorQuotaExceeded,
    VendorTimeout,
    VendorUnavailable,
    VendorUnreachable,
)
from gateway.metrics import Metrics
from gateway.providers.base import Credential, Inputs, SendContext, VendorRequest, VendorResponse
from gateway.providers.registry import Provider
from gateway.resilience.breaker import Breaker, BreakerPolicy
from gateway.resilience.retry_budget import RetryBudget, RetryBudgetPolicy
from gateway.tracing import PlainTracer, Tracer, current_span

log = structlog.get_logger("gateway.upstream")

MAX_RESPONSE_BYTES = 1024 * 1024  # a login answer is a few hundred bytes; refuse to buffer a flood
CLOCK_OFFSET_NOISE_S = 2.0  # `Date` has one-second resolution and the answer took time to arrive


def new_send_context(now: float) -> SendContext:
    """A fresh nonce (1..2^31-1) and request id for every send, retries included."""
    return SendContext(
        now=now, nonce=secrets.randbelow(2**31 - 1) + 1, request_id=str(uuid.uuid4())
    )


def vendor_clock(response: VendorResponse, now: float) -> float:
    """The vendor's clock when it answered (its HTTP `Date`), or ours when it sent none or nonsense.

    Absolute expiries are in the vendor's clock; reading them against the vendor's `now` and shifting
    by the offset keeps a skewed vendor (or host) from making a token look longer-lived than it is.
    """
    header = response.headers.get("Date")
    if not header:
        return now
    try:
        parsed = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return now
    return parsed if abs(parsed - now) >= CLOCK_OFFSET_NOISE_S else now


def in_local_clock(credential: Credential, *, offset_s: float) -> Credential:
    if credential.expires_at is None or offset_s == 0:
        return credential
    return replace(credential, expires_at=credential.expires_at - offset_s)


def breaker_policy(provider: Provider) -> BreakerPolicy:
    """The provider's breaker settings, field for field (BreakerSettings documents them)."""
    return BreakerPolicy(**provider.settings.breaker.model_dump())


def retry_budget_policy(provider: Provider) -> RetryBudgetPolicy:
    retry = provider.settings.retry
    return RetryBudgetPolicy(retry.budget_ratio, retry.budget_min_retries, retry.budget_window_s)


def is_retryable(error: GatewayError) -> bool:
    """Transient classes only; a quota answer is never hot-retried (the service bans the provider)."""
    return error.retryable and not isinstance(error, VendorQuotaExceeded)


def counts_against_vendor(error: GatewayError) -> bool:
    """What the breaker counts as the vendor failing (not a caller's input, not a quota answer)."""
    return isinstance(error, TransportError | VendorUnavailable)


class Upstream:
    """Sends signed vendor requests over one shared `aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        providers: dict[str, Provider],
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._session = session
        self._tracer = tracer or PlainTracer()
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not security
        self.breakers = {
            name: Breaker(
                breaker_policy(p),
                clock=clock.monotonic,
                on_change=metrics.breaker_state.labels(name).set,
            )
            for name, p in providers.items()
        }
        self._budgets = {
            name: RetryBudget(retry_budget_policy(p), clock=clock.monotonic)
            for name, p in providers.items()
        }
        for name in providers:
            metrics.breaker_state.labels(name).set(0)

    async def login(
        self,
        provider: Provider,
        inputs: Inputs,
        *,
        deadline: float,
        slot: Callable[[], AbstractAsyncContextManager[None]],
    ) -> Credential:
        """The vendor's credential for these inputs, within `deadline` (monotonic), holding `slot()`
        (the caller's outbound limits) while the attempts run."""
        try:
            breaker = self.breakers[provider.name]
            self._raise_if_open(provider, breaker)
            sent = False
            try:
                async with slot():
                    sent = True
                    return await self._attempts(provider, inputs, deadline, breaker)
            except OutboundLimited:
                if not sent:  # refused before any attempt: nothing to judge the vendor by
                    breaker.release_probe()
                raise
        except GatewayError as error:
            error.provider = error.provider or provider.name
            raise

    async def _attempts(
        self, provider: Provider, inputs: Inputs, deadline: float, breaker: Breaker
    ) -> Credential:
        """The first attempt, and retries of transient failures while the deadline, the retry budget
        and the breaker allow; every attempt's outcome goes to the breaker."""
        retry = provider.settings.retry
        budget = self._budgets[provider.name]
        budget.note_first_attempt()
        for attempt in range(1, retry.max_attempts + 1):
            try:
                credential = await self._attempt(provider, inputs, deadline)
            except GatewayError as error:
                breaker.record(failed=counts_against_vendor(error))
                delay = self._rng.uniform(
                    0, min(retry.max_delay_s, retry.base_delay_s * 2 ** (attempt - 1))
                )
                last = attempt == retry.max_attempts
                if last or not is_retryable(error) or self._clock.monotonic() + delay >= deadline:
                    raise
                if not budget.try_spend():
                    self._metrics.retries_denied.labels(provider.name, "budget").inc()
                    raise
                self._metrics.vendor_retries.labels(provider.name).inc()
                log.info("vendor_retry", provider=provider.name, attempt=attempt, error=error.code)
                await asyncio.sleep(delay)
                if breaker.allow() is not None:  # opened meanwhile: this failure is the answer
                    self._metrics.retries_denied.labels(provider.name, "breaker").inc()
                    raise
                continue
            breaker.record(failed=False)
            return credential
        raise RuntimeError("unreachable: the last attempt returns or raises")

    def _raise_if_open(self, provider: Provider, breaker: Breaker) -> None:
        wait = breaker.allow()
        if wait is None:
            return
        raise CircuitOpen(
            f"the vendor is failing; calls resume in {wait:.0f} s"
            if wait > 1
            else "the vendor is failing; a probe call is under way",
            provider=provider.name,
            retry_after_s=max(1, round(wait)),
        )

    async def _attempt(self, provider: Provider, inputs: Inputs, deadline: float) -> Credential:
        """One signed send: a fresh timestamp, nonce and request id, bounded by the deadline."""
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            raise VendorTimeout("the request's deadline passed before the vendor answered")
        request = provider.build_request(inputs, new_send_context(self._clock.time()))
        log.debug("vendor_request", provider=provider.name, string_to_sign=request.string_to_sign)
        span = self._tracer.client_span(current_span(), f"vendor {provider.kind}")
        started = self._clock.monotonic()
        outcome = "error"
        try:
            timeout = min(provider.settings.timeout_s, remaining)
            response = await self._send(request, timeout, provider.settings.connect_timeout_s)
            now = self._clock.time()
            vendor_now = vendor_clock(response, now)
            credential = provider.read_response(response, vendor_now)
            outcome = "ok"
            return in_local_clock(credential, offset_s=vendor_now - now)
        except GatewayError as exc:
            outcome = exc.code
            raise
        finally:
            elapsed = self._clock.monotonic() - started
            self._metrics.observe_vendor_call(provider.name, outcome, elapsed)
            span.end(
                error=None if outcome == "ok" else outcome,
                attributes={"gateway.provider": provider.name, "gateway.outcome": outcome},
            )

    async def _send(
        self, request: VendorRequest, timeout_s: float, connect_s: float
    ) -> VendorResponse:
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, connect_s))
        try:
            async with self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                return VendorResponse(response.status, dict(response.headers), body)
        except TimeoutError:
            raise VendorTimeout(f"the vendor did not answer within {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise VendorUnreachable(
                f"the vendor could not be reached ({type(exc).__name__})"
            ) from None
