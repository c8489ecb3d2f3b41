"""`make bench`: the gateway beside bare baselines, on loopback, every ratio measured in one run.

    python -m tests.benchmarks.bench [--quick] [--rounds 3] [--duration 10] [--soak-minutes 1]
        [--label NAME --journal] ...

Every server is its own process (`python -m ...`), every load generator too (`wrk` when installed,
else `tests/benchmarks/loadgen.py`); this script only starts them, reads /proc and writes results.

Hit rounds, interleaved (the order reverses every round, so machine noise hits all alike):
  (hello) bare aiohttp answering a small JSON; (a) bare aiohttp + one redis-py GET;
  (b) the gateway's L1 hit: one identity, caller auth, metrics and the log line at info;
  (bq) (b) at log level warning: no request line, so (b) - (bq) is what the line costs;
  (rh) the gateway's Redis hit: 2,000 identities in rotation, all in Redis, an in-process cache of
       100 entries (`local_cache_max_entries`), so the in-process cache misses and Redis answers;
  (w2) `serve --workers 2`, the same load as (b): scaling over two processes.
Misses at 1 and 16 connections, one after the other: (v) pre-signed vendor requests straight to the
  sandbox, (p) through a bare forwarding proxy, (r) the proxy with one Redis GET first, (ps) the proxy
  with one Redis SET of the answer (the miss baseline), (c) the gateway with a new identity per request.
(d) 1,000 concurrent identical cold requests over two gateway processes sharing Redis, slow vendor.
soak: 50,000 identities warmed into a gateway whose in-process cache holds them all, then requests
  rotating over them for `--soak-minutes`, RSS sampled every second.
profiles: `py-spy record --pid` on the running servers under load, after the measured runs.

Server CPU per request is utime+stime from /proc/<pid>/stat (parent and workers) over the requests
answered. Output: bench-results/ (results.json, profiles, the section as performance.md) and the
section between the `bench:begin`/`bench:end` markers of docs/performance.md; `--journal` also adds a
one-line row to the page's journal. Redis keys live under a fresh `bench-<run id>` prefix and are
deleted at the end; nothing is flushed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
import yaml

from tests.benchmarks import flame, report
from tests.benchmarks.procs import (
    CLK_TCK,
    ROOT,
    Server,
    cpu_seconds,
    free_port,
    http_call,
    load_average,
    log_summary,
    machine,
    machine_cpu,
    reaped_children_cpu,
    wake_cost,
)
from tests.benchmarks.wrk import Load, Running, wrk_available, wrk_version

WECHAT = "tencent-wechat"
TENCENT_API = "AppGetTokenByWeiXin"
TENCENT_PATH = "/api/exploreropen/appapi"
TOP_KEY, TENCENT_KEY = "bench-top-app", "bench-tencent-app"
HIT_INPUT = {
    "wx_open_id": "o-bench-hit-user",
    "nick_name": "bench",
    "avatar": "https://example.com/a.png",
}
HIT_SCENARIOS = ("hello", "a", "b", "bq", "rh", "w2")
REDIS_HIT_IDENTITIES = 2_000
REDIS_HIT_LOCAL_ENTRIES = 100  # far fewer than the identities in rotation: the L1 cannot hold them
NEVER_THROTTLED = 100_000.0  # per second: rate limits on, far above any rate the bench reaches
# Each profiled sample is charged to one concern: the first frame, from the leaf up, a rule matches.
EVENT_LOOP_FILES = ("asyncio/runners.py", "asyncio/events.py", "asyncio/base_events.py")
GATEWAY_CONCERNS: list[flame.Rule] = [
    ("event loop: uvloop C code, epoll, asyncio", lambda label, f: f.endswith(EVENT_LOOP_FILES)),
    (
        "log line: the request line (orjson), structlog, stdout write",
        lambda label, f: (
            "/structlog/" in f
            or "/gateway/logging" in f
            or "/gateway/request_line" in f
            or "/gateway/log_processors" in f
        ),
    ),
    ("metrics: prometheus_client", lambda label, f: "/prometheus_client/" in f),
    (
        "Redis: redis-py and the store",
        lambda label, f: "/site-packages/redis/" in f or "/gateway/store/" in f,
    ),
    (
        "vendor call: upstream, signing, aiohttp client",
        lambda label, f: (
            "/gateway/upstream/" in f
            or "/gateway/signing/" in f
            or "/aiohttp/client" in f
            or "/aiohttp/connector" in f
            or "build_request" in label
            or "read_response" in label
        ),
    ),
    (
        "request id: uuid4",
        lambda label, f: f.endswith("/uuid.py") or label.startswith("request_id_from"),
    ),
    ("caller auth", lambda label, f: f.endswith("gateway/api/auth.py")),
    (
        "body read and input validation (pydantic)",
        lambda label, f: (
            f.endswith("gateway/api/body.py") or "/pydantic/" in f or "parse_inputs" in label
        ),
    ),
    (
        "cache lookup and answer: service, cache",
        lambda label, f: "/gateway/service" in f or "/gateway/cache/" in f,
    ),
    ("response JSON", lambda label, f: label.startswith("json_response")),
    (
        "other gateway code: middleware, handlers",
        lambda label, f: "/gateway/" in f and "/site-packages/" not in f,
    ),
    (
        "aiohttp server: parse, dispatch, write (send syscalls included)",
        lambda label, f: "/aiohttp/" in f,
    ),
]
REST_CONCERN = "other"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PAGE = ROOT / "docs" / "performance.md"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(4)
        self.prefix = f"bench-{self.run_id}"
        self.results_dir = ROOT / args.results_dir
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        self.tool = (
            "wrk"
            if args.loadgen == "wrk" or (args.loadgen == "auto" and wrk_available())
            else "asyncio"
        )
        self.servers: list[Server] = []
        self.top_secret = secrets.token_hex(16)
        self.tencent_secret = secrets.token_hex(16)
        self.api_key = "bench-" + secrets.token_urlsafe(24)
        self.redis_url = args.redis_url
        self.redis_process: subprocess.Popen[bytes] | None = None
        self.redis_pid: int | None = None
        self.redis_client: redis.Redis | None = None
        self.logs: dict[str, Any] = {}
        self.profiles: dict[str, Any] = {}
        self.loads = 0

    # -- set-up ---------------------------------------------------------------------------------

    def connect_redis(self) -> redis.Redis:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError:
            if self.args.redis_url != DEFAULT_REDIS_URL or shutil.which("redis-server") is None:
                raise
            port = free_port()
            self.redis_process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.redis_url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        self.redis_client = client
        pid = int(client.info("server")["process_id"])
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().startswith("redis"):
                self.redis_pid = pid
        return client

    def start(self, name: str, argv: list[str], port: int) -> Server:
        server = Server(name, argv, self.workdir, port)
        self.servers.append(server)
        return server

    def start_sandbox(self, name: str, latency_s: float) -> Server:
        port = free_port()
        server = self.start(
            name,
            [
                sys.executable,
                "-m",
                "gateway",
                "sandbox",
                "--port",
                str(port),
                "--latency",
                str(latency_s),
                "--top-app",
                f"{TOP_KEY}:{self.top_secret}",
                "--tencent-app",
                f"{TENCENT_KEY}:{self.tencent_secret}",
            ],
            port,
        )
        server.wait_ready("/_sandbox/stats", lambda body: b"calls" in body)
        return server

    def gateway_config(
        self,
        name: str,
        sandbox: Server,
        key_prefix: str,
        *,
        local_entries: int | None = None,
        log_level: str = "info",
    ) -> Path:
        """The YAML a deployment would have: four providers on the sandbox, one client key.
        `local_entries` bounds the in-process cache; `log_level` above info drops the request line.
        The outbound rate limit and the client's vendor-call budget stay on (their work is part of a
        miss) but are sized far above the bench's load, so they never throttle it: the defaults (50
        and 20 per second) would."""
        top = {
            "endpoint": sandbox.url + "/router/rest",
            "app_key": TOP_KEY,
            "app_secret": self.top_secret,
        }
        wechat: dict[str, Any] = {
            "kind": "tencent-iot:AppGetTokenByWeiXin",
            "endpoint": sandbox.url + TENCENT_PATH,
            "app_key": TENCENT_KEY,
            "app_secret": self.tencent_secret,
        }
        wechat["limits"] = {"rate_per_s": NEVER_THROTTLED, "burst": int(NEVER_THROTTLED)}
        config: dict[str, Any] = {
            "redis_url": self.redis_url,
            "key_prefix": key_prefix,
            "log_level": log_level,
            "drain_delay_s": 0,
            "shutdown_timeout_s": 5,
            "providers": {
                "zebra-miniapp": {"kind": "top:yunos.aiot.thirdminiapp.auth.get", **top},
                "aligenie-login": {"kind": "top:taobao.ailab.aicloud.top.auth.get", **top},
                "tmallgenie-bind": {
                    "kind": "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
                    **top,
                },
                WECHAT: wechat,
            },
            "clients": {
                "bench-app": {
                    "api_key_sha256": hashlib.sha256(self.api_key.encode()).hexdigest(),
                    "providers": ["*"],
                    "vendor_calls_per_s": NEVER_THROTTLED,
                    "vendor_calls_burst": int(NEVER_THROTTLED),
                }
            },
        }
        if local_entries is not None:
            config["local_cache_max_entries"] = local_entries
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start_gateway(
        self, name: str, config: Path, *, python: list[str] | None = None, workers: int = 1
    ) -> Server:
        """`python -m gateway serve`; `python` replaces the interpreter (e.g. python -m pyinstrument)."""
        port = free_port()
        argv = [*(python or [sys.executable]), "-m", "gateway", "serve"]
        argv += ["--config", str(config), "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        server = self.start(name, argv, port)
        server.wait_ready("/readyz", lambda body: json.loads(body).get("invalidation") == "live")
        return server

    def start_baseline(self, name: str, *extra: str) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "tests.benchmarks.baseline_app", "--port", str(port)]
        server = self.start(name, [*argv, *extra], port)
        server.wait_ready("/healthz", lambda body: b"ok" in body)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)
        if "gateway" in server.name:
            self.logs[server.name] = log_summary(server.log_path)
            tail = self.results_dir / "logs" / f"{server.name}.tail.log"
            tail.parent.mkdir(exist_ok=True)
            tail.write_text(server.log_tail(20) + "\n", encoding="utf-8")

    # -- load -----------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def hit_load(
        self, server: Server, duration_s: float, *, bodies_file: Path | None = None
    ) -> Load:
        """The hit load: one identity, or the identities of `bodies_file` in rotation."""
        self.loads += 1
        return Load(
            url=server.url + f"/auth/{WECHAT}",
            body=HIT_INPUT,
            headers=self.auth_headers(),
            connections=self.args.connections,
            duration_s=duration_s,
            bodies_file=bodies_file,
            tag=f"{self.run_id}-{self.loads}",
        )

    def run_load(self, load: Load) -> Running:
        return Running(load, self.tool, self.workdir, self.args.wrk_threads)

    def measure(
        self,
        load: Load,
        server: Server,
        *,
        others: tuple[Server, ...] = (),
        sandbox: Server | None = None,
    ) -> dict[str, Any]:
        """One load run with the server's (and Redis's, the others') CPU per request around it."""
        watched = (server, *others)
        before = {s.name: s.cpu() for s in watched}
        redis_before = cpu_seconds(self.redis_pid) if self.redis_pid else None
        calls_before = vendor_calls(sandbox) if sandbox else None
        commands_before = self.redis_commands()
        busy_before, steal_before = machine_cpu()
        loadgen_before = reaped_children_cpu()
        started = time.monotonic()
        result = self.run_load(load).result()
        wall = time.monotonic() - started
        busy_after, steal_after = machine_cpu()
        requests = max(1, result["requests"])
        commands = self.redis_commands()
        if commands and commands_before:  # the machine's Redis may serve others too: an upper bound
            per_request = {
                name: (count - commands_before.get(name, 0)) / requests
                for name, count in commands.items()
                if name != "info" and count > commands_before.get(name, 0)
            }
            result["redis_commands_per_req"] = {
                name: round(value, 3)
                for name, value in sorted(per_request.items(), key=lambda kv: -kv[1])
                if value >= 0.005
            }
            result["redis_commands_total_per_req"] = round(sum(per_request.values()), 3)
        accounted = reaped_children_cpu() - loadgen_before
        result["loadgen_cpu_pct"] = 100 * accounted / wall
        for s in watched:
            used = s.cpu() - before[s.name]
            accounted += used
            key = "server" if s is server else s.name
            result[f"{key}_cpu_us_per_req"] = used * 1e6 / requests
            result[f"{key}_cpu_pct"] = 100 * used / wall
        if redis_before is not None and self.redis_pid:
            used = cpu_seconds(self.redis_pid) - redis_before
            accounted += used
            result["redis_cpu_us_per_req"] = used * 1e6 / requests
        # Noise: what the rest of the machine (other processes, this harness) used meanwhile.
        busy = (busy_after - busy_before) / CLK_TCK
        result["machine_busy_pct"] = 100 * busy / wall
        result["other_cpu_pct"] = max(0.0, 100 * (busy - accounted) / wall)
        result["steal_pct"] = 100 * (steal_after - steal_before) / CLK_TCK / wall
        if sandbox is not None and calls_before is not None:
            result["vendor_calls"] = vendor_calls(sandbox) - calls_before
        result["server_rss_mb"] = server.rss_mb()
        result["server_hwm_mb"] = server.hwm_mb()
        return result

    # -- scenarios ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "label": a.label,
            "machine": machine(),
            "started_at": time.time(),
            "load_average_at_start": load_average(),
        }
        client = self.connect_redis()
        out["redis"] = {"url": self.redis_url, "version": client.info("server")["redis_version"]}
        out["method"] = {
            "load_generator": self.tool,
            "load_generator_version": wrk_version()
            if self.tool == "wrk"
            else "tests/benchmarks/loadgen.py",
            "wrk_threads": a.wrk_threads if self.tool == "wrk" else None,
            "connections": a.connections,
            "round_s": a.duration,
            "rounds": a.rounds,
            "warmup_s": a.warmup,
            "redis_hit_identities": REDIS_HIT_IDENTITIES,
            "redis_hit_local_entries": REDIS_HIT_LOCAL_ENTRIES,
            "soak_s": a.soak_minutes * 60,
            "soak_identities": a.soak_identities,
            "miss_vendor_latency_s": a.miss_latency,
            "miss_connections": [1, a.miss_connections],
            "miss_round_s": a.miss_duration,
            "burst_requests": a.burst,
            "burst_vendor_latency_s": a.burst_latency,
            "profile_s": a.profile,
            "profile_rate_hz": a.profile_rate,
            "pinning": "none (processes float over all cores)",
        }
        baseline_key = f"{self.prefix}-baseline:cred"
        client.set(
            baseline_key,
            json.dumps(
                {
                    "token": secrets.token_hex(32),
                    "expires_at": int(time.time()) + 7200,
                    "provider": WECHAT,
                    "kind": "tencent-iot:AppGetTokenByWeiXin",
                    "data": {},
                    "upstream_request_id": secrets.token_hex(16),
                }
            ),
            ex=3600,
        )
        out["profiles"] = self.profiles
        try:
            sandbox = self.start_sandbox("sandbox", a.miss_latency)
            out["hit_path"] = self.hit_rounds(sandbox, baseline_key)
            out["misses"] = self.misses(sandbox)
            self.stop(sandbox)
            out["burst"] = self.burst()
            out["soak"] = self.soak() if a.soak_minutes > 0 else None
        finally:
            for server in list(self.servers):
                self.stop(server)
            out["redis_keys_deleted"] = self.delete_keys(client)
            if self.redis_process is not None:
                self.redis_process.terminate()
                self.redis_process.wait(timeout=10)
        out["gateway_logs"] = self.logs
        out["finished_at"] = time.time()
        out["load_average_at_end"] = load_average()
        out["summary"] = report.summarise(out)
        if not a.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            out["workdir"] = str(self.workdir)
        return out

    def hit_rounds(self, sandbox: Server, baseline_key: str) -> dict[str, Any]:
        """(hello), (a), (b), (rh) and (w2) in interleaved rounds, then profiled."""
        a = self.args
        servers: dict[str, Server] = {
            "hello": self.start_baseline("baseline-hello", "--hello"),
            "a": self.start_baseline(
                "baseline", "--redis-url", self.redis_url, "--key", baseline_key
            ),
        }
        config = self.gateway_config("gateway-hit", sandbox, f"{self.prefix}-hit")
        servers["b"] = self.start_gateway("gateway-hit", config)
        # (bq): (b) without the request line (log level warning), so that (b) - (bq) is its cost.
        quiet = self.gateway_config(
            "gateway-hit-quiet", sandbox, f"{self.prefix}-hit", log_level="warning"
        )
        servers["bq"] = self.start_gateway("gateway-hit-quiet", quiet)
        for scenario in ("b", "bq"):
            first = self.post(servers[scenario], HIT_INPUT)
            second = self.post(servers[scenario], HIT_INPUT)
            if not (second.get("cached") is True and first.get("token") == second.get("token")):
                raise RuntimeError(f"{scenario}: the hit path is not warm: {first} then {second}")
        rh_config = self.gateway_config(
            "gateway-redis-hit",
            sandbox,
            f"{self.prefix}-rh",
            local_entries=REDIS_HIT_LOCAL_ENTRIES,
        )
        servers["rh"] = self.start_gateway("gateway-redis-hit", rh_config)
        rh_bodies = identity_bodies(f"rh-{self.run_id}", REDIS_HIT_IDENTITIES)
        self.warm(servers["rh"], rh_bodies, expect_cached=False)
        rh_file = self.bodies_file("redis-hit", rh_bodies)
        # The same config as (b): the same cache in Redis; each worker fills its own L1 in warm-up.
        servers["w2"] = self.start_gateway("gateway-workers-2", config, workers=2)
        for scenario in ("hello", "a", "w2"):
            status, body = self.post_raw(servers[scenario], HIT_INPUT)
            if status != 200:
                raise RuntimeError(f"{scenario} answered {status}: {body[:200]!r}")

        def load(scenario: str, duration_s: float) -> Load:
            bodies = rh_file if scenario == "rh" else None
            return self.hit_load(servers[scenario], duration_s, bodies_file=bodies)

        for scenario in HIT_SCENARIOS:  # warm-up: connections, allocator, caches; not measured
            self.run_load(load(scenario, a.warmup)).result()
        rounds: list[dict[str, Any]] = []
        for i in range(a.rounds):
            order = HIT_SCENARIOS if i % 2 == 0 else tuple(reversed(HIT_SCENARIOS))
            for scenario in order:
                server = servers[scenario]
                lookups = cache_lookups(server) if scenario == "rh" else None
                result = self.measure(load(scenario, a.duration), server, sandbox=sandbox)
                if lookups is not None:
                    after = cache_lookups(server)
                    counted = {k: after.get(k, 0) - lookups.get(k, 0) for k in after}
                    result["cache_lookups"] = counted
                    result["cache_hit_share"] = counted.get("hit", 0) / max(1, result["requests"])
                result.update(scenario=scenario, round=i + 1)
                rounds.append(result)
                print(f"  round {i + 1} ({scenario}): {brief(result)}", flush=True)
        peaks = {scenario: server.hwm_mb() for scenario, server in servers.items()}
        if a.profile > 0:
            for name, scenario, gateway_config in (
                ("hit-path", "b", config),
                ("redis-hit-path", "rh", None),
                ("baseline", "a", None),
            ):
                self.profiles[name] = self.profile(
                    name, servers[scenario], lambda d, s=scenario: load(s, d), config=gateway_config
                )
        for server in servers.values():
            self.stop(server)
        return {"rounds": rounds, "peak_rss_mb": peaks}

    def warm(self, server: Server, bodies: list[dict[str, Any]], *, expect_cached: bool) -> float:
        """Each identity asked once, over keep-alive connections from a few threads; every answer
        must be a 200 with `cached` as expected. Returns the seconds it took."""
        from concurrent.futures import ThreadPoolExecutor

        threads = 32
        examples: list[str] = []
        headers = {"Content-Type": "application/json", **self.auth_headers()}
        url = server.url + f"/auth/{WECHAT}"

        def ask(chunk: list[dict[str, Any]]) -> int:
            wrong = 0
            with keep_alive(url) as send:
                for body in chunk:
                    status, raw = send(json.dumps(body).encode(), headers)
                    if status != 200 or json.loads(raw).get("cached") is not expect_cached:
                        wrong += 1
                        examples.append(f"{status} {raw[:200]!r}")
            return wrong

        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            wrong = sum(pool.map(ask, [bodies[i::threads] for i in range(threads)]))
        if wrong:
            raise RuntimeError(
                f"warming {server.name}: {wrong} of {len(bodies)} answers were wrong"
            )
        seconds = time.monotonic() - started
        print(
            f"  warmed {len(bodies):,} identities into {server.name} in {seconds:.1f} s", flush=True
        )
        return seconds

    def bodies_file(self, name: str, bodies: list[dict[str, Any]]) -> Path:
        path = self.workdir / f"bodies-{name}.txt"
        lines = (json.dumps(b, separators=(",", ":")) for b in bodies)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def soak(self) -> dict[str, Any]:
        """RSS over time: N identities warmed into a gateway whose in-process cache holds them all
        (so the soak is the L1 hit path at N entries), then requests rotating over them."""
        a = self.args
        identities = a.soak_identities
        sandbox = self.start_sandbox("sandbox-soak", 0.001)
        config = self.gateway_config(
            "gateway-soak",
            sandbox,
            f"{self.prefix}-soak",
            local_entries=identities + identities // 10,
        )
        gateway = self.start_gateway("gateway-soak", config)
        self.post(
            gateway, HIT_INPUT
        )  # first-request costs (pools, lazy imports) before the baseline
        self.post(gateway, HIT_INPUT)
        rss_before = gateway.rss_mb()
        bodies = identity_bodies(f"soak-{self.run_id}", identities)
        # Asked twice: the miss stores the entry, the first hit keeps its ready answer beside it.
        warm_s = self.warm(gateway, bodies, expect_cached=False)
        warm_s += self.warm(gateway, bodies, expect_cached=True)
        rss_after_warm = gateway.rss_mb()
        duration = a.soak_minutes * 60
        calls_before = vendor_calls(sandbox)
        cpu_before = gateway.cpu()
        running = self.run_load(
            self.hit_load(gateway, duration, bodies_file=self.bodies_file("soak", bodies))
        )
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        for second in range(1, int(duration) + 1):
            time.sleep(max(0.0, started + second - time.monotonic()))
            samples.append((round(time.monotonic() - started, 2), gateway.rss_mb()))
        result = running.result()
        result["server_cpu_us_per_req"] = (
            (gateway.cpu() - cpu_before) * 1e6 / max(1, result["requests"])
        )
        result["vendor_calls"] = vendor_calls(sandbox) - calls_before
        window = min(20.0, duration / 3)
        first = [rss for t, rss in samples if t <= window]
        last = [rss for t, rss in samples if t > duration - window]
        rss = [value for _, value in samples]
        result.update(
            identities=identities,
            warm_s=warm_s,
            rss_before_warm_mb=rss_before,
            rss_after_warm_mb=rss_after_warm,
            bytes_per_identity=(rss_after_warm - rss_before) * 1e6 / identities,
            rss_samples_mb=[[t, round(value, 2)] for t, value in samples],
            window_s=window,
            rss_start_mb=samples[0][1],
            rss_end_mb=samples[-1][1],
            rss_min_mb=min(rss),
            rss_max_mb=max(rss),
            rss_first_window_mean_mb=statistics.fmean(first),
            rss_last_window_mean_mb=statistics.fmean(last),
            rss_growth_pct=100 * (statistics.fmean(last) / statistics.fmean(first) - 1),
            hwm_mb=gateway.hwm_mb(),
        )
        print(
            f"  soak {duration:g} s over {identities:,} identities: {brief(result)}, RSS "
            f"{result['rss_start_mb']:.1f} → {result['rss_end_mb']:.1f} MB "
            f"({result['rss_growth_pct']:+.1f} %), {result['bytes_per_identity']:,.0f} B/identity",
            flush=True,
        )
        self.stop(gateway)
        self.stop(sandbox)
        return result

    def miss_load(self, gateway: Server, connections: int, duration_s: float, tag: str) -> Load:
        return Load(
            url=gateway.url + f"/auth/{WECHAT}",
            body=HIT_INPUT,
            headers=self.auth_headers(),
            connections=connections,
            duration_s=duration_s,
            unique_field="wx_open_id",
            tag=f"{self.run_id}-{tag}",
        )

    def misses(self, sandbox: Server) -> dict[str, Any]:
        """(v) pre-signed requests straight to the sandbox, (p) the same through a bare forwarding
        proxy, (r) through that proxy with one Redis GET before each forward, (c) new identities
        through the gateway — in that order at each connection count."""
        a = self.args
        config = self.gateway_config("gateway-miss", sandbox, f"{self.prefix}-miss")
        gateway = self.start_gateway("gateway-miss", config)
        proxy = self.start_proxy("forwarding-proxy", sandbox)
        proxy_redis = self.start_proxy(
            "forwarding-proxy-redis",
            sandbox,
            "--redis-url",
            self.redis_url,
            "--key",
            f"{self.prefix}-floor:absent",
        )
        proxy_set = self.start_proxy(
            "forwarding-proxy-set",
            sandbox,
            "--redis-url",
            self.redis_url,
            "--key",
            f"{self.prefix}-ps",
            "--store-answer",
        )
        self.run_load(self.miss_load(gateway, a.miss_connections, a.warmup, "warm")).result()
        for server in (
            sandbox,
            proxy,
            proxy_redis,
            proxy_set,
        ):  # their pools too: connections, first requests
            self.run_load(
                self.direct_load(server, config, a.miss_connections, 1.0, "warm")
            ).result()
        idle_before, idle_started = gateway.cpu(), time.monotonic()
        time.sleep(3.0)  # what the process burns with no requests (spread over few misses at c1)
        idle_cpu_pct = 100 * (gateway.cpu() - idle_before) / (time.monotonic() - idle_started)
        wake = wake_cost(gateway.url + "/healthz", idle_s=a.miss_latency)
        print(
            f"  /healthz p50 {wake['back_to_back_p50_ms']:.2f} ms back to back, "
            f"{wake['after_idle_p50_ms']:.2f} ms after {a.miss_latency * 1000:g} ms idle",
            flush=True,
        )
        runs: list[dict[str, Any]] = []
        shapes = ((1, max(2.0, a.miss_duration / 2)), (a.miss_connections, a.miss_duration))
        for connections, duration in shapes:
            measured: dict[str, dict[str, Any]] = {}
            for scenario, server, target in (
                ("v", sandbox, "sandbox directly"),
                ("p", proxy, "bare forwarding proxy"),
                ("r", proxy_redis, "forwarding proxy + one Redis GET"),
                ("ps", proxy_set, "forwarding proxy + one Redis SET of the answer"),
            ):
                direct = self.direct_load(server, config, connections, duration, scenario)
                others = () if server is sandbox else (sandbox,)
                result = self.measure(direct, server, others=others, sandbox=sandbox)
                result.update(scenario=scenario, target=target)
                measured[scenario] = result
                runs.append(result)
                print(f"  {target}, {connections} conn: {brief(result)}", flush=True)
            load = self.miss_load(gateway, connections, duration, f"miss-{connections}")
            result = self.measure(load, gateway, others=(sandbox,), sandbox=sandbox)
            result.update(scenario="c", target="gateway, new identity per request")
            direct_p50, proxy_p50 = measured["v"]["p50_ms"], measured["p"]["p50_ms"]
            for floor in ("p", "r"):
                measured[floor]["overhead_vs_direct_ms"] = measured[floor]["p50_ms"] - direct_p50
            result["overhead_ms"] = result["p50_ms"] - a.miss_latency * 1000
            result["overhead_vs_direct_ms"] = result["p50_ms"] - direct_p50
            result["overhead_vs_proxy_ms"] = result["p50_ms"] - proxy_p50
            runs.append(result)
            print(
                f"  misses, {connections} conn: {brief(result)}; p50 − direct p50 = "
                f"{result['overhead_vs_direct_ms']:.2f} ms (bare proxy "
                f"{measured['p']['overhead_vs_direct_ms']:.2f} ms, with one Redis GET "
                f"{measured['r']['overhead_vs_direct_ms']:.2f} ms)",
                flush=True,
            )
        peak = gateway.hwm_mb()
        if a.profile > 0:
            self.profiles["miss-path"] = self.profile(
                "miss-path",
                gateway,
                lambda d: self.miss_load(gateway, a.miss_connections, d, "miss-profile"),
            )
        self.stop(proxy)
        self.stop(proxy_redis)
        self.stop(proxy_set)
        self.stop(gateway)
        return {
            "runs": runs,
            "peak_rss_mb": peak,
            "vendor_latency_ms": a.miss_latency * 1000,
            "idle_cpu_pct": idle_cpu_pct,
            "wake_cost": wake,
        }

    def direct_load(
        self, server: Server, config: Path, connections: int, duration_s: float, tag: str
    ) -> Load:
        """Pre-signed vendor requests (fresh nonces, enough for the run) to the sandbox or a proxy."""
        count = int(connections * duration_s / max(self.args.miss_latency, 0.005) * 1.5) + 200
        tag = f"{self.run_id}-{tag}{connections}-{server.name}"
        return Load(
            url=server.url + TENCENT_PATH,
            body={},
            headers={"Accept": "application/json"},
            connections=connections,
            duration_s=duration_s,
            bodies_file=self.presign(config, count, tag),
            tag=tag,
        )

    def start_proxy(self, name: str, sandbox: Server, *extra: str) -> Server:
        """`baseline_app.py --forward` to the sandbox's Tencent endpoint ((p); (r), (ps) with Redis)."""
        return self.start_baseline(name, "--forward", sandbox.url + TENCENT_PATH, *extra)

    def presign(self, config: Path, count: int, tag: str) -> Path:
        """Valid signed Tencent requests (fresh nonce and timestamp each), by the gateway's own code."""
        from gateway.providers.registry import bind_providers
        from gateway.settings import load_settings
        from gateway.upstream import new_send_context

        provider = bind_providers(load_settings(config).providers)[WECHAT]
        lines = []
        for i in range(count):
            inputs = provider.parse_inputs({**HIT_INPUT, "wx_open_id": f"direct-{tag}-{i}"})
            request = provider.build_request(inputs, new_send_context(time.time()))
            lines.append(request.body.decode())
        path = self.workdir / f"signed-{tag}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def burst(self) -> dict[str, Any]:
        """(d): N identical cold requests at once over two gateway processes sharing Redis."""
        a = self.args
        sandbox = self.start_sandbox("sandbox-slow", a.burst_latency)
        config = self.gateway_config("gateway-burst", sandbox, f"{self.prefix}-burst")
        gateways = [self.start_gateway(f"gateway-burst-{i}", config) for i in (1, 2)]
        body = {**HIT_INPUT, "wx_open_id": f"o-bench-cold-{self.run_id}"}
        calls_before = vendor_calls(sandbox)
        cpu_before = [g.cpu() for g in gateways]
        argv = [
            sys.executable,
            "-m",
            "tests.benchmarks.loadgen",
            "burst",
            "--requests",
            str(a.burst),
        ]
        for g in gateways:
            argv += ["--url", g.url + f"/auth/{WECHAT}"]
        argv += ["--body", json.dumps(body), "--header", f"Authorization: Bearer {self.api_key}"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
        )
        if done.returncode != 0:
            raise RuntimeError(f"burst load generator failed: {done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        time.sleep(0.5)  # let any stray second call land before counting
        result["vendor_calls"] = vendor_calls(sandbox) - calls_before
        used = sum(g.cpu() - before for g, before in zip(gateways, cpu_before, strict=True))
        result["server_cpu_us_per_req"] = used * 1e6 / max(1, result["requests"])
        result["peak_rss_mb"] = {g.name: g.hwm_mb() for g in gateways}
        result["processes"] = len(gateways)
        print(
            f"  burst {a.burst} over 2 processes: statuses {result['statuses']}, vendor calls "
            f"{result['vendor_calls']}, distinct bodies {result['distinct_bodies']}, "
            f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms",
            flush=True,
        )
        for g in gateways:
            self.stop(g)
        self.stop(sandbox)
        return result

    # -- profiles -------------------------------------------------------------------------------

    def profile(
        self,
        name: str,
        server: Server,
        make_load: Callable[[float], Load],
        *,
        config: Path | None = None,
    ) -> dict[str, Any]:
        """`py-spy record --pid` on the running server under load (not a measured run); without
        py-spy, or if it cannot attach, pyinstrument on a fresh gateway (only when `config` is given).
        BENCH_PROFILER=py-spy|pyinstrument forces one."""
        choice = os.environ.get("BENCH_PROFILER", "auto")
        search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        py_spy = shutil.which("py-spy", path=search)
        errors: list[str] = []
        if choice in ("auto", "py-spy"):
            try:
                if py_spy is None:
                    raise RuntimeError("py-spy is not installed (pip install py-spy)")
                return self.profile_with_py_spy(name, py_spy, server, make_load)
            except Exception as error:  # fall back to pyinstrument
                errors.append(f"py-spy: {error}")
                print(f"  py-spy failed on {name}: {error}", flush=True)
        if choice in ("auto", "pyinstrument") and config is not None:
            try:
                return self.profile_with_pyinstrument(name, config, make_load) | {"errors": errors}
            except Exception as error:
                errors.append(f"pyinstrument: {error}")
                print(f"  pyinstrument failed on {name}: {error}", flush=True)
                for other in list(self.servers):
                    if other.name == f"{name}-pyinstrument":
                        self.stop(other)
        return {"profiler": None, "errors": errors}

    def profile_with_py_spy(
        self, name: str, py_spy: str, server: Server, make_load: Callable[[float], Load]
    ) -> dict[str, Any]:
        out = self.results_dir / f"{name}.speedscope.json"
        out.unlink(missing_ok=True)
        seconds = max(1, round(self.args.profile))
        running = self.run_load(make_load(seconds + 3))
        time.sleep(1)  # into the steady state
        argv = [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(seconds),
            "--rate",
            str(self.args.profile_rate),
            "--function",
            "--format",
            "speedscope",
            "--output",
            str(out),
        ]
        spy = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        load = running.result()
        if spy.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"py-spy exited {spy.returncode}: {(spy.stderr or spy.stdout)[-500:]}"
            )
        stacks, files = flame.load_stacks(out)
        return self.write_profile(name, "py-spy", stacks, files, load, [out.name])

    def profile_with_pyinstrument(
        self, name: str, config: Path, make_load: Callable[[float], Load]
    ) -> dict[str, Any]:
        """pyinstrument wraps a fresh gateway process (it cannot attach); SIGTERM stops the server
        cleanly and pyinstrument writes its session on the way out."""
        from pyinstrument.session import Session

        out = self.results_dir / f"{name}.pyisession"
        out.unlink(missing_ok=True)
        python = [sys.executable, "-m", "pyinstrument", "--interval", "0.0005"]
        python += ["-r", "pyisession", "-o", str(out)]
        gateway = self.start_gateway(f"{name}-pyinstrument", config, python=python)
        self.post(gateway, HIT_INPUT)
        url = gateway.url + f"/auth/{WECHAT}"
        self.run_load(replace(make_load(self.args.warmup), url=url)).result()
        load = self.run_load(replace(make_load(self.args.profile), url=url)).result()
        self.stop(gateway)
        if not out.exists():
            raise RuntimeError(f"pyinstrument wrote no session:\n{gateway.log_tail()}")
        html_out = self.results_dir / f"{name}.html"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyinstrument",
                "--load",
                str(out),
                "-r",
                "html",
                "-o",
                html_out,
            ],
            check=True,
            capture_output=True,
        )
        stacks, files = pyinstrument_stacks(Session.load(str(out)))
        return self.write_profile(
            name, "pyinstrument", stacks, files, load, [out.name, html_out.name]
        )

    def write_profile(
        self,
        name: str,
        profiler: str,
        stacks: Any,
        files: dict[str, str],
        load: dict[str, Any],
        outputs: list[str],
    ) -> dict[str, Any]:
        collapsed = self.results_dir / f"{name}.collapsed.txt"
        svg = self.results_dir / f"{name}.svg"
        top = self.results_dir / f"{name}.top.json"
        flame.write_collapsed(stacks, collapsed)
        flame.write_svg(stacks, files, svg, f"{name} under {profiler}: {load['rps']:.0f} req/s")
        analysis = flame.analyse(stacks, files)
        if not name.startswith("baseline"):
            analysis["by_concern"] = flame.by_concern(stacks, files, GATEWAY_CONCERNS, REST_CONCERN)
        top.write_text(json.dumps(analysis, indent=2), encoding="utf-8")
        unit = "busy samples" if profiler == "py-spy" else "µs of samples"
        print(
            f"  profile {name} ({profiler}): {analysis['samples']} {unit} at {load['rps']:.0f} req/s",
            flush=True,
        )
        return {
            "profiler": profiler,
            "load": load,
            "files": [*outputs, collapsed.name, svg.name, top.name],
            **analysis,
        }

    # -- helpers --------------------------------------------------------------------------------

    def redis_commands(self) -> dict[str, int]:
        """Calls per Redis command so far (`INFO commandstats`)."""
        if self.redis_client is None:
            return {}
        try:
            stats = self.redis_client.info("commandstats")
        except redis.RedisError:
            return {}
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def post_raw(self, server: Server, body: dict[str, Any]) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", **self.auth_headers()}
        return http_call("POST", server.url + f"/auth/{WECHAT}", json.dumps(body).encode(), headers)

    def post(self, server: Server, body: dict[str, Any]) -> dict[str, Any]:
        status, raw = self.post_raw(server, body)
        if status != 200:
            raise RuntimeError(f"{server.name} answered {status}: {raw[:300]!r}")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def delete_keys(self, client: redis.Redis) -> int:
        """Every key this run wrote (they all start with its prefix); nothing else is touched."""
        deleted = 0
        with contextlib.suppress(redis.RedisError):
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(client.unlink(*batch))
        return deleted


def pyinstrument_stacks(session: Any) -> tuple[Any, dict[str, str]]:
    """Collapsed stacks from a pyinstrument session (self time in µs; idle awaits left out)."""
    from collections import Counter

    stacks: Counter[tuple[str, ...]] = Counter()
    files: dict[str, str] = {}

    def walk(frame: Any, path: tuple[str, ...]) -> None:
        label = (
            f"{frame.function} ({flame.short_file(frame.file_path or '')}:{frame.line_no or ''})"
        )
        if frame.is_synthetic:
            if frame.identifier.startswith("[await]") or "await" in (frame.function or ""):
                return
            label = frame.function or "[self]"
        files[label] = frame.file_path or ""
        here = (*path, label)
        self_time = frame.time - sum(child.time for child in frame.children)
        if self_time > 0:
            stacks[here] += round(self_time * 1e6)
        for child in frame.children:
            walk(child, here)

    root = session.root_frame()
    if root is not None:
        walk(root, ())
    return stacks, files


def identity_bodies(tag: str, count: int) -> list[dict[str, Any]]:
    return [{**HIT_INPUT, "wx_open_id": f"o-bench-{tag}-{i}"} for i in range(count)]


@contextlib.contextmanager
def keep_alive(url: str) -> Any:
    """A `send(body, headers) -> (status, body)` POSTing to `url` over one keep-alive connection."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def send(body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    try:
        yield send
    finally:
        connection.close()


METRIC_LINE = re.compile(r"^gateway_cache_lookups_total\{([^}]*)\} ([0-9.e+]+)$", re.M)


def cache_lookups(server: Server) -> dict[str, float]:
    """The gateway's `gateway_cache_lookups_total` for the WeChat provider, by result."""
    status, body = http_call("GET", server.url + "/metrics")
    if status != 200:
        raise RuntimeError(f"{server.name} /metrics answered {status}")
    counts: dict[str, float] = {}
    for labels, value in METRIC_LINE.findall(body.decode()):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("provider") == WECHAT:
            counts[fields.get("result", "?")] = counts.get(fields.get("result", "?"), 0) + float(
                value
            )
    return counts


def vendor_calls(sandbox: Server) -> int:
    status, body = http_call("GET", sandbox.url + "/_sandbox/stats")
    if status != 200:
        raise RuntimeError(f"sandbox stats answered {status}")
    calls: dict[str, int] = json.loads(body)["calls"]
    return int(calls.get(TENCENT_API, 0))


def brief(result: dict[str, Any]) -> str:
    text = (
        f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    )
    if "server_cpu_us_per_req" in result:
        text += f", {result['server_cpu_us_per_req']:.0f} µs CPU/req"
    if result.get("non2xx") or result.get("socket_errors"):
        text += (
            f", {result.get('non2xx', 0)} non-2xx, {result.get('socket_errors', 0)} socket errors"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short runs to check the harness")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per hit round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--soak-minutes", type=float, default=1.0, help="0 skips the soak; the issue asks for 10"
    )
    parser.add_argument("--soak-identities", type=int, default=50_000)
    parser.add_argument("--miss-latency", type=float, default=0.05, help="vendor latency for (c)")
    parser.add_argument("--miss-connections", type=int, default=16)
    parser.add_argument("--miss-duration", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1000, help="cold requests in (d)")
    parser.add_argument("--burst-latency", type=float, default=1.0, help="vendor latency for (d)")
    parser.add_argument("--profile", type=float, default=10.0, help="seconds per profile; 0 skips")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--redis-url", default=os.environ.get("GATEWAY_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    )
    parser.add_argument("--results-dir", default="bench-results")
    parser.add_argument(
        "--page", default=str(PAGE), help="the page whose bench:begin/end section is replaced"
    )
    parser.add_argument("--no-page", action="store_true", help="write bench-results/ only")
    parser.add_argument("--label", help="this run's name in the journal (e.g. before, after)")
    parser.add_argument(
        "--journal", action="store_true", help="append the headline ratios to the page's journal"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs and configs")
    args = parser.parse_args(argv)
    if args.journal and not args.label:
        parser.error("--journal needs --label")
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 2.0, 1.0
        args.soak_minutes, args.soak_identities = 0.1, 5_000
        args.miss_duration, args.burst, args.profile = 3.0, 200, 2.0

    bench = Bench(args)
    print(
        f"gateway benchmark {bench.run_id}: load generator {bench.tool}, "
        f"results in {bench.results_dir}",
        flush=True,
    )
    out = bench.run()
    results = bench.results_dir / "results.json"
    results.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    section = report.page_section(out)
    (bench.results_dir / "performance.md").write_text(section, encoding="utf-8")
    written = [str(results), str(bench.results_dir / "performance.md")]
    if not args.no_page:
        page = Path(args.page)
        text = report.replace_section(page.read_text(encoding="utf-8"), section)
        if args.journal:
            text = report.append_journal(text, report.journal_row(out))
        page.write_text(text, encoding="utf-8")
        written.append(str(page))
    report.print_table(out)
    print("\nwrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
