"""The sandbox HTTP app: both vendor simulators behind one aiohttp application.

`create_sandbox_app(state)` mounts the TOP router and the Tencent appapi; `start_sandbox` serves
it on loopback (port 0 picks a free port) for dev mode, tests and benchmarks. Each handler records
the request exactly as received, waits `state.latency_s`, then answers as the vendor module decides.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.sandbox import tencent_iot, top
from gateway.sandbox.state import CannedResponse, RecordedRequest, SandboxState, Vendor

SANDBOX_STATE = web.AppKey("sandbox_state", SandboxState)

TOP_PATH = "/router/rest"
TENCENT_PATH = "/api/exploreropen/appapi"


def create_sandbox_app(state: SandboxState) -> web.Application:
    """An app simulating `POST /router/rest` (TOP) and `POST /api/exploreropen/appapi` (Tencent)."""
    app = web.Application()
    app[SANDBOX_STATE] = state
    app.router.add_post(TOP_PATH, top_router)
    app.router.add_post(TENCENT_PATH, tencent_appapi)
    return app


async def top_router(request: web.Request) -> web.Response:
    """TOP: decode query + form, record, then answer as the platform would."""
    state = request.app[SANDBOX_STATE]
    body = await request.read()
    decoded = top.decode(
        request.rel_url.raw_query_string, request.content_type, request.charset, body
    )
    record(state, request, "top", decoded.api, body, dict(decoded.params))
    await simulate_latency(state)
    return to_response(top.answer(state, decoded))


async def tencent_appapi(request: web.Request) -> web.Response:
    """Tencent: decode the JSON body, record, then answer as the API would."""
    state = request.app[SANDBOX_STATE]
    body = await request.read()
    decoded = tencent_iot.decode(request.content_type, body)
    record(state, request, "tencent", decoded.api, body, dict(decoded.fields))
    await simulate_latency(state)
    return to_response(tencent_iot.answer(state, decoded))


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


async def simulate_latency(state: SandboxState) -> None:
    """The `latency_s` knob: the vendor thinks before it answers."""
    if state.latency_s > 0:
        await asyncio.sleep(state.latency_s)


def to_response(reply: CannedResponse) -> web.Response:
    """An HTTP response carrying the reply's exact bytes; aiohttp adds the `Date` header."""
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
