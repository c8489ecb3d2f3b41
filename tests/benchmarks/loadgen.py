"""The bundled load generator of `make bench`, for machines without `wrk`, and the cold-start burst.

Runs in its own process (never inside a server) and prints one JSON line on stdout.

    python -m tests.benchmarks.loadgen run --url URL --connections 64 --duration 10 \
        --body JSON [--header 'Name: value']... [--unique-field wx_open_id | --bodies-file F] \
        [--max-requests N]
    python -m tests.benchmarks.loadgen burst --url URL [--url URL2] --requests 1000 --body JSON ...

`run`: a fixed number of keep-alive connections, each sending the next request as soon as the last
answer is read (closed loop, like wrk), bounded by time and by count. `--unique-field` replaces that
field of the body with a value no other request uses (a new identity per request); `--bodies-file`
sends the file's lines in turn as raw bodies (pre-signed vendor requests).
`burst`: that many identical requests at once, one connection each, spread round-robin over the URLs;
reports the statuses, how many distinct bodies came back, and the latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import resource
import secrets
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import orjson


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(latencies_s)
    ms = 1000.0
    return {
        "mean_ms": (sum(values) / len(values) * ms) if values else 0.0,
        "p50_ms": percentile(values, 50) * ms,
        "p90_ms": percentile(values, 90) * ms,
        "p99_ms": percentile(values, 99) * ms,
        "p999_ms": percentile(values, 99.9) * ms,
        "max_ms": (values[-1] * ms) if values else 0.0,
    }


def parse_headers(items: list[str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    for item in items:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    return headers


def read_bodies(path: str) -> list[bytes]:
    with open(path, "rb") as handle:
        return [line.rstrip(b"\n") for line in handle if line.strip()]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = parse_headers(args.header)
    template: dict[str, Any] = orjson.loads(args.body)
    static_body = orjson.dumps(template)
    bodies = read_bodies(args.bodies_file) if args.bodies_file else []
    run_id = secrets.token_hex(4)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    sent = 0
    deadline = time.monotonic() + args.duration
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(worker_id: int) -> None:
            nonlocal errors, sent
            n = 0
            while time.monotonic() < deadline and sent < args.max_requests:
                sent += 1
                n += 1
                if bodies:
                    body = bodies[(sent - 1) % len(bodies)]
                elif args.unique_field:
                    body = orjson.dumps(
                        {**template, args.unique_field: f"lg-{run_id}-{worker_id}-{n}"}
                    )
                else:
                    body = static_body
                started = time.perf_counter()
                try:
                    async with session.post(args.url, data=body, headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(args.connections)))
        elapsed = time.perf_counter() - started

    ok = sum(count for status, count in statuses.items() if 200 <= status < 400)
    completed = sum(statuses.values())
    return {
        "tool": "asyncio-loadgen",
        "connections": args.connections,
        "duration_s": elapsed,
        "requests": completed,
        "rps": completed / elapsed if elapsed else 0.0,
        "non2xx": completed - ok,
        "socket_errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **latency_summary(latencies),
    }


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    headers = parse_headers(args.header)
    body = orjson.dumps(orjson.loads(args.body))
    statuses: Counter[int] = Counter()
    bodies: Counter[str] = Counter()
    samples: dict[str, bytes] = {}
    tokens: set[Any] = set()
    latencies: list[float] = []
    errors = 0
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=args.timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            nonlocal errors
            await start.wait()
            started = time.perf_counter()
            try:
                async with session.post(
                    args.url[i % len(args.url)], data=body, headers=headers
                ) as response:
                    content = await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies.append(time.perf_counter() - started)
            digest = hashlib.sha256(content).hexdigest()
            bodies[digest] += 1
            samples.setdefault(digest, content)
            with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
                tokens.add(orjson.loads(content).get("token"))

        tasks = [asyncio.create_task(one(i)) for i in range(args.requests)]
        await asyncio.sleep(0.05)  # every task is parked on the event: release them together
        started = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started

    return {
        "tool": "asyncio-loadgen burst",
        "connections": args.requests,
        "duration_s": elapsed,
        "requests": sum(statuses.values()),
        "rps": sum(statuses.values()) / elapsed if elapsed else 0.0,
        "non2xx": sum(c for s, c in statuses.items() if not 200 <= s < 300),
        "socket_errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "distinct_bodies": len(bodies),
        "body_variants": body_variants(bodies, samples),
        "distinct_tokens": len(tokens),
        **latency_summary(latencies),
    }


def body_variants(counts: Counter[str], samples: dict[str, bytes]) -> list[dict[str, Any]]:
    """How the distinct answers differ: per variant, its count and the fields not shared by all."""
    parsed: dict[str, dict[str, Any]] = {}
    for digest, content in samples.items():
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            value = {"raw": content[:200].decode(errors="replace")}
        parsed[digest] = value if isinstance(value, dict) else {"value": value}
    keys = set().union(*(v.keys() for v in parsed.values())) if parsed else set()
    differing = sorted(
        k for k in keys if len({orjson.dumps(v.get(k)) for v in parsed.values()}) > 1
    )
    return [
        {"count": count, "fields": {k: parsed[digest].get(k) for k in differing}}
        for digest, count in counts.most_common()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("run", "burst"):
        mode = modes.add_parser(name)
        mode.add_argument("--url", action="append", required=True)
        mode.add_argument("--body", required=True, help="the JSON body")
        mode.add_argument("--header", action="append", default=[], help="'Name: value'")
        mode.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    run_mode = modes.choices["run"]
    run_mode.add_argument("--connections", type=int, default=64)
    run_mode.add_argument("--duration", type=float, default=10.0)
    run_mode.add_argument("--max-requests", type=int, default=10_000_000)
    run_mode.add_argument("--unique-field", help="a body field made unique per request")
    run_mode.add_argument("--bodies-file", help="raw bodies, one a line, sent in turn")
    modes.choices["burst"].add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    # One socket per connection: lift the soft descriptor limit to the hard one.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.mode == "run":
        args.url = args.url[0]
        result = asyncio.run(run(args))
    else:
        result = asyncio.run(burst(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
