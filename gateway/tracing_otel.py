"""Spans exported with OpenTelemetry (the `otel` extra): a server span per request, a client span per
vendor attempt, store calls as events. Imported only when the OTEL_* variables ask for export
(gateway.tracing.configured_tracer); the SDK reads them itself (endpoint, headers, protocol, sampler,
resource attributes), and OTEL_SERVICE_NAME defaults to auth-gateway.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import __version__
from gateway.tracing import Span, TraceContext, valid_tracestate

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class OtelSpan:
    span: trace.Span
    context: TraceContext

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.span.add_event(name, dict(attributes or {}))

    def end(self, *, error: str | None = None, attributes: Mapping[str, Any] | None = None) -> None:
        if attributes:
            self.span.set_attributes(dict(attributes))
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.end()


class OtelTracer:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("auth-gateway", __version__)

    @classmethod
    def from_environment(cls) -> OtelTracer:
        """An OTLP/HTTP exporter configured by the OTEL_* variables, spans sent in batches."""
        name = os.environ.get("OTEL_SERVICE_NAME", "auth-gateway")
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    def server_span(self, name: str, traceparent: str | None, tracestate: str | None) -> Span:
        carrier = {"traceparent": traceparent or ""}
        state = valid_tracestate(tracestate)
        if state is not None:
            carrier["tracestate"] = state
        parent = _PROPAGATOR.extract(carrier) if traceparent else Context()
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        return OtelSpan(span, _context_of(span, state))

    def client_span(self, parent: Span | None, name: str) -> Span:
        parent_context = (
            trace.set_span_in_context(parent.span) if isinstance(parent, OtelSpan) else Context()
        )
        span = self._tracer.start_span(name, context=parent_context, kind=SpanKind.CLIENT)
        state = parent.context.state if parent is not None else None
        return OtelSpan(span, _context_of(span, state))


def _context_of(span: trace.Span, state: str | None) -> TraceContext:
    ids = span.get_span_context()
    flags = f"{int(ids.trace_flags):02x}"
    return TraceContext(f"{ids.trace_id:032x}", f"{ids.span_id:016x}", flags, state)
