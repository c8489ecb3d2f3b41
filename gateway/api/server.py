"""The HTTP listeners: aiohttp's server, with the defences it lacks against slow, idle and hostile
clients.

- **Header timeout**: a request head (request line and headers) must be complete within
  `header_timeout_s` of the connection's opening (its first request) or of the first byte of the next
  request (keep-alive); else the connection is closed. Slowloris sockets cannot pile up.
- **Keep-alive**: idle connections between requests close after `keepalive_timeout_s` (aiohttp's
  own `keepalive_timeout`; its default is about an hour).
- **Connection cap**: past `max_connections` open connections on a listener, a new one is closed at
  once, before aiohttp reads a byte of it.
- **Parser errors** answer a problem+json 400 that echoes nothing of the request (aiohttp's text/plain
  400 quotes the offending line, which may hold a caller's key), and are logged without the line or a
  traceback, once per peer and burst (`BurstLog`).

Each of these is counted in gateway/metrics/ (`gateway_http_*`), by the listener's `EdgeListener`
(gateway/api/edge.py: its limits, open connections, counters and quieted log). The body timeout lives
with the body, in gateway/api/body.py.

How it is installed: `EdgeRunner` is an `AppRunner` whose server — the protocol factory its sites give
`loop.create_server` — is an `EdgeServer`, which builds an `EdgeRequestHandler` (aiohttp's
`RequestHandler` with the defences) for each connection. Sites, `reuse_port`, `shutdown_timeout`, the
app's start-up, cleanup and graceful shutdown are aiohttp's own, unchanged.

aiohttp internals relied on, read in 3.14 (pyproject.toml pins `<3.15` so that moving on is a
decision, and tests/api/test_edge.py is what proves a new version):
- `BaseRunner._make_server`, the hook through which `AppRunner` builds its `Server`;
- `RequestHandler._request_count`, one more per request head parsed (or parser error), and
  `_messages`, the queue of (head, body stream) that `data_received` appends to — together they say
  when a head completed and which body follows it;
- `_ErrInfo`, what `data_received` queues instead of a head when the parser raises;
- `_force_close`, `_close`, `_payload_parser`, `_upgraded` and `_request_in_progress`, the state
  flags aiohttp itself checks before reading or closing;
- `handle_error` and `log_exception`, overridden: aiohttp calls them for every error it answers or
  logs itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import StreamReader, web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from gateway.api.edge import EdgeListener, peer
from gateway.api.middlewares import REQUEST_ID_HEADER, request_id_from
from gateway.api.problems import problem_response
from gateway.errors import GatewayError, InvalidBody, MalformedRequest

log = structlog.get_logger("gateway.http")


def _still_open(body: StreamReader) -> bool:
    return not body.is_eof() and body.exception() is None


class EdgeRequestHandler(RequestHandler):
    """aiohttp's protocol for one connection, with the header timeout, the cap and quiet errors."""

    __slots__ = ("_body_stream", "_counted", "_edge", "_head_timer")

    def __init__(self, manager: web.Server, edge: EdgeListener, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = edge
        self._counted = False  # accepted under the cap, and counted open until connection_lost
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_stream: StreamReader | None = None  # the body of the latest head parsed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._edge.at_capacity():
            # Closed before aiohttp registers the connection or starts a task for it.
            transport.close()
            self._edge.rejected("cap", peer(transport))
            return
        self._counted = True
        self._edge.opened()
        super().connection_made(transport)
        self._arm_head_timer()  # the first head is due from the connection's opening

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._counted:
            return  # refused at the cap: aiohttp never saw it
        self._counted = False
        self._edge.closed()
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._counted:
            return
        if self._force_close or self._close or self._payload_parser is not None or self._upgraded:
            super().data_received(data)  # closing, or not HTTP any more: nothing to time
            return
        # Bytes after the previous body ended are the next head's: its time starts with the first.
        body = self._body_stream
        head_due = self._head_timer is None and (body is None or body.is_eof())
        parsed = self._request_count
        super().data_received(data)
        if self._request_count == parsed:
            if head_due and data:
                self._arm_head_timer()
            return
        self._cancel_head_timer()
        message, stream = self._messages[-1]
        if isinstance(message, _ErrInfo) and body is not None and _still_open(body):
            # The parser failed inside a body a handler may be reading: aiohttp would leave that
            # reader waiting for bytes that never come; fail it now (read_body answers 400).
            body.set_exception(RequestPayloadError("the body's framing is broken"))
        # Bytes that follow a complete head in the same segment start no timer: until the next
        # segment they are bounded by keepalive_timeout_s instead.
        self._body_stream = stream

    def _arm_head_timer(self) -> None:
        self._head_timer = asyncio.get_running_loop().call_later(
            self._edge.limits.header_timeout_s, self._head_timed_out
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._force_close or self._close or self.transport is None:
            return
        self._edge.rejected("header_timeout", peer(self.transport))
        if self._request_in_progress:
            self.close()  # a head pipelined behind a request still being answered: answer, then close
        else:
            self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to what aiohttp caught itself (the parser's errors, or a failure outside the
        middleware): a problem document with a fresh request id, and the connection closed."""
        if request.writer.output_size > 0:
            # As aiohttp does: part of a response is out, another cannot follow.
            raise ConnectionError("a response was partly sent; the connection is dropped")
        request_id = request_id_from(None)
        error: GatewayError
        if isinstance(exc, ContentEncodingError):
            # The parser's, not the reader's: a coding it cannot decode, or deflate cut short.
            self._edge.parser_error(peer(self.transport), exc, request_id)
            error = InvalidBody(
                "the body is not valid in its Content-Encoding (gzip and deflate are read)",
                code="invalid_body",
            )
        elif isinstance(exc, HttpProcessingError):
            self._edge.parser_error(peer(self.transport), exc, request_id)
            error = MalformedRequest(
                "the request line, a header or the framing is not valid HTTP/1.1"
            )
        else:
            log.error("unhandled_error", request_id=request_id, exc_info=exc or True)
            error = GatewayError("an unexpected error occurred")
            error.status = status
        response = problem_response(error, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """What aiohttp logs itself, e.g. a body that fails while it discards the rest after the answer:
        into the JSON log, and without a traceback when the fault is in the client's bytes."""
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | HttpProcessingError | ConnectionError):
            log.debug("http_body_discarded", error=type(exc).__name__)  # the request was answered
            return
        log.error("http_server_error", message=str(args[0]) if args else None, exc_info=exc or True)


class EdgeServer(web.Server):
    """aiohttp's low-level server, making an `EdgeRequestHandler` for each connection."""

    def __init__(
        self,
        handler: Any,
        *,
        edge: EdgeListener,
        loop: asyncio.AbstractEventLoop,
        request_factory: Any = None,
        handler_cancellation: bool = False,
        **handler_kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            request_factory=request_factory,
            handler_cancellation=handler_cancellation,
            loop=loop,
            **handler_kwargs,
        )
        self.edge = edge
        self._edge_loop = loop
        self._handler_kwargs = handler_kwargs

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, self.edge, loop=self._edge_loop, **self._handler_kwargs)


class EdgeRunner(web.AppRunner):
    """An `AppRunner` whose connections are `EdgeRequestHandler`s; sites are plain `web.TCPSite`s."""

    def __init__(
        self, app: web.Application, edge: EdgeListener, *, shutdown_timeout: float
    ) -> None:
        self._handler_kwargs: dict[str, Any] = {
            "access_log": None,  # the canonical request line replaces aiohttp's access log
            "keepalive_timeout": edge.limits.keepalive_timeout_s,
        }
        super().__init__(app, shutdown_timeout=shutdown_timeout, **self._handler_kwargs)
        self.edge = edge

    async def _make_server(self) -> web.Server:
        # AppRunner's own runs the app's start-up (cleanup_ctx included) and builds aiohttp's Server
        # on the app's router; this one takes over its handler and request factory. The handler
        # arguments are ours: aiohttp adds only `debug` (off) and an access log class (unused here).
        built = await super()._make_server()
        return EdgeServer(
            built.request_handler,
            edge=self.edge,
            loop=asyncio.get_running_loop(),
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            **self._handler_kwargs,
        )

    async def cleanup(self) -> None:
        await super().cleanup()
        self.edge.close()
