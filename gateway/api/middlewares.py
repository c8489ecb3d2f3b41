"""Request id, error-to-problem translation, and the one canonical log line per request."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.api.keys import METRICS, REDACTOR, SERVICE, TRACER
from gateway.api.problems import MethodNotAllowed, RouteNotFound, problem_response
from gateway.errors import GatewayError
from gateway.log_context import new_log_context
from gateway.request_line import REQUEST_LINE
from gateway.tracing import enter_span

log = structlog.get_logger("gateway.access")  # errors; the request line: REQUEST_LINE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Request ids need to be unique, not unguessable: a random per-process prefix and a counter cost a
# fraction of uuid4() (measured on the hit path).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a safe token, else a new one (never echo arbitrary bytes)."""
    if header and _SAFE_REQUEST_ID.match(header):
        return header
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id and trace, turn every failure into a problem, log one line, end the server
    span, count /auth requests."""
    headers = request.headers
    request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
    route = request.match_info.route.resource
    name = f"{request.method} {route.canonical if route is not None else request.path}"
    span = request.app[TRACER].server_span(
        name, headers.get("traceparent"), headers.get("tracestate")
    )
    enter_span(span)
    trace = span.context
    new_log_context(request_id=request_id, trace_id=trace.trace_id, span_id=trace.span_id)
    started = time.perf_counter()
    error: GatewayError | None = None
    try:
        response = await handler(request)
    except GatewayError as raised:
        error = raised
    except web.HTTPException as exc:
        error = _http_exception_as_problem(exc)
    except Exception:
        log.exception("unhandled_error")
        error = GatewayError("an unexpected error occurred")
    if error is not None:
        response = problem_response(error, request_id, request.app[REDACTOR], trace.instance)
    outcome = "ok" if error is None else error.code
    response.headers[REQUEST_ID_HEADER] = request_id
    duration = time.perf_counter() - started
    provider = _known_provider(request)
    status = response.status
    if provider is not None:
        request.app[METRICS].observe_request(provider, outcome, f"{status // 100}xx", duration)
    span.end(
        error=outcome if status >= 500 else None,
        attributes={"http.response.status_code": status, "gateway.outcome": outcome},
    )
    REQUEST_LINE.write(
        {
            "method": request.method,
            "path": request.path,
            "status": status,
            "outcome": outcome,
            "provider": provider,
            "duration_ms": round(duration * 1000, 3),
        }
    )
    return response


def _known_provider(request: web.Request) -> str | None:
    """The provider label for metrics: only configured names, so callers cannot grow the label set."""
    name = request.match_info.get("provider")
    return name if name is not None and name in request.app[SERVICE].providers else None


def _http_exception_as_problem(exc: web.HTTPException) -> GatewayError:
    if exc.status == 405:
        return MethodNotAllowed(f"{exc.reason}: see /openapi.json for the routes")
    if exc.status == 404:
        return RouteNotFound("no such route: see /openapi.json")
    error = GatewayError(exc.reason or "HTTP error")
    error.status = exc.status  # keep aiohttp's own status for the rare others (e.g. 400)
    return error
