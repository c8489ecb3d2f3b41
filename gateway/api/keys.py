"""Typed application state shared by the handlers (aiohttp `web.AppKey`)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import CallerAuth
from gateway.metrics import Metrics
from gateway.service import AuthService
from gateway.store.guarded import GuardedStore

SERVICE = web.AppKey("service", AuthService)
CALLERS = web.AppKey("callers", CallerAuth)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", GuardedStore)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
