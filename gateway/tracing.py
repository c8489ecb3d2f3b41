"""W3C trace context: every request belongs to a trace, and says which.

A request's `traceparent` (and `tracestate`) header is accepted when valid: the request's server span
continues that trace as a child of the caller's span. Without one (or with a malformed one) the
gateway starts a trace. The trace and span ids go into the canonical log line (`trace_id`,
`span_id`) and into problem documents' `instance` (`urn:trace:<trace id>:<span id>`), so one id finds
the request in every log and trace backend. Vendor calls are client spans of it (one per attempt);
store calls are events on the current span. Trace context is not sent to the vendors: they are third
parties, and the ids are this organisation's own.

Spans are exported only with OpenTelemetry: install the `otel` extra (`pip install
'auth-gateway[otel]'`) and configure it with the standard `OTEL_*` environment variables (an OTLP
endpoint, or `OTEL_TRACES_EXPORTER`). Otherwise `PlainTracer` keeps the ids for logs and problems and
exports nothing, and nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

# version-traceid-parentid-flags; a future version may append fields (W3C Trace Context, §4.3).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACESTATE_MAX = 512
_SAMPLED = "01"


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits
    span_id: str  # 16 lower-case hex digits: this span
    flags: str = _SAMPLED
    state: str | None = None  # the caller's tracestate, passed on as is

    @property
    def instance(self) -> str:
        """The problem document's `instance`: this request's span, as a URN."""
        return f"urn:trace:{self.trace_id}:{self.span_id}"


class Span(Protocol):
    """A span as the gateway uses it: its ids, events, an end."""

    @property
    def context(self) -> TraceContext: ...

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None: ...

    def end(
        self, *, error: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> None: ...


class Tracer(Protocol):
    def server_span(self, name: str, traceparent: str | None, tracestate: str | None) -> Span: ...

    def client_span(self, parent: Span | None, name: str) -> Span: ...


def parent_of(traceparent: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid `traceparent`, else None (start a new trace)."""
    if not traceparent:
        return None
    found = _TRACEPARENT.match(traceparent.strip())
    if found is None:
        return None
    version, trace_id, parent_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None  # ff is forbidden; version 00 has exactly four fields
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id, flags


def valid_tracestate(tracestate: str | None) -> str | None:
    """The caller's tracestate to carry on, or None when absent or too long to be valid."""
    if not tracestate or len(tracestate) > _TRACESTATE_MAX:
        return None
    return tracestate


def new_id(hex_digits: int) -> str:
    """A random non-zero id of `hex_digits` lower-case hex digits (ids must be unique, not secret)."""
    return f"{random.getrandbits(hex_digits * 4) or 1:0{hex_digits}x}"


@dataclass(frozen=True, slots=True)
class _PlainSpan:
    context: TraceContext

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Nothing is exported without OpenTelemetry."""

    def end(self, *, error: str | None = None, attributes: Mapping[str, Any] | None = None) -> None:
        """Nothing is exported without OpenTelemetry."""


class PlainTracer:
    """Trace ids for logs and problems, nothing exported."""

    def server_span(self, name: str, traceparent: str | None, tracestate: str | None) -> Span:
        parent = parent_of(traceparent)
        if parent is None:
            return _PlainSpan(TraceContext(new_id(32), new_id(16)))
        trace_id, _, flags = parent
        return _PlainSpan(TraceContext(trace_id, new_id(16), flags, valid_tracestate(tracestate)))

    def client_span(self, parent: Span | None, name: str) -> Span:
        trace = parent.context if parent is not None else TraceContext(new_id(32), new_id(16))
        return _PlainSpan(TraceContext(trace.trace_id, new_id(16), trace.flags, trace.state))


_CURRENT: ContextVar[Span | None] = ContextVar("gateway_span", default=None)


def current_span() -> Span | None:
    """The span of the request this code runs for (tasks started during it inherit it)."""
    return _CURRENT.get()


def enter_span(span: Span) -> None:
    _CURRENT.set(span)


def span_event(name: str, attributes: Mapping[str, Any] | None = None) -> None:
    """An event on the current span, if there is one (store calls)."""
    span = _CURRENT.get()
    if span is not None:
        span.event(name, attributes)


def otel_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for spans to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configured_tracer(environ: Mapping[str, str] = os.environ) -> Tracer:
    """OpenTelemetry when the `otel` extra is installed and OTEL_* asks for it; else PlainTracer.

    Nothing of OpenTelemetry is imported unless OTEL_* asks for export."""
    if not otel_wanted(environ):
        return PlainTracer()
    try:
        from gateway.tracing_otel import OtelTracer
    except ImportError:
        import structlog

        structlog.get_logger("gateway").warning(
            "tracing_unavailable", reason="OTEL_* asks for spans; install auth-gateway[otel]"
        )
        return PlainTracer()
    return OtelTracer.from_environment()
