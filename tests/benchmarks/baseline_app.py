"""The bare baselines of `make bench`, side by side with the gateway in the same run.

(hello) the ceiling: a minimal aiohttp app (uvloop, orjson) that reads the request body and answers a
small fixed JSON — no Redis, no auth, no metrics, no logging: what one Python process serves at most.

(a) the hit path's: a minimal aiohttp app (uvloop, orjson, hiredis) that answers the same
`POST /auth/{provider}` request with one redis-py GET and a JSON body — no auth, no metrics, no
logging. It reads the request body (as any handler must) and decodes and re-encodes the stored JSON
document, as a cache answer would.

(p) the miss path's: a bare forwarding proxy — every POST body goes unchanged to one vendor URL over a
pooled aiohttp client session, and the vendor's answer comes back as is. No signing, no Redis, no
auth: what any extra HTTP hop in Python costs on this machine, the floor under the gateway's miss
overhead.

(r) the same proxy with `--redis-url` and `--key`: one redis-py GET before each forward. A gateway that
shares its cache and its single flight across replicas must ask Redis before it may call the vendor, so
this is the least such a gateway adds to a miss: one hop plus one round trip, nothing else.

(ps) the miss path's floor: the proxy with `--store-answer`: the vendor's answer is written to Redis
with one SET (under `--key` and a counter) after each forward. One client POST plus one Redis SET is
the least work a caching gateway does per miss.

    python -m tests.benchmarks.baseline_app --port P --hello
    python -m tests.benchmarks.baseline_app --port P --redis-url URL --key KEY
    python -m tests.benchmarks.baseline_app --port P --forward URL [--redis-url URL --key KEY]
    python -m tests.benchmarks.baseline_app --port P --forward URL --redis-url URL --key K --store-answer
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiohttp import web

JSON = "application/json"


def create_hello_app() -> web.Application:
    app = web.Application()
    answer_body = orjson.dumps({"hello": "world", "cached": True})

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer_body, content_type=JSON)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    app.router.add_post("/auth/{provider}", answer)
    app.router.add_get("/healthz", healthz)
    return app


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


def create_forwarding_app(
    upstream_url: str, redis_url: str | None = None, key: str = "", *, store_answer: bool = False
) -> web.Application:
    """(p), (r) — one GET before the forward — or (ps) — one SET of the answer after it."""
    app = web.Application()
    sessions: list[aiohttp.ClientSession] = []
    client: aioredis.Redis | None = aioredis.from_url(redis_url) if redis_url else None
    answered = 0

    async def forward(request: web.Request) -> web.Response:
        nonlocal answered
        body = await request.read()
        if client is not None and not store_answer:
            await client.get(key)
        async with sessions[0].post(
            upstream_url, data=body, headers={"Content-Type": JSON}
        ) as answer:
            payload = await answer.read()
        if client is not None and store_answer:
            answered += 1  # a key per answer, as a new identity's entry; they expire on their own
            await client.set(f"{key}:{answered % 10_000}", payload, ex=600)
        return web.Response(body=payload, status=answer.status, content_type=JSON)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def client_session(_: web.Application) -> AsyncIterator[None]:
        # The gateway's outbound session, minus what only it needs: pooled keep-alive connections.
        connector = aiohttp.TCPConnector(limit=256)
        sessions.append(aiohttp.ClientSession(connector=connector, trust_env=False))
        yield
        await sessions[0].close()
        if client is not None:
            await client.aclose()

    app.router.add_post("/{path:.*}", forward)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(client_session)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", help="(a), (r): the Redis to GET from")
    parser.add_argument("--key", help="(a), (r): the Redis key every request GETs")
    parser.add_argument(
        "--forward", help="(p), (r), (ps): the vendor URL every POST is forwarded to"
    )
    parser.add_argument("--hello", action="store_true", help="(hello): a fixed small JSON answer")
    parser.add_argument(
        "--store-answer", action="store_true", help="(ps): SET the answer instead of a GET first"
    )
    args = parser.parse_args()
    if (args.redis_url is None) != (args.key is None):
        parser.error("--redis-url and --key go together")
    if args.store_answer and (args.forward is None or args.redis_url is None):
        parser.error("--store-answer needs --forward, --redis-url and --key")
    if not args.hello and args.forward is None and args.redis_url is None:
        parser.error(
            "give --hello, --redis-url and --key for (a), --forward for (p), or all three for (r)"
        )
    import uvloop
    from redis.utils import HIREDIS_AVAILABLE

    print(f"baseline: uvloop, orjson, hiredis={HIREDIS_AVAILABLE}", file=sys.stderr, flush=True)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.hello:
        app = create_hello_app()
    elif args.forward:
        app = create_forwarding_app(
            args.forward, args.redis_url, args.key or "", store_answer=args.store_answer
        )
    else:
        app = create_baseline_app(args.redis_url, args.key)
    # run_app stops cleanly on SIGINT and SIGTERM; no access log, like the gateway.
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
