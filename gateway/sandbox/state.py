"""What the vendor simulators know and remember: apps, knobs, scripted answers, requests seen.

One `SandboxState` is shared by both simulators of an app. Tests build it, hand it to
`create_sandbox_app`, and afterwards read `requests`, `issued_tokens` and `calls()` to assert what
the gateway really sent. `inject` / `clear_faults` make the vendors misbehave (see `faults.py`).
Everything here is plain data; the HTTP side lives in `top.py`, `tencent_iot.py` and `app.py`.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway.sandbox.faults import ActiveFault, Fault, FaultPlan

Vendor = str  # "top", "tencent", or a plug-in protocol's SandboxResponder.vendor
TencentEnvelope = Literal["documented", "official"]
TopSessionExpireFormat = Literal["seconds", "milliseconds", "relative"]

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as the simulator received it, before any check ran."""

    vendor: Vendor
    api: str | None  # TOP `method` / Tencent `Action` as sent (None when it could not be read)
    method: str
    path: str
    query_string: str  # raw, still percent-encoded
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any]  # TOP: query + form merged (first value wins); Tencent: the JSON object


@dataclass(frozen=True)
class CannedResponse:
    """A scripted answer replacing the simulator's own for one call that passed every check."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, payload: Mapping[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> CannedResponse:
        """A canned JSON body, serialized as compact UTF-8 like the vendors write it."""
        return cls(status=status, body=orjson.dumps(payload), headers=dict(headers or {}))


@dataclass
class SandboxState:
    """Configuration knobs, scripted answers and recorded traffic of the vendor simulators."""

    top_apps: dict[str, str] = field(default_factory=dict)  # app_key -> secret
    tencent_apps: dict[str, str] = field(default_factory=dict)  # AppKey -> AppSecret
    # Plug-in protocols' vendors: SandboxResponder.vendor -> app key -> secret.
    plugin_apps: dict[str, dict[str, str]] = field(default_factory=dict)
    token_ttl_s: int = 7200  # lifetime of issued sessions / tokens
    tencent_envelope: TencentEnvelope = "documented"
    top_session_expire_format: TopSessionExpireFormat = "seconds"
    latency_s: float = 0.0  # sleep before answering
    # Set by a test to hold every answer until it sets the event: callers pile up behind the
    # vendor for as long as the test needs, however slow the machine is.
    hold: asyncio.Event | None = None
    bind_after_polls: int = 0  # checkbind answers ret_value=false this many times per identity
    clock: Callable[[], float] = field(default=time.time)
    top_skew_s: float = 600  # TOP: ±10 minutes (VENDORS.md §1 "System parameters")
    # Tencent does not publish its window; five minutes is a common choice for signed APIs.
    tencent_skew_s: float = 300
    fault_seed: int = 0  # seeds `faults.rng`, so probabilistic faults repeat run after run

    # Recorded data. Benchmarks may turn `record_requests` off to keep memory flat; `calls()`
    # still counts.
    record_requests: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)

    # Simulated vendor memory (survives reset_records, like the vendor's own database would).
    memory: dict[str, dict[Any, Any]] = field(default_factory=dict)  # per TOP kind's method
    tencent_user_ids: dict[str, str] = field(default_factory=dict)  # WxOpenID -> user id
    tencent_nonces_seen: set[tuple[str, int, int]] = field(default_factory=set)  # AppKey, Nonce, TS

    # Injected faults; they stay across reset_records, like scripted answers.
    faults: FaultPlan = field(init=False, repr=False)

    _canned: dict[str, deque[CannedResponse]] = field(default_factory=dict, repr=False)
    _calls: Counter[str | None] = field(default_factory=Counter, repr=False)
    _nonces_by_timestamp: list[tuple[int, tuple[str, int, int]]] = field(
        default_factory=list, repr=False
    )  # a heap, so forgetting old nonces costs O(log n) per request

    def __post_init__(self) -> None:
        self.faults = FaultPlan(random.Random(self.fault_seed))  # noqa: S311 - not cryptographic

    def inject(
        self, api: str | None, fault: Fault, *, times: int | None = 1, probability: float = 1.0
    ) -> ActiveFault:
        """Make `api` (None: every API) fail with `fault`, `times` times (None: until cleared).

        `probability` < 1 makes each matching call fail with that chance, drawn from the seeded
        `faults.rng`. See `gateway.sandbox.faults` for the kinds and when each one fires.
        """
        return self.faults.inject(api, fault, times=times, probability=probability)

    def clear_faults(self) -> int:
        """Remove every injected fault (chaos included); how many were active."""
        return self.faults.clear()

    def enqueue(self, api: str, *responses: CannedResponse) -> None:
        """Script the next answers for `api` (a TOP method name or a Tencent Action), in order."""
        self._canned.setdefault(api, deque()).extend(responses)

    def take_canned(self, api: str) -> CannedResponse | None:
        """The next scripted answer for `api`, removed from its queue; None when none is queued."""
        queue = self._canned.get(api)
        return queue.popleft() if queue else None

    def canned_left(self, api: str) -> int:
        """How many scripted answers for `api` are still waiting."""
        return len(self._canned.get(api, ()))

    def record(self, request: RecordedRequest) -> None:
        """Remember a received request (its count always; the request itself if record_requests)."""
        self._calls[request.api] += 1
        if self.record_requests:
            self.requests.append(request)

    def calls(self, api: str) -> int:
        """How many requests naming `api` were received, whether or not they passed the checks."""
        return self._calls[api]

    def call_counts(self) -> dict[str | None, int]:
        """Requests received per API (None: the API could not be read), like `calls()` for all."""
        return dict(self._calls)

    def reset_records(self) -> None:
        """Forget recorded requests, call counts and issued tokens; apps, queues, users and faults stay."""
        self.requests.clear()
        self._calls.clear()
        self.issued_tokens.clear()

    def remember_nonce(self, key: tuple[str, int, int], horizon: float) -> bool:
        """Store (AppKey, Nonce, Timestamp) unless already seen; False when it is a replay.

        Triples whose Timestamp is older than `horizon` are forgotten first: they could only come
        back with a Timestamp the skew check already rejects.
        """
        heap = self._nonces_by_timestamp
        while heap and heap[0][0] < horizon:
            self.tencent_nonces_seen.discard(heapq.heappop(heap)[1])
        if key in self.tencent_nonces_seen:
            return False
        self.tencent_nonces_seen.add(key)
        heapq.heappush(heap, (key[2], key))
        return True

    def now(self) -> float:
        """The simulator's clock (tests replace `clock` to skew it)."""
        return self.clock()
