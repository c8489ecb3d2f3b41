"""Fault injection: make the simulated vendors misbehave on purpose, per API, per test or per run.

A `FaultPlan` (held by `SandboxState.faults`) is a list of injected faults, each bound to one API
(TOP `method` / Tencent `Action`; None = every API), firing a number of `times` (None = until
cleared) with a `probability` drawn from the plan's seeded `random.Random`, so chaos runs repeat.

Every faulted request is still recorded first, so `calls()` counts it. Then, per request, at most
one fault of each stage fires, the first matching one in injection order, consumed atomically (a
`times=1` fault fires once however many requests arrive together):

1. "delay" — `Latency`: the request is answered normally, but late.
2. "transport" — `Hang`, `Reset`, `HttpStatus`, `Html`, `Empty`, `Truncated`: a broken proxy in
   front of the vendor. They fire before any protocol check, so even a badly signed request gets
   them; the vendor never sees the request, except under `Truncated`, which lets the vendor answer
   (tokens are issued, nonces and bind polls counted) and cuts that answer in half.
3. "vendor" — `TopError`, `TencentError`, `BindInternalError`: the vendor itself failing. They fire
   only after every protocol check (signature, timestamp, nonce, parameters) passed, like the real
   vendor, and take precedence over a queued `CannedResponse`, which stays queued.

`OneOf` picks one of several faults of the same stage at random; `FaultPlan.chaos(p)` uses it to
fail a fraction `p` of the calls with transient faults (5xx, resets, TOP isp/code 10, Tencent
InternalError, checkbind 331001). `fault_specs.py` reads faults from the command line and from the
control endpoint's JSON.
"""

from __future__ import annotations

import functools
import math
import random
import threading
from dataclasses import dataclass, fields
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from gateway.sandbox.state import Vendor

Stage = Literal["delay", "transport", "vendor"]
ResetMode = Literal["close", "rst"]

HTML_CONTENT_TYPE = "text/html;charset=utf-8"
HANG_LIMIT_S = 300.0


@functools.cache
def _methods_with_internal_error() -> frozenset[str]:
    from gateway.sandbox.top import methods  # top.py renders faults: it imports this module

    return frozenset(name for name, kind in methods().items() if kind.sandbox_internal_error)


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_type(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    """TypeError unless `value` is a `kind` (a bool never counts as a number)."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} has the wrong type: {value!r}")


@dataclass(frozen=True)
class Fault:
    """Base of the fault kinds; `kind` is the name the command line and control endpoint use."""

    kind: ClassVar[str] = ""
    stage: ClassVar[Stage] = "transport"

    def stage_of(self) -> Stage:
        """The stage this fault fires at (see the module docstring)."""
        return self.stage

    def applies_to(self, vendor: Vendor, api: str | None) -> bool:
        """Whether the fault can happen on this vendor's `api` (transport faults: everywhere)."""
        return True

    def resolve(self, rng: random.Random, vendor: Vendor, api: str | None) -> Fault:
        """The concrete fault to act out (only `OneOf` picks one of its choices)."""
        return self

    def to_json(self) -> dict[str, Any]:
        """`{"kind": ..., "args": {...}}`, the shape the control endpoint accepts."""
        args: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            elif isinstance(value, tuple):
                value = [choice.to_json() for choice in value]
            args[item.name] = value
        return {"kind": self.kind, "args": args}


@dataclass(frozen=True)
class Latency(Fault):
    """Answer normally, `seconds` late."""

    kind: ClassVar[str] = "latency"
    stage: ClassVar[Stage] = "delay"
    seconds: float

    def __post_init__(self) -> None:
        _check_seconds("seconds", self.seconds)


@dataclass(frozen=True)
class Hang(Fault):
    """Never answer: wait until the client gives up, then close; at most `seconds` (then close)."""

    kind: ClassVar[str] = "hang"
    seconds: float = HANG_LIMIT_S

    def __post_init__(self) -> None:
        _check_seconds("seconds", self.seconds)
        if self.seconds > HANG_LIMIT_S:
            raise ValueError(f"seconds must be <= {HANG_LIMIT_S:.0f}, got {self.seconds}")


@dataclass(frozen=True)
class Reset(Fault):
    """Drop the TCP connection without an HTTP answer.

    `close` sends a FIN (aiohttp raises ServerDisconnectedError); `rst` sends a TCP RST
    (aiohttp raises ClientOSError, errno ECONNRESET).
    """

    kind: ClassVar[str] = "reset"
    mode: ResetMode = "close"

    def __post_init__(self) -> None:
        if self.mode not in ("close", "rst"):
            raise ValueError(f"mode must be close or rst, got {self.mode!r}")


def error_page(status: int) -> bytes:
    """The HTML error page a Tengine/nginx proxy writes for `status`."""
    title = f"{status} {HTTPStatus(status).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")


BUSY_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>系统繁忙</title></head>'
    "<body><h1>系统繁忙，请稍后再试</h1><p>The system is busy, please try again later.</p>"
    "</body></html>"
).encode()


@dataclass(frozen=True)
class HttpStatus(Fault):
    """Answer `status` with `body` (default: the proxy's HTML error page for that status)."""

    kind: ClassVar[str] = "http_status"
    status: int = 503
    body: bytes | None = None
    content_type: str = HTML_CONTENT_TYPE

    def __post_init__(self) -> None:
        _check_type("status", self.status, int)
        if not 200 <= self.status <= 599 or self.status in (204, 205, 304):
            raise ValueError(f"status must be 200..599 and allow a body, got {self.status}")
        if self.body is not None:
            _check_type("body", self.body, bytes)
        _check_type("content_type", self.content_type, str)

    def page(self) -> bytes:
        """The body to send."""
        return error_page(self.status) if self.body is None else self.body


@dataclass(frozen=True)
class Html(Fault):
    """HTTP 200 with an HTML page instead of JSON (a captive portal, WAF or "system busy" page)."""

    kind: ClassVar[str] = "html"
    body: bytes = BUSY_PAGE

    def __post_init__(self) -> None:
        _check_type("body", self.body, bytes)


@dataclass(frozen=True)
class Truncated(Fault):
    """HTTP 200 with the vendor's real answer cut in half (a correct Content-Length, broken JSON)."""

    kind: ClassVar[str] = "truncated"


@dataclass(frozen=True)
class Empty(Fault):
    """HTTP 200 with a JSON Content-Type and an empty body."""

    kind: ClassVar[str] = "empty"


@dataclass(frozen=True)
class TopError(Fault):
    """A TOP `error_response` (any class: quota 7, transient 10/15, ...), in the requested format."""

    kind: ClassVar[str] = "top_error"
    stage: ClassVar[Stage] = "vendor"
    code: int
    msg: str
    sub_code: str | None = None
    sub_msg: str | None = None

    def __post_init__(self) -> None:
        _check_type("code", self.code, int)
        _check_type("msg", self.msg, str)
        for name in ("sub_code", "sub_msg"):
            value = getattr(self, name)
            if value is not None:
                _check_type(name, value, str)

    def applies_to(self, vendor: Vendor, api: str | None) -> bool:
        return vendor == "top"

    @classmethod
    def call_limited(cls, ban_s: int) -> TopError:
        """Code 7, App Call Limited: the app key is banned for `ban_s` more seconds."""
        _check_type("ban_s", ban_s, int)
        return cls(
            7,
            "App Call Limited",
            "accesscontrol.limited-by-app-access-count",
            f"This ban will last for {ban_s} more seconds",
        )

    @classmethod
    def remote_timeout(cls) -> TopError:
        """Code 15 with the transient `isp.top-remote-connection-timeout`."""
        return cls(
            15, "Remote service error", "isp.top-remote-connection-timeout", "远程服务调用超时"
        )

    @classmethod
    def unavailable(cls) -> TopError:
        """Code 10, Service Currently Unavailable (transient)."""
        return cls(10, "Service Currently Unavailable")


@dataclass(frozen=True)
class TencentError(Fault):
    """A Tencent `Error: {Code, Message}` in the envelope `SandboxState.tencent_envelope` sets."""

    kind: ClassVar[str] = "tencent_error"
    stage: ClassVar[Stage] = "vendor"
    code: str = "InternalError"
    message: str = "An internal error has occurred. Retry your request."

    def __post_init__(self) -> None:
        _check_type("code", self.code, str)
        _check_type("message", self.message, str)

    def applies_to(self, vendor: Vendor, api: str | None) -> bool:
        return vendor == "tencent"


@dataclass(frozen=True)
class BindInternalError(Fault):
    """`result=false`, `ret_code` 331001 "系统内部未知错误" inside a success envelope: for the TOP
    methods whose kind declares such an answer (`TopKind.sandbox_internal_error`, the bind check)."""

    kind: ClassVar[str] = "bind_internal_error"
    stage: ClassVar[Stage] = "vendor"
    ret_code: int = 331001
    message: str = "系统内部未知错误"

    def __post_init__(self) -> None:
        _check_type("ret_code", self.ret_code, int)
        _check_type("message", self.message, str)

    def applies_to(self, vendor: Vendor, api: str | None) -> bool:
        return vendor == "top" and api in _methods_with_internal_error()


@dataclass(frozen=True)
class OneOf(Fault):
    """One of `choices` (all of one stage), picked at random among those that apply to the call."""

    kind: ClassVar[str] = "one_of"
    choices: tuple[Fault, ...]

    def __post_init__(self) -> None:
        _check_type("choices", self.choices, tuple)
        if not self.choices or not all(isinstance(choice, Fault) for choice in self.choices):
            raise ValueError("choices must be a non-empty tuple of faults")
        if len({choice.stage_of() for choice in self.choices}) != 1:
            raise ValueError("choices must all be of one stage")

    def stage_of(self) -> Stage:
        return self.choices[0].stage_of()

    def applies_to(self, vendor: Vendor, api: str | None) -> bool:
        return any(choice.applies_to(vendor, api) for choice in self.choices)

    def resolve(self, rng: random.Random, vendor: Vendor, api: str | None) -> Fault:
        usable = [choice for choice in self.choices if choice.applies_to(vendor, api)]
        return rng.choice(usable).resolve(rng, vendor, api)


TRANSIENT_TRANSPORT = OneOf((HttpStatus(500), HttpStatus(502), HttpStatus(503), Reset()))
TRANSIENT_VENDOR = OneOf(
    (TopError.remote_timeout(), TopError.unavailable(), TencentError(), BindInternalError())
)


# --- the plan -------------------------------------------------------------------------------------


def check_times_probability(times: int | None, probability: float) -> None:
    """`times` is None or >= 1; `probability` is a number in 0..1."""
    if times is not None:
        _check_type("times", times, int)
        if times < 1:
            raise ValueError(f"times must be >= 1 (or None: until cleared), got {times}")
    _check_type("probability", probability, (int, float))
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in 0..1, got {probability}")


@dataclass
class ActiveFault:
    """One injected fault: where it applies, how many firings are left, how many happened."""

    api: str | None  # None: every API
    fault: Fault
    remaining: int | None  # None: until cleared
    probability: float
    fired: int = 0

    def matches(self, stage: Stage, vendor: Vendor, api: str | None) -> bool:
        return (
            self.fault.stage_of() == stage
            and (self.api is None or self.api == api)
            and self.fault.applies_to(vendor, api)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            **self.fault.to_json(),
            "times": self.remaining,
            "probability": self.probability,
            "fired": self.fired,
        }


class FaultPlan:
    """The injected faults of one sandbox; `take` is called by the simulators, per stage."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random(0)  # noqa: S311 - not cryptographic
        self.fired = 0  # faults fired since creation (clear() keeps the count)
        self._active: list[ActiveFault] = []
        self._lock = threading.Lock()  # the event loop is single-threaded; tests may not be

    def inject(
        self, api: str | None, fault: Fault, *, times: int | None = 1, probability: float = 1.0
    ) -> ActiveFault:
        """Make `api` (None: every API) fail with `fault`, `times` times (None: until cleared)."""
        if not isinstance(fault, Fault):
            raise TypeError(f"not a fault: {fault!r}")
        if api is not None and not (isinstance(api, str) and api):
            raise ValueError(f"api must be a non-empty string or None, got {api!r}")
        check_times_probability(times, probability)
        entry = ActiveFault(api, fault, times, float(probability))
        with self._lock:
            self._active.append(entry)
        return entry

    def chaos(self, probability: float, *, api: str | None = None) -> list[ActiveFault]:
        """Fail a fraction `probability` of the calls that pass the checks, until cleared.

        Half of the failures are transport ones (HTTP 500/502/503, connection closed), half vendor
        ones (TOP code 15 isp.top-remote-connection-timeout or code 10, Tencent InternalError,
        checkbind 331001). Requests failing a protocol check only get the transport half.
        """
        check_times_probability(None, probability)
        half = probability / 2
        return [
            self.inject(api, TRANSIENT_TRANSPORT, times=None, probability=half),
            self.inject(api, TRANSIENT_VENDOR, times=None, probability=half / (1 - half)),
        ]

    def clear(self) -> int:
        """Remove every injected fault; how many were active."""
        with self._lock:
            count = len(self._active)
            self._active.clear()
        return count

    @property
    def active(self) -> tuple[ActiveFault, ...]:
        """The faults still waiting to fire, in injection order."""
        with self._lock:
            return tuple(self._active)

    def take(self, stage: Stage, vendor: Vendor, api: str | None) -> Fault | None:
        """The fault this request suffers at `stage`, consumed; None when none fires."""
        with self._lock:
            for entry in self._active:
                if not entry.matches(stage, vendor, api):
                    continue
                if entry.probability < 1 and self.rng.random() >= entry.probability:
                    continue
                entry.fired += 1
                self.fired += 1
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._active.remove(entry)
                return entry.fault.resolve(self.rng, vendor, api)
        return None
