"""The sandbox HTTP app: the vendor simulators behind one aiohttp application.

`create_sandbox_app(state)` mounts the TOP router, the Tencent appapi, the routes of plug-in
protocols' `SandboxResponder`s (gateway/providers/kind.py) and the `/_sandbox/` control routes
(`control.py`); `start_sandbox` serves it on loopback (port 0 picks a free port) for dev
mode, tests and benchmarks. Each handler records the request exactly as received, then
`answer_with_faults` acts out the injected delay and transport faults (`faults.py`), waits
`state.latency_s`, and answers as the vendor module decides (vendor faults happen in there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from aiohttp import web

from gateway.providers.kind import ProtocolInfo, SandboxResponder
from gateway.providers.registry import installed_kinds
from gateway.sandbox import control, faults, tencent_iot, top
from gateway.sandbox.state import (
    JSON_CONTENT_TYPE,
    CannedResponse,
    RecordedRequest,
    SandboxState,
    Vendor,
)

SANDBOX_STATE = web.AppKey("sandbox_state", SandboxState)
STOPPING = web.AppKey("sandbox_stopping", asyncio.Event)  # set when the server shuts down

TOP_PATH = "/router/rest"
TENCENT_PATH = "/api/exploreropen/appapi"


def create_sandbox_app(state: SandboxState) -> web.Application:
    """An app simulating `POST /router/rest` (TOP) and `POST /api/exploreropen/appapi` (Tencent)."""
    app = web.Application()
    app[SANDBOX_STATE] = state
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(stop_hanging)
    app.on_response_prepare.append(date_from_vendor_clock)
    app.router.add_post(TOP_PATH, top_router)
    app.router.add_post(TENCENT_PATH, tencent_appapi)
    for responder in plugin_responders():
        app.router.add_route(responder.http_method, responder.path, plugin_handler(responder))
    control.add_routes(app, state)
    return app


async def date_from_vendor_clock(request: web.Request, response: web.StreamResponse) -> None:
    """`Date` from the simulated vendor's clock, so a skewed sandbox is skewed the way a real host is."""
    response.headers["Date"] = formatdate(request.app[SANDBOX_STATE].now(), usegmt=True)


async def top_router(request: web.Request) -> web.Response:
    """TOP: decode query + form, record, then answer as the platform would."""
    state = request.app[SANDBOX_STATE]
    body = await request.read()
    decoded = top.decode(
        request.rel_url.raw_query_string, request.content_type, request.charset, body
    )
    record(state, request, "top", decoded.api, body, dict(decoded.params))
    return await answer_with_faults(request, "top", decoded.api, lambda: top.answer(state, decoded))


async def tencent_appapi(request: web.Request) -> web.Response:
    """Tencent: decode the JSON body, record, then answer as the API would."""
    state = request.app[SANDBOX_STATE]
    body = await request.read()
    decoded = tencent_iot.decode(request.content_type, body)
    record(state, request, "tencent", decoded.api, body, dict(decoded.fields))
    return await answer_with_faults(
        request, "tencent", decoded.api, lambda: tencent_iot.answer(state, decoded)
    )


def endpoint_path(protocol: ProtocolInfo) -> str:
    """Where the sandbox serves a protocol's vendor."""
    if protocol.sandbox is not None:
        return protocol.sandbox.path
    return {"top": TOP_PATH, "tencent-iot": TENCENT_PATH}[protocol.name]


def add_app(state: SandboxState, protocol: ProtocolInfo, key: str, secret: str) -> None:
    """Make the sandbox's stand-in for `protocol` accept the app `key` signed with `secret`."""
    if protocol.sandbox is not None:
        state.plugin_apps.setdefault(protocol.sandbox.vendor, {})[key] = secret
    elif protocol.name == "top":
        state.top_apps[key] = secret
    else:
        state.tencent_apps[key] = secret


def plugin_responders() -> list[SandboxResponder]:
    """The sandbox stand-ins that plug-in protocols bring, one per protocol."""
    found = {
        installed.kind.protocol.name: installed.kind.protocol.sandbox
        for installed in installed_kinds().values()
        if installed.kind.protocol.sandbox is not None
    }
    return [responder for responder in found.values() if responder is not None]


def plugin_handler(
    responder: SandboxResponder,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A plug-in protocol's route: record, transport faults, then the responder's own answer."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[SANDBOX_STATE]
        body = await request.read()
        query = dict(request.rel_url.query)
        api = responder.api_of(query, body)
        record(state, request, responder.vendor, api, body, dict(query))

        def answer() -> CannedResponse:
            canned = state.take_canned(api) if api is not None else None
            if canned is not None:
                return canned
            apps = state.plugin_apps.get(responder.vendor, {})
            memory = state.memory.setdefault(responder.vendor, {})
            reply = responder.answer(apps, memory, query, body, state.now())
            content_type = reply.headers.get("Content-Type", JSON_CONTENT_TYPE)
            return CannedResponse(reply.status, reply.body, content_type)

        return await answer_with_faults(request, responder.vendor, api, answer)

    return handle


def record(
    state: SandboxState,
    request: web.Request,
    vendor: Vendor,
    api: str | None,
    body: bytes,
    params: dict[str, object],
) -> None:
    """Keep the request exactly as received — before any check — for tests to assert on."""
    state.record(
        RecordedRequest(
            vendor=vendor,
            api=api,
            method=request.method,
            path=request.rel_url.raw_path,
            query_string=request.rel_url.raw_query_string,
            headers=dict(request.headers),
            body=body,
            params=params,
        )
    )


async def answer_with_faults(
    request: web.Request, vendor: Vendor, api: str | None, answer: Callable[[], CannedResponse]
) -> web.Response:
    """Injected latency, `latency_s`, then a transport fault or the vendor's (truncated) answer."""
    state = request.app[SANDBOX_STATE]
    delay = state.faults.take("delay", vendor, api)
    if isinstance(delay, faults.Latency):
        await asyncio.sleep(delay.seconds)
    await simulate_latency(state)
    fault = state.faults.take("transport", vendor, api)
    if fault is None:
        return to_response(answer())
    if isinstance(fault, faults.Truncated):
        reply = answer()
        return to_response(dataclasses.replace(reply, body=reply.body[: len(reply.body) // 2]))
    return await transport_failure(request, fault)


async def transport_failure(request: web.Request, fault: faults.Fault) -> web.Response:
    """What a broken proxy in front of the vendor sends instead of the vendor's answer."""
    if isinstance(fault, faults.Hang):
        await hang_until_client_leaves(request, fault.seconds)
        return drop_connection(request, "close")
    if isinstance(fault, faults.Reset):
        return drop_connection(request, fault.mode)
    if isinstance(fault, faults.HttpStatus):
        return to_response(CannedResponse(fault.status, fault.page(), fault.content_type))
    if isinstance(fault, faults.Html):
        return to_response(CannedResponse(200, fault.body, faults.HTML_CONTENT_TYPE))
    if isinstance(fault, faults.Empty):
        return to_response(CannedResponse(200, b"", JSON_CONTENT_TYPE))
    raise TypeError(f"not a transport fault: {fault!r}")


HANG_POLL_S = 0.02


async def hang_until_client_leaves(request: web.Request, limit_s: float) -> None:
    """Sleep until the client closes the connection (it gave up), the server stops, or `limit_s`.

    `web.AppRunner` does not cancel a handler when its client leaves (aiohttp's TestServer does),
    and waits for running handlers when it shuts down, so both are polled; the sleep itself is
    cancellable.
    """
    deadline = time.monotonic() + limit_s
    stopping = request.app[STOPPING]
    while time.monotonic() < deadline and not stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(HANG_POLL_S, max(0.0, deadline - time.monotonic())))


async def stop_hanging(app: web.Application) -> None:
    """on_shutdown: hanging handlers give up, so that shutdown does not wait for them."""
    app[STOPPING].set()


def drop_connection(request: web.Request, mode: faults.ResetMode) -> web.Response:
    """Close the TCP connection without an HTTP answer: a FIN (`close`) or a RST (`rst`)."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if mode == "rst" and sock is not None:
            # SO_LINGER on with a zero timeout: close() discards the socket with a RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()
    # aiohttp cannot write this to the closed transport and drops it silently.
    return web.Response(status=499)


async def simulate_latency(state: SandboxState) -> None:
    """The `hold` and `latency_s` knobs: the vendor waits to be let go, then thinks, then answers."""
    if state.hold is not None:
        await state.hold.wait()
    if state.latency_s > 0:
        await asyncio.sleep(state.latency_s)


def to_response(reply: CannedResponse) -> web.Response:
    """An HTTP response carrying the reply's exact bytes (`Date` comes from date_from_vendor_clock)."""
    headers = dict(reply.headers)
    headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body, headers=headers)


async def start_sandbox(
    state: SandboxState, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve the sandbox; returns the runner (call `cleanup()` to stop) and the base URL.

    With port 0 the OS picks a free port, read back from the listening socket.
    """
    # No access log: TOP puts `sign` in the query string, and no signature goes to a log line.
    runner = web.AppRunner(create_sandbox_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return runner, f"http://{url_host(host)}:{bound_port}"


def url_host(host: str) -> str:
    """The host part of a URL that reaches a server bound to `host`."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - not binding here, only naming the wildcard
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
