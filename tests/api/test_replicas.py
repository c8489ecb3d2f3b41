"""Many replicas, one Redis: cold-start single flight across processes, and a Redis outage under load.

Both run real things: `python -m gateway serve` processes or a private `redis-server` that is stopped
and started again. Load loops are bounded in count and time and target loopback only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from tests.api.conftest import (
    APIS,
    INPUTS,
    WECHAT,
    Keys,
    Vendors,
    closed_port,
    gateway_settings,
    provider_config,
    sha256_hex,
)
from tests.redis_server import RedisServerProcess

pytestmark = pytest.mark.redis


def start_gateway_process(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "GATEWAY_LOG_LEVEL": "warning"},
    )


async def wait_healthy(session: aiohttp.ClientSession, port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200 and (await response.json())["invalidation"] == "live":
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"gateway on port {port} did not become ready")


async def flight_waiters(session: aiohttp.ClientSession, port: int) -> float:
    """gateway_single_flight_waiters_total of one gateway process, read from its /metrics."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("gateway_single_flight_waiters_total "):
            return float(line.split()[1])
    return 0.0


async def wait_for_joiners(
    session: aiohttp.ClientSession,
    ports: list[int],
    joiners: int,
    requests: asyncio.Future[Any],
    timeout_s: float = 60,
) -> None:
    """Until the processes count `joiners` requests waiting on a call already under way in them."""
    deadline, counts = time.monotonic() + timeout_s, [0.0]
    while time.monotonic() < deadline and not requests.done():
        counts = await asyncio.gather(*(flight_waiters(session, p) for p in ports))
        if sum(counts) >= joiners:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {counts} requests joined the vendor call (or the requests ended)")


async def test_500_cold_requests_over_two_processes_make_one_vendor_call(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """500 concurrent identical cold requests over two gateway processes, the vendor held until all
    500 wait on the one call: one vendor call, 500 identical answers."""
    vendors.state.hold = asyncio.Event()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "redis_url": redis_url,
                "key_prefix": key_prefix.rstrip(":"),
                "providers": {WECHAT: provider_config(vendors)[WECHAT]},
                "clients": {"app": {"api_key_sha256": sha256_hex(keys.full), "providers": ["*"]}},
            }
        )
    )
    ports = [closed_port(), closed_port()]
    processes = [start_gateway_process(config, p, tmp_path / f"gw{p}.log") for p in ports]
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(wait_healthy(session, p) for p in ports))

            async def one(i: int) -> tuple[int, bytes]:
                async with session.post(
                    f"http://127.0.0.1:{ports[i % 2]}/auth/{WECHAT}",
                    json=INPUTS[WECHAT],
                    headers={"Authorization": f"Bearer {keys.full}"},
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as response:
                    return response.status, await response.read()

            requests = asyncio.gather(*(one(i) for i in range(500)))
            # A fixed vendor latency let a slow machine deliver late requests after the answer was
            # cached (a genuine hit, `cached: true`); holding the vendor until every request has
            # joined the call makes "500 identical answers" a property of single flight, not timing.
            await wait_for_joiners(session, ports, 500 - len(ports), requests)
            vendors.state.hold.set()
            answers = await requests
    finally:
        vendors.state.hold.set()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    assert Counter(status for status, _ in answers) == {200: 500}
    distinct = [orjson.loads(b) for b in {body for _, body in answers}]
    assert len(distinct) == 1, [
        {k: v for k, v in d.items() if v != distinct[0][k]} for d in distinct
    ]
    assert vendors.calls(WECHAT) == 1
    assert codes == [0, 0]


async def test_redis_stopped_and_restarted_under_load_gives_no_5xx(
    aiohttp_client: Any, vendors: Vendors, keys: Keys, key_prefix: str, start_redis_server: Any
) -> None:
    """Stopping and restarting the real Redis under load: every valid request succeeds, new identities
    log in during the outage, no identity logs in twice, and Redis is used again once back."""
    server: RedisServerProcess = start_redis_server()
    gateway: TestClient = await aiohttp_client(
        create_app(gateway_settings(vendors, keys, server.url, key_prefix))
    )
    statuses: Counter[int] = Counter()
    next_identity = 0
    outage = asyncio.Event()

    async def worker() -> None:
        nonlocal next_identity
        deadline = time.monotonic() + 3.0
        sent = 0
        while time.monotonic() < deadline and sent < 2000:  # bounded in time and count
            sent += 1
            if outage.is_set() and next_identity < 40:
                next_identity += 1  # identities first seen while Redis is down
                identity = next_identity
            else:
                identity = sent % 20
            body = {**INPUTS[WECHAT], "wx_open_id": f"user-{identity}"}
            response = await gateway.post(
                f"/auth/{WECHAT}", json=body, headers={"Authorization": f"Bearer {keys.full}"}
            )
            statuses[response.status] += 1
            await response.read()

    async def outage_script() -> None:
        await asyncio.sleep(0.8)
        await asyncio.to_thread(server.stop)
        outage.set()
        await asyncio.sleep(1.0)
        outage.clear()
        await asyncio.to_thread(server.start)

    next_identity = 20
    await asyncio.gather(outage_script(), *(worker() for _ in range(10)))
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 200
    logged_in = len(vendors.state.issued_tokens)
    assert 20 < logged_in <= 40, "identities seen during the outage logged in once each"
    assert vendors.calls(WECHAT) == logged_in, "no identity logged in twice: no storm on return"

    # Redis is used again: a new identity's credential lands in the restarted server.
    deadline = time.monotonic() + 5
    while True:
        ready = await (await gateway.get("/readyz")).json()
        if ready["store"] == "up" and ready["invalidation"] == "live":
            break
        assert time.monotonic() < deadline, ready
        await asyncio.sleep(0.1)
    body = {**INPUTS[WECHAT], "wx_open_id": "after-the-outage"}
    response = await gateway.post(
        f"/auth/{WECHAT}", json=body, headers={"Authorization": f"Bearer {keys.full}"}
    )
    assert response.status == 200
    import redis.asyncio as aioredis

    client = aioredis.from_url(server.url)
    try:
        assert [k async for k in client.scan_iter(match=key_prefix + "*cred")]
    finally:
        await client.aclose()
    assert APIS[WECHAT] == "AppGetTokenByWeiXin"
