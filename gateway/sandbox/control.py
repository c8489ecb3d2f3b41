"""Control routes under `/_sandbox/`: inject faults and read call counts from another process.

- `POST /_sandbox/faults` with `{"api": str|null, "kind": str, "args": {...}, "times": int|null,
  "probability": float}` (only `kind` is required; `times` defaults to 1, `probability` to 1;
  `kind` may be `chaos`, which takes `probability` only) → 201 `{"injected": [entry, ...]}`, or
  400 `{"error": "..."}`. An entry is `{"api", "kind", "args", "times", "probability", "fired"}`,
  `times` being the firings left (null: until cleared).
- `GET /_sandbox/faults` → 200 `{"faults": [entry, ...]}`, the faults still active.
- `DELETE /_sandbox/faults` → 200 `{"cleared": n}`.
- `GET /_sandbox/stats` → 200 `{"calls": {api: n}, "issued_tokens": n, "faults_fired": n}`; requests
  whose API could not be read count under `""`.

These requests are neither recorded nor subject to faults. There is no authentication: the sandbox
is a local simulator and binds to loopback by default.
"""

from __future__ import annotations

from aiohttp import web

from gateway.sandbox.fault_specs import injection_from_json
from gateway.sandbox.state import SandboxState

FAULTS_PATH = "/_sandbox/faults"
STATS_PATH = "/_sandbox/stats"


def add_routes(app: web.Application, state: SandboxState) -> None:
    """Mount the control routes, acting on `state`."""

    async def post_fault(request: web.Request) -> web.Response:
        try:
            injection = injection_from_json(await request.json())
        except ValueError as error:  # json.JSONDecodeError included
            return web.json_response({"error": str(error)}, status=400)
        entries = injection.apply(state.faults)
        return web.json_response({"injected": [entry.to_json() for entry in entries]}, status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [entry.to_json() for entry in state.faults.active]})

    async def clear_faults(request: web.Request) -> web.Response:
        return web.json_response({"cleared": state.clear_faults()})

    async def stats(request: web.Request) -> web.Response:
        calls = {api or "": count for api, count in state.call_counts().items()}
        return web.json_response(
            {
                "calls": calls,
                "issued_tokens": len(state.issued_tokens),
                "faults_fired": state.faults.fired,
            }
        )

    app.router.add_post(FAULTS_PATH, post_fault)
    app.router.add_get(FAULTS_PATH, list_faults)
    app.router.add_delete(FAULTS_PATH, clear_faults)
    app.router.add_get(STATS_PATH, stats)
