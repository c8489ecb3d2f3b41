"""Thin handlers: authenticate, read the body, ask the service, shape the answer."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.auth import Caller
from gateway.api.body import read_body
from gateway.api.cache_control import wants_fresh
from gateway.api.keys import (
    BODY_TIMEOUT_S,
    CALLERS,
    LIFECYCLE,
    MAX_BODY_BYTES,
    METRICS,
    PARSED_BODIES,
    SERVICE,
)
from gateway.api.openapi import openapi_document
from gateway.errors import CallerError
from gateway.log_context import bind_log_context
from gateway.service import Inputs, Provider

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


async def _authorized_inputs(request: web.Request) -> tuple[Provider, Inputs, str, Caller]:
    """401 → 403 → 404 → 415/413/408/400, in that order; the vendor is never called for bad input.

    403 comes before 404 so that a key limited to some providers gets the same answer for a provider
    that does not exist as for one it may not use: it cannot probe which providers exist. Only a key
    that may use every provider (`"*"`) hears that a name is unknown."""
    caller = request.app[CALLERS].authenticate(request.headers.get("Authorization"))
    name = request.match_info["provider"]
    caller.require(name)
    provider = request.app[SERVICE].provider(name)
    bind_log_context(client=caller.name, key_id=caller.key_id, kind=provider.kind)
    caller.take_rate_slot()
    raw = await read_body(request, request.app[MAX_BODY_BYTES], request.app[BODY_TIMEOUT_S])
    inputs, key = request.app[PARSED_BODIES].inputs_and_key(provider, raw)
    return provider, inputs, key, caller


async def post_auth(request: web.Request) -> web.Response:
    provider, inputs, key, caller = await _authorized_inputs(request)
    fresh = wants_fresh(request.headers.getall("Cache-Control", ()))
    result = await request.app[SERVICE].login(
        provider, inputs, fresh=fresh, key=key, caller=caller.budget()
    )
    if result.vendor_ms is not None:
        bind_log_context(vendor_ms=result.vendor_ms)
    return web.Response(body=result.encoded(), content_type=JSON)


async def delete_auth(request: web.Request) -> web.Response:
    provider, inputs, _, _ = await _authorized_inputs(request)
    await request.app[SERVICE].forget(provider, inputs)
    return web.Response(status=204)


async def list_providers(request: web.Request) -> web.Response:
    caller = request.app[CALLERS].authenticate(request.headers.get("Authorization"))
    providers = [
        {
            "provider": p.name,
            "kind": p.kind,
            "input_schema": p.operation.input_model.model_json_schema(by_alias=True),
        }
        for p in request.app[SERVICE].providers.values()
        if caller.settings.may_use(p.name)
    ]
    return json_response({"providers": providers})


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while configured and not draining. By default the store's state is reported, not fatal:
    without Redis the gateway still answers (from the vendor, with in-process caching), and failing
    every replica's readiness at once would turn a Redis outage into a gateway outage. With
    `readiness_requires_store`, a store down for longer than `store_down_grace_s` fails readiness (the
    grace keeps one blip from flapping it)."""
    health = await request.app[SERVICE].store_health()
    lifecycle = request.app[LIFECYCLE]
    store_down_too_long = (
        lifecycle.readiness_requires_store
        and health.state == "down"
        and health.seconds_in_state > lifecycle.store_down_grace_s
    )
    status = "draining" if lifecycle.draining else "unready" if store_down_too_long else "ready"
    body: dict[str, Any] = {
        "status": status,
        "store": health.state,
        "store_state_for_s": round(health.seconds_in_state, 1),
        "store_nodes": {name: "up" if up else "down" for name, up in health.shards.items()},
        "invalidation": "live" if request.app[SERVICE].invalidation.live else "down",
    }
    if health.unserved_slots:
        body["store_unserved_slots"] = health.unserved_slots
    return json_response(body, status=200 if status == "ready" else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].exposed)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi(request: web.Request) -> web.Response:
    """The stable document; with a valid key, also the typed operations of the providers it may use
    (anyone may read the document, but only a caller learns provider names from it)."""
    try:
        caller = request.app[CALLERS].authenticate(request.headers.get("Authorization"))
    except CallerError:
        return json_response(openapi_document())
    providers = request.app[SERVICE].providers.values()
    return json_response(openapi_document(p for p in providers if caller.settings.may_use(p.name)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/auth/{provider}", post_auth)
    app.router.add_delete("/auth/{provider}", delete_auth)
    app.router.add_get("/auth", list_providers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/openapi.json", openapi)
