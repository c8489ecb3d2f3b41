"""Scenario (a) of `make bench`: the bare baseline the gateway's hit path is measured against.

A minimal aiohttp app (uvloop, orjson, hiredis) that answers the same `POST /auth/{provider}` request
with one redis-py GET and a JSON body — no auth, no metrics, no logging. It reads the request body
(as any handler must) and decodes and re-encodes the stored JSON document, as a cache answer would.

    python -m tests.benchmarks.baseline_app --port P --redis-url URL --key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator

import orjson
import redis.asyncio as aioredis
from aiohttp import web

JSON = "application/json"


def create_baseline_app(redis_url: str, key: str) -> web.Application:
    app = web.Application()
    client: aioredis.Redis = aioredis.from_url(redis_url)

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        value = await client.get(key)
        body = {"cached": value is not None, "entry": orjson.loads(value) if value else None}
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def redis_client(_: web.Application) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app.router.add_post("/auth/{provider}", answer)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(redis_client)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", required=True, help="the Redis key every request GETs")
    args = parser.parse_args()
    import uvloop
    from redis.utils import HIREDIS_AVAILABLE

    print(f"baseline: uvloop, orjson, hiredis={HIREDIS_AVAILABLE}", file=sys.stderr, flush=True)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # run_app stops cleanly on SIGINT and SIGTERM; no access log, like the gateway.
    web.run_app(
        create_baseline_app(args.redis_url, args.key),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
