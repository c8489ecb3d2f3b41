"""The one outbound HTTP client: signs at send time, enforces the provider's timeout, reads the answer.

Every failure leaves this module as a `GatewayError` (see gateway.errors), so callers never see an
aiohttp exception. The string-to-sign is logged at debug level; the secret and the signature never are.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from email.utils import parsedate_to_datetime

import aiohttp
import structlog

from gateway.errors import GatewayError, VendorTimeout, VendorUnreachable
from gateway.metrics import Metrics
from gateway.providers.base import Credential, Inputs, SendContext, VendorRequest, VendorResponse
from gateway.providers.registry import Provider

log = structlog.get_logger("gateway.upstream")

MAX_RESPONSE_BYTES = 1024 * 1024  # a login answer is a few hundred bytes; refuse to buffer a flood


def new_send_context(now: float) -> SendContext:
    """A fresh nonce (1..2^31-1) and request id for every send, retries included."""
    return SendContext(
        now=now, nonce=secrets.randbelow(2**31 - 1) + 1, request_id=str(uuid.uuid4())
    )


CLOCK_OFFSET_NOISE_S = 2.0  # `Date` has one-second resolution and the answer took time to arrive


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


class Upstream:
    """Sends signed vendor requests over one shared `aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._metrics = metrics
        self._clock = clock

    async def login(self, provider: Provider, inputs: Inputs) -> Credential:
        """One vendor call: build and sign now, send, read the normalized credential."""
        request = provider.build_request(inputs, new_send_context(self._clock()))
        log.debug("vendor_request", provider=provider.name, string_to_sign=request.string_to_sign)
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._send(request, provider.settings.timeout_s)
            now = self._clock()
            vendor_now = vendor_clock(response, now)
            credential = provider.read_response(response, vendor_now)
            outcome = "ok"
            return in_local_clock(credential, offset_s=vendor_now - now)
        except GatewayError as exc:
            exc.provider = exc.provider or provider.name
            outcome = exc.code
            raise
        finally:
            self._metrics.observe_vendor_call(provider.name, outcome, time.perf_counter() - started)

    async def _send(self, request: VendorRequest, timeout_s: float) -> VendorResponse:
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 3.0))
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
