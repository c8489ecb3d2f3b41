"""Running it: SIGTERM drains (unready, in-flight finishes, exit 0), several workers share a port and
their metrics, a separate metrics port, readiness policy, and the canonical log line."""

from __future__ import annotations

import asyncio
import logging
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
import structlog
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.logging import RedactValues, configure_logging
from gateway.redaction import Redactor
from tests.api.conftest import (
    INPUTS,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    closed_port,
    provider_config,
    sha256_hex,
)
from tests.deploy import promtool
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis


def write_config(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str, **extra: Any
) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "redis_url": redis_url,
                "key_prefix": key_prefix.rstrip(":"),
                "providers": {WECHAT: provider_config(vendors)[WECHAT]},
                "clients": {"app": {"api_key_sha256": sha256_hex(keys.full), "providers": ["*"]}},
                **extra,
            }
        )
    )
    return path


def serve(
    config: Path, port: int, log: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            *extra,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=None if env is None else {**os.environ, **env},
    )


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


async def test_sigterm_drains_then_exits_zero(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """On SIGTERM /readyz turns 503 draining at once, a request in flight still gets its 200, and the
    process exits 0."""
    vendors.state.latency_s = 1.5
    port = closed_port()
    config = write_config(tmp_path, vendors, keys, redis_url, key_prefix, drain_delay_s=0.5)
    process = serve(config, port, tmp_path / "gw.log")
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(session, base + "/readyz")
            in_flight = asyncio.ensure_future(
                session.post(
                    base + f"/auth/{WECHAT}",
                    json=INPUTS[WECHAT],
                    headers={"Authorization": f"Bearer {keys.full}"},
                )
            )
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.1)
            async with session.get(base + "/readyz") as ready:
                assert ready.status == 503
                assert (await ready.json())["status"] == "draining"
            response = await in_flight
            assert response.status == 200
            assert (await response.json())["token"] == vendors.state.issued_tokens[0]
    finally:
        code = process.wait(timeout=30)
    assert code == 0, (tmp_path / "gw.log").read_text()


async def test_two_workers_share_the_port_and_their_metrics(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """--workers 2 serves from two processes on one port; /metrics, on the service port and on
    metrics_port, from whichever worker answers, counts the requests of both (and passes promtool);
    both exit 0 on SIGTERM and the parent removes the metrics files it shared."""
    checker = promtool()  # a missing promtool skips the test before it starts anything
    port, metrics_port = closed_port(), closed_port()
    while metrics_port == port:  # a released port can come back at once
        metrics_port = closed_port()
    config = write_config(
        tmp_path, vendors, keys, redis_url, key_prefix, drain_delay_s=0, metrics_port=metrics_port
    )
    scratch = tmp_path / "tmp"  # where the parent makes the workers' metrics directory
    scratch.mkdir()
    process = serve(
        config, port, tmp_path / "gw.log", "--workers", "2", env={"TMPDIR": str(scratch)}
    )
    try:
        # A new connection per request: SO_REUSEPORT spreads connections, not requests.
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)
        ) as session:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(session, base + "/healthz")
            statuses = []
            # Until each worker has answered some (its request histogram has a file), at least 40.
            while len(statuses) < 40 or value_files(scratch)["histogram"] < 2:
                assert len(statuses) < 400, value_files(scratch)
                async with session.post(
                    base + f"/auth/{WECHAT}",
                    json={**INPUTS[WECHAT], "wx_open_id": f"w-{len(statuses) % 4}"},
                    headers={"Authorization": f"Bearer {keys.full}"},
                ) as response:
                    statuses.append(response.status)
            assert statuses == [200] * len(statuses)
            # one file per kind of value and worker: both workers write where /metrics reads
            assert value_files(scratch) == {
                "counter": 2,
                "gauge_livemax": 2,
                "gauge_livemin": 2,
                "gauge_livesum": 2,
                "histogram": 2,
            }
            await wait_ready(session, f"http://127.0.0.1:{metrics_port}/metrics")
            for url in [base + "/metrics"] * 4 + [f"http://127.0.0.1:{metrics_port}/metrics"] * 4:
                async with session.get(url) as response:
                    text = await response.text()
                counted = samples(text, "gateway_requests_total")  # every child exists, at 0
                assert {labels: value for labels, value in counted.items() if value} == {
                    (("outcome", "ok"), ("provider", WECHAT), ("status_class", "2xx")): len(
                        statuses
                    )
                }
                lookups = samples(text, "gateway_cache_lookups_total")
                assert sum(lookups.values()) == len(statuses)
                assert samples(text, "gateway_store_up") == {(): 1.0}
                assert list(samples(text, "gateway_build_info").values()) == [1.0]
        result = await asyncio.to_thread(
            subprocess.run,
            [checker, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stdout + result.stderr) == (0, "")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, (tmp_path / "gw.log").read_text()
    assert vendors.calls(WECHAT) <= 8  # 4 identities, at most once per worker
    assert list(scratch.iterdir()) == []


async def test_a_worker_that_dies_stops_the_others(
    tmp_path: Path, vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str
) -> None:
    """A worker killed from outside: the parent says so, stops the other worker, removes the metrics
    directory and exits 1, so the pod restarts whole rather than serving on fewer workers."""
    port = closed_port()
    config = write_config(tmp_path, vendors, keys, redis_url, key_prefix, drain_delay_s=0)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log = tmp_path / "gw.log"
    process = serve(config, port, log, "--workers", "2", env={"TMPDIR": str(scratch)})
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{port}/healthz")
        workers = child_pids(process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        code = await asyncio.to_thread(process.wait, 30)  # it reaps both workers before it exits
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 1
    [exited] = [
        orjson.loads(line) for line in log.read_text().splitlines() if "worker_exited" in line
    ]
    assert (exited["pid"], exited["exit_code"]) == (workers[0], -signal.SIGKILL)
    assert list(scratch.iterdir()) == []


def child_pids(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_an_inherited_multiproc_dir_does_not_change_one_process(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR left in the environment (even naming no directory) does not move a
    single process's metrics into files: only `serve --workers` shares them."""
    script = (
        "from prometheus_client import generate_latest\n"
        "from gateway.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.note_cache('p', 'hit')\n"
        "print(generate_latest(m.exposed).decode())\n"
    )
    for directory in (tmp_path, tmp_path / "absent"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert samples(result.stdout, "gateway_cache_lookups_total") == {
            (("provider", "p"), ("result", "hit")): 1.0
        }
    assert list(tmp_path.iterdir()) == []


def value_files(scratch: Path) -> Counter[str]:
    """The kinds of prometheus_client value files in the one directory under `scratch`, counted."""
    shared = list(scratch.iterdir())
    return Counter(p.name.rsplit("_", 1)[0] for d in shared for p in d.iterdir())


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each sample called `name` in a Prometheus text exposition, by its sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


async def test_readiness_can_require_the_store_with_a_grace_period(
    start_gateway: StartGateway, aiohttp_client: Any, vendors: Vendors, keys: Keys, key_prefix: str
) -> None:
    """With readiness_requires_store, a store that is down stays ready during the grace, then 503."""
    from gateway.app import create_app
    from tests.api.conftest import gateway_settings

    settings = gateway_settings(
        vendors, keys, f"redis://127.0.0.1:{closed_port()}/0", key_prefix
    ).model_copy(update={"readiness_requires_store": True, "store_down_grace_s": 0.5})
    clock = ShiftedClock()
    gateway = await aiohttp_client(create_app(settings, clock=clock))
    for _ in range(
        3
    ):  # three failed pings in a row before the store counts as down (a blip is not)
        first = await gateway.get("/readyz")
    assert (first.status, (await first.json())["store"]) == (200, "down")
    clock.advance(0.7)  # past the grace
    later = await gateway.get("/readyz")
    assert (later.status, (await later.json())["status"]) == (503, "unready")


async def test_canonical_log_line_has_the_request_story(
    start_gateway: StartGateway, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """One JSON line per request with request id, provider, kind, client, outcome, status, cache result,
    vendor and total duration; nothing of the token or identity."""
    configure_logging("info", json=True)
    try:
        gateway = await start_gateway()
        capsys.readouterr()
        response = await gateway.post(
            f"/auth/{WECHAT}",
            json=INPUTS[WECHAT],
            headers={"Authorization": f"Bearer {keys.full}", "X-Request-ID": "trace-42"},
        )
        token = (await response.json())["token"]
        lines = [
            orjson.loads(line)
            for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")
        ]
    finally:
        structlog.reset_defaults()
    [line] = [entry for entry in lines if entry.get("event") == "request"]
    assert {
        k: line[k]
        for k in ("request_id", "provider", "kind", "client", "outcome", "status", "cache")
    } == {
        "request_id": "trace-42",
        "provider": WECHAT,
        "kind": "tencent-iot:AppGetTokenByWeiXin",
        "client": "billing-app",
        "outcome": "ok",
        "status": 200,
        "cache": "miss",
    }
    assert line["vendor_ms"] > 0 and line["duration_ms"] >= line["vendor_ms"]
    text = orjson.dumps(lines).decode()
    assert token not in text and INPUTS[WECHAT]["wx_open_id"] not in text


def test_each_log_line_is_one_write_with_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line and its newline leave in one write(), a stdlib record's too (as JSON): with unbuffered
    stdout, processes that share it (the workers of `serve --workers`) cannot splice their lines."""
    writes: list[str] = []

    class Recorder:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Recorder())
    configure_logging("info", json=True)
    try:
        structlog.get_logger("gateway").info("draining", delay_s=2.0)
        logging.getLogger("gateway.stdlib").warning("from the standard library")
    finally:
        structlog.reset_defaults()
    assert len(writes) == 2 and all(w.endswith("\n") and w.count("\n") == 1 for w in writes)
    assert orjson.loads(writes[0])["event"] == "draining"
    stdlib = orjson.loads(writes[1])
    assert (stdlib["event"], stdlib["logger"], stdlib["level"]) == (
        "from the standard library",
        "gateway.stdlib",
        "warning",
    )


def test_secret_values_are_redacted_anywhere_in_a_log_line() -> None:
    """A configured secret inside any logged string is replaced; short strings are left alone."""
    redact = RedactValues(Redactor(["s3cr3t-value", "abc"]))
    event = redact(
        None, "info", {"event": "boom", "error": "bad key s3cr3t-value!", "n": 3, "x": "abc"}
    )
    assert event == {"event": "boom", "error": "bad key [redacted]!", "n": 3, "x": "abc"}
