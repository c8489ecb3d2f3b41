"""`make bench`: the gateway's benchmark, side by side with a bare baseline, on loopback, in one run.

    python -m tests.benchmarks.bench [--quick] [--rounds 3] [--duration 10] [--connections 64] ...

Every server is its own process (`python -m ...`), every load generator too (`wrk` when installed,
else `tests/benchmarks/loadgen.py`); this script only starts them, reads /proc and writes results.

(a) baseline: `baseline_app.py`, aiohttp + uvloop + orjson + hiredis, one redis-py GET per request.
(b) the gateway's hit path: `python -m gateway serve` with caller auth, metrics and the canonical JSON
    log line at info level (written to a file), one identity warmed into the cache first.
    (a) and (b) run in interleaved rounds (a b, b a, a b, ...) so machine noise hits both.
(c) misses: a new identity per request against the sandbox (`python -m gateway sandbox --latency L`);
    the same pre-signed vendor request sent straight to the sandbox (v) gives the vendor's own latency.
(d) 1,000 concurrent identical cold requests over two gateway processes sharing Redis, slow vendor;
    the sandbox's GET /_sandbox/stats counts the vendor calls.
soak: the hit path under load for 60 s, RSS sampled every second.
profiles: `py-spy record --pid` on the running hit-path gateway, baseline and miss-path gateway under
    load after the measured runs (else pyinstrument on a fresh gateway); flame output, collapsed
    stacks and top costs (by function, package and concern) kept in bench-results/.

Reported per scenario: requests/s, p50/p99, server CPU µs per request (utime+stime from /proc/<pid>/stat
before and after, over the requests answered), peak RSS (VmHWM) and vendor calls. Output:
bench-results/results.json, bench-results/performance.md (the README section) and a table on stdout.
Redis keys are written under a fresh `bench-<run id>` prefix and deleted at the end; nothing is flushed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import yaml

from tests.benchmarks import flame
from tests.benchmarks.wrk import Load, Running, wrk_available, wrk_version

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
WECHAT = "tencent-wechat"
TENCENT_API = "AppGetTokenByWeiXin"
TENCENT_PATH = "/api/exploreropen/appapi"
TOP_KEY, TENCENT_KEY = "bench-top-app", "bench-tencent-app"
HIT_INPUT = {
    "wx_open_id": "o-bench-hit-user",
    "nick_name": "bench",
    "avatar": "https://example.com/a.png",
}
# Each profiled sample is charged to one concern: the first frame, from the leaf up, a rule matches.
EVENT_LOOP_FILES = ("asyncio/runners.py", "asyncio/events.py", "asyncio/base_events.py")
GATEWAY_CONCERNS: list[flame.Rule] = [
    ("event loop: uvloop C code, epoll, asyncio", lambda label, f: f.endswith(EVENT_LOOP_FILES)),
    (
        "log line: structlog, stdlib json, stdout write",
        lambda label, f: "/structlog/" in f or f.endswith("gateway/logging.py"),
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
        lambda label, f: f.endswith("gateway/service.py") or "/gateway/cache/" in f,
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
SATURATED_CPU_PCT = 90.0
RSS_LIMIT_MB = 80.0
RSS_GROWTH_TOLERANCE_MB = 1.0  # "no growth": under 1 MB between the first and last 20 s
MISS_OVERHEAD_LIMIT_MS = 1.0
# The miss path's references beside (v): what the least a gateway could be adds on this machine.
FLOORS = {
    "p": "bare forwarding proxy to the sandbox (baseline)",
    "r": "forwarding proxy + one Redis GET (baseline)",
}
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


# --- processes and /proc -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, name: str) -> int:
    """A `kB` line of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def machine_cpu() -> tuple[int, int]:
    """Busy and steal ticks of the whole machine, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields[:8]) - idle - steal, steal


def reaped_children_cpu() -> float:
    """CPU seconds of this harness's finished children (the load generator, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def http_call(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wake_cost(url: str, *, idle_s: float, requests: int = 100) -> dict[str, float]:
    """p50 of a trivial GET on one keep-alive connection, back to back and after `idle_s` of quiet.

    On a machine whose idle CPUs sleep deeply (a VM halting its vCPUs), a process that waited pays to
    wake up; a miss waits on the vendor, so this is in every miss's latency and in no hit's."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    result: dict[str, float] = {}
    try:
        for name, pause in (("back_to_back_p50_ms", 0.0), ("after_idle_p50_ms", idle_s)):
            timings = []
            for _ in range(requests):
                if pause:
                    time.sleep(pause)
                started = time.perf_counter()
                connection.request("GET", parts.path or "/")
                connection.getresponse().read()
                timings.append((time.perf_counter() - started) * 1000)
            result[name] = statistics.median(timings)
    finally:
        connection.close()
    return result


class Server:
    """A server process, its output in a log file."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,  # Ctrl+C reaches the harness only; it stops these in order
            preexec_fn=_raise_nofile_limit,
            # GATEWAY_* variables would override the generated YAML (environment wins over the file).
            env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        )
        self.pid = self.process.pid

    def wait_ready(self, path: str, check: Callable[[bytes], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body = http_call("GET", self.url + path, timeout=2)
                if status == 200 and check(body):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s:\n{self.log_tail()}")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        return status_kb(self.pid, "VmRSS") * 1024 / MB

    def hwm_mb(self) -> float:
        return status_kb(self.pid, "VmHWM") * 1024 / MB

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError), self.log_path.open("rb") as handle:
            handle.seek(max(0, self.log_path.stat().st_size - 64_000))
            return b"\n".join(handle.read().splitlines()[-lines:]).decode(errors="replace")
        return ""

    def stop(self, timeout_s: float = 30) -> int | None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


def _raise_nofile_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log_summary(path: Path) -> dict[str, Any]:
    """Lines, bytes and levels of a gateway log, and one canonical request line (proof it rendered)."""
    lines = warnings = errors = 0
    sample: Any = None
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            lines += chunk.count(b"\n")
            warnings += chunk.count(b'"level": "warning"')
            errors += chunk.count(b'"level": "error"')
            if sample is None or sample.get("cache") != "hit":
                for raw in chunk.splitlines()[1:-1]:  # whole lines only
                    if b'"event": "request"' in raw and b'"path": "/auth/' in raw:
                        with contextlib.suppress(ValueError):
                            sample = json.loads(raw)
                        if b'"cache": "hit"' in raw:
                            break
    return {
        "lines": lines,
        "bytes": path.stat().st_size,
        "warnings": warnings,
        "errors": errors,
        "request_line": sample,
    }


# --- the benchmark -----------------------------------------------------------------------------


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

    def gateway_config(self, name: str, sandbox: Server, key_prefix: str) -> Path:
        """The YAML a deployment would have: four providers on the sandbox, one client key."""
        top = {
            "endpoint": sandbox.url + "/router/rest",
            "app_key": TOP_KEY,
            "app_secret": self.top_secret,
        }
        config = {
            "redis_url": self.redis_url,
            "key_prefix": key_prefix,
            "log_level": "info",
            "drain_delay_s": 0,
            "shutdown_timeout_s": 5,
            "providers": {
                "zebra-miniapp": {"kind": "top:yunos.aiot.thirdminiapp.auth.get", **top},
                "aligenie-login": {"kind": "top:taobao.ailab.aicloud.top.auth.get", **top},
                "tmallgenie-bind": {
                    "kind": "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
                    **top,
                },
                WECHAT: {
                    "kind": "tencent-iot:AppGetTokenByWeiXin",
                    "endpoint": sandbox.url + TENCENT_PATH,
                    "app_key": TENCENT_KEY,
                    "app_secret": self.tencent_secret,
                },
            },
            "clients": {
                "bench-app": {
                    "api_key_sha256": hashlib.sha256(self.api_key.encode()).hexdigest(),
                    "providers": ["*"],
                }
            },
        }
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start_gateway(self, name: str, config: Path, *, python: list[str] | None = None) -> Server:
        """`python -m gateway serve`; `python` replaces the interpreter (e.g. python -m pyinstrument)."""
        port = free_port()
        argv = [*(python or [sys.executable]), "-m", "gateway", "serve"]
        argv += ["--config", str(config), "--port", str(port)]
        server = self.start(name, argv, port)
        server.wait_ready("/readyz", lambda body: json.loads(body).get("invalidation") == "live")
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

    def hit_load(self, server: Server, duration_s: float, connections: int | None = None) -> Load:
        self.loads += 1
        return Load(
            url=server.url + f"/auth/{WECHAT}",
            body=HIT_INPUT,
            headers=self.auth_headers(),
            connections=connections or self.args.connections,
            duration_s=duration_s,
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
            "soak_s": a.soak,
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
        out["summary"] = summarise(out)
        if not a.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            out["workdir"] = str(self.workdir)
        return out

    def hit_rounds(self, sandbox: Server, baseline_key: str) -> dict[str, Any]:
        """(a) and (b) in alternating rounds, then the soak on (b), then both profiled."""
        a = self.args
        port = free_port()
        baseline = self.start(
            "baseline",
            [
                sys.executable,
                "-m",
                "tests.benchmarks.baseline_app",
                "--port",
                str(port),
                "--redis-url",
                self.redis_url,
                "--key",
                baseline_key,
            ],
            port,
        )
        baseline.wait_ready("/healthz", lambda body: b"ok" in body)
        config = self.gateway_config("gateway-hit", sandbox, f"{self.prefix}-hit")
        gateway = self.start_gateway("gateway-hit", config)
        first = self.post(gateway, HIT_INPUT)
        second = self.post(gateway, HIT_INPUT)
        if not (first.get("cached") is False and second.get("cached") is True):
            raise RuntimeError(f"the hit path is not warm: {first} then {second}")
        status, body = self.post_raw(baseline, HIT_INPUT)
        if status != 200:
            raise RuntimeError(f"baseline answered {status}: {body[:200]!r}")
        for server in (baseline, gateway):  # warm-up: connections, allocator, caches; not measured
            self.run_load(self.hit_load(server, a.warmup)).result()

        rounds: list[dict[str, Any]] = []
        for i in range(a.rounds):
            order = (("a", baseline), ("b", gateway))
            for scenario, server in order if i % 2 == 0 else reversed(order):
                result = self.measure(self.hit_load(server, a.duration), server, sandbox=sandbox)
                result.update(scenario=scenario, round=i + 1)
                rounds.append(result)
                print(f"  round {i + 1} ({scenario}): {brief(result)}", flush=True)
        peaks = {"a": baseline.hwm_mb(), "b": gateway.hwm_mb()}
        soak = self.soak(gateway, sandbox) if a.soak > 0 else None
        if a.profile > 0:
            self.profiles["hit-path"] = self.profile(
                "hit-path", gateway, lambda d: self.hit_load(gateway, d), config=config
            )
            self.profiles["baseline"] = self.profile(
                "baseline", baseline, lambda d: self.hit_load(baseline, d)
            )
        self.stop(baseline)
        self.stop(gateway)
        return {"rounds": rounds, "peak_rss_mb": peaks, "soak": soak}

    def soak(self, gateway: Server, sandbox: Server) -> dict[str, Any]:
        a = self.args
        calls_before = vendor_calls(sandbox)
        cpu_before = gateway.cpu()
        running = self.run_load(self.hit_load(gateway, a.soak))
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        for second in range(1, int(a.soak) + 1):
            time.sleep(max(0.0, started + second - time.monotonic()))
            samples.append((round(time.monotonic() - started, 2), gateway.rss_mb()))
        result = running.result()
        result["server_cpu_us_per_req"] = (
            (gateway.cpu() - cpu_before) * 1e6 / max(1, result["requests"])
        )
        result["vendor_calls"] = vendor_calls(sandbox) - calls_before
        window = min(20.0, a.soak / 3)
        first = [rss for t, rss in samples if t <= window]
        last = [rss for t, rss in samples if t > a.soak - window]
        result.update(
            rss_samples_mb=[[t, round(rss, 2)] for t, rss in samples],
            window_s=window,
            rss_end_mb=samples[-1][1],
            rss_first_window_mean_mb=statistics.fmean(first),
            rss_last_window_mean_mb=statistics.fmean(last),
            rss_growth_mb=statistics.fmean(last) - statistics.fmean(first),
            rss_growth_max_mb=max(last) - max(first),
            hwm_mb=gateway.hwm_mb(),
        )
        print(
            f"  soak {a.soak:g} s: {brief(result)}, RSS end {result['rss_end_mb']:.1f} MB, "
            f"growth {result['rss_growth_mb']:+.2f} MB",
            flush=True,
        )
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
        self.run_load(self.miss_load(gateway, a.miss_connections, a.warmup, "warm")).result()
        for server in (sandbox, proxy, proxy_redis):  # their pools too: connections, first requests
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
        """`baseline_app.py --forward` to the sandbox's Tencent endpoint ((p), or (r) with Redis)."""
        port = free_port()
        proxy = self.start(
            name,
            [
                *(sys.executable, "-m", "tests.benchmarks.baseline_app", "--port", str(port)),
                *("--forward", sandbox.url + TENCENT_PATH, *extra),
            ],
            port,
        )
        proxy.wait_ready("/healthz", lambda body: b"ok" in body)
        return proxy

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
        if name != "baseline":
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


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in (
        "aiohttp",
        "redis",
        "hiredis",
        "uvloop",
        "orjson",
        "structlog",
        "prometheus-client",
        "pydantic",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "packages": versions,
    }


# --- summary, targets, table, README section ---------------------------------------------------


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    """The table rows (medians over rounds) and each target, met or not."""
    hit = out.get("hit_path") or {}
    rounds = hit.get("rounds", [])
    a_rows = sorted((r for r in rounds if r["scenario"] == "a"), key=lambda r: r["round"])
    b_rows = sorted((r for r in rounds if r["scenario"] == "b"), key=lambda r: r["round"])
    peaks = hit.get("peak_rss_mb", {})
    misses = out.get("misses") or {}
    burst = out.get("burst")
    soak = hit.get("soak")
    rows: list[dict[str, Any]] = []

    def row(
        name: str, what: str, runs: list[dict[str, Any]], peak: float | None, **extra: Any
    ) -> None:
        rows.append(
            {
                "scenario": name,
                "what": what,
                "runs": len(runs),
                "connections": runs[0]["connections"],
                "rps": median_of(runs, "rps"),
                "p50_ms": median_of(runs, "p50_ms"),
                "p99_ms": median_of(runs, "p99_ms"),
                "server_cpu_us_per_req": median_of(runs, "server_cpu_us_per_req"),
                "redis_cpu_us_per_req": median_of(runs, "redis_cpu_us_per_req"),
                "redis_commands_per_req": median_of(runs, "redis_commands_total_per_req"),
                "other_cpu_pct": median_of(runs, "other_cpu_pct"),
                "peak_rss_mb": peak,
                "vendor_calls": sum(r.get("vendor_calls", 0) for r in runs),
                "errors": sum(r.get("non2xx", 0) + r.get("socket_errors", 0) for r in runs),
                **extra,
            }
        )

    if a_rows:
        row("a", "baseline: aiohttp + one redis-py GET", a_rows, peaks.get("a"))
    if b_rows:
        row("b", "gateway hit: auth, metrics, JSON log line", b_rows, peaks.get("b"))
    for run in misses.get("runs", []):
        conns = run["connections"]
        if run["scenario"] == "v":
            row(f"v{conns}", "vendor sandbox directly (reference)", [run], None)
        elif run["scenario"] in FLOORS:
            row(
                f"{run['scenario']}{conns}",
                FLOORS[run["scenario"]],
                [run],
                run.get("server_hwm_mb"),
                overhead_vs_direct_ms=run.get("overhead_vs_direct_ms"),
            )
        else:
            row(
                f"c{conns}",
                "gateway miss, new identity each",
                [run],
                misses.get("peak_rss_mb"),
                overhead_ms=run["overhead_ms"],
                overhead_vs_direct_ms=run["overhead_vs_direct_ms"],
                overhead_vs_proxy_ms=run.get("overhead_vs_proxy_ms"),
                sandbox_cpu_us_per_req=run.get("sandbox_cpu_us_per_req"),
            )
    if burst:
        row(
            "d",
            f"{burst['requests']} identical cold requests, 2 processes",
            [burst],
            max(burst["peak_rss_mb"].values()),
            statuses=burst["statuses"],
            distinct_bodies=burst["distinct_bodies"],
        )
    if soak:
        row(
            "soak",
            f"gateway hit for {soak['duration_s']:.0f} s",
            [soak],
            soak["hwm_mb"],
            rss_end_mb=soak["rss_end_mb"],
            rss_growth_mb=soak["rss_growth_mb"],
        )

    targets: list[dict[str, Any]] = []

    def target(text: str, value: str, met: bool | None) -> None:
        targets.append({"target": text, "value": value, "met": None if met is None else bool(met)})

    if a_rows and b_rows:
        a_row, b_row = rows[0], rows[1]
        pairs = list(zip(a_rows, b_rows, strict=True))
        tput = b_row["rps"] / a_row["rps"]
        cpu = b_row["server_cpu_us_per_req"] / a_row["server_cpu_us_per_req"]
        # Throughput compares the servers only while each one is saturated (about a core busy);
        # otherwise the load generator set the pace and the ratio says nothing about the servers.
        busy = (median_of(a_rows, "server_cpu_pct"), median_of(b_rows, "server_cpu_pct"))
        saturated = min(busy) >= SATURATED_CPU_PCT
        target(
            "hit-path throughput (b)/(a) ≥ 1.0",
            f"{tput:.2f} ({b_row['rps']:,.0f} vs {a_row['rps']:,.0f} req/s; per round "
            + ", ".join(f"{b['rps'] / a['rps']:.2f}" for a, b in pairs)
            + ")"
            + (
                ""
                if saturated
                else f" — inconclusive: the servers were only {busy[0]:.0f} % and {busy[1]:.0f} % "
                "busy, so the load generator set the pace"
            ),
            (tput >= 1.0) if saturated else None,
        )
        target(
            "hit-path CPU per request (b) ≤ (a)",
            f"{cpu:.2f}× ({b_row['server_cpu_us_per_req']:.0f} vs "
            f"{a_row['server_cpu_us_per_req']:.0f} µs; per round "
            + ", ".join(
                f"{b['server_cpu_us_per_req'] / a['server_cpu_us_per_req']:.2f}" for a, b in pairs
            )
            + ")",
            cpu <= 1.0,
        )
        target(
            "p99 of (b) ≤ p99 of (a)",
            f"{b_row['p99_ms']:.2f} vs {a_row['p99_ms']:.2f} ms (per round "
            + ", ".join(f"{b['p99_ms']:.1f} vs {a['p99_ms']:.1f}" for a, b in pairs)
            + ")",
            b_row["p99_ms"] <= a_row["p99_ms"],
        )
    floors = {(r["scenario"][0], r["connections"]): r for r in rows if r["scenario"][0] in FLOORS}
    for r in rows:
        if r["scenario"].startswith("c"):
            # The vendor's latency is what it takes to answer a client: (v), its own work and timer
            # slack included; p50 minus the configured sleep alone is given too.
            proxy = floors.get(("p", r["connections"]))
            with_redis = floors.get(("r", r["connections"]))
            floor = (
                ""
                if proxy is None
                else f"; a bare forwarding proxy (p) adds {proxy['overhead_vs_direct_ms']:.2f} ms "
                f"over (v) on its own, so the gateway's own share is "
                f"{r['overhead_vs_proxy_ms']:.2f} ms"
            )
            if with_redis is not None:
                floor += (
                    f"; the proxy with one Redis GET before each forward (r), the least a gateway "
                    f"that must consult Redis before calling the vendor does, adds "
                    f"{with_redis['overhead_vs_direct_ms']:.2f} ms"
                )
            target(
                f"miss overhead (c) ≤ 1 ms median over the vendor's latency (v), "
                f"{r['connections']} connection(s)",
                f"p50 {r['p50_ms']:.2f} ms − (v) p50 = {r['overhead_vs_direct_ms']:.2f} ms "
                f"(− the configured {misses['vendor_latency_ms']:.0f} ms: {r['overhead_ms']:.2f} ms)"
                + floor,
                r["overhead_vs_direct_ms"] <= MISS_OVERHEAD_LIMIT_MS,
            )
    if burst:
        ok = burst["statuses"].get("200", 0)
        variants = "; ".join(
            f"{v['count']}× {json.dumps(v['fields'], ensure_ascii=False)}"
            for v in burst.get("body_variants", [])
        )
        target(
            f"(d) exactly one vendor call for {burst['connections']} cold requests",
            f"{burst['vendor_calls']} vendor call(s); {ok}/{burst['connections']} answered 200 "
            f"with {burst['distinct_bodies']} distinct body(ies)"
            + (f", differing only in {variants}" if burst["distinct_bodies"] > 1 else ""),
            burst["vendor_calls"] == 1 and ok == burst["connections"],
        )
    if soak:
        target(
            f"RSS ≤ {RSS_LIMIT_MB:.0f} MB per process after a {soak['duration_s']:.0f} s run",
            f"{soak['rss_end_mb']:.1f} MB at the end of the soak, peak (VmHWM) {soak['hwm_mb']:.1f} MB "
            "(1 MB = 10⁶ bytes)",
            soak["rss_end_mb"] <= RSS_LIMIT_MB and soak["hwm_mb"] <= RSS_LIMIT_MB,
        )
        others = {"(c) miss gateway": misses.get("peak_rss_mb")}
        others |= {f"(d) {k}": v for k, v in (burst or {}).get("peak_rss_mb", {}).items()}
        known = {k: v for k, v in others.items() if v is not None}
        if known:
            worst = max(known.values())
            target(
                f"(watch, no target) peak RSS of the other gateway processes ≤ {RSS_LIMIT_MB:.0f} MB",
                ", ".join(f"{k} {v:.1f} MB" for k, v in known.items()),
                worst <= RSS_LIMIT_MB,
            )
        target(
            f"no RSS growth between the first and last {soak['window_s']:.0f} s",
            f"{soak['rss_growth_mb']:+.2f} MB (window means {soak['rss_first_window_mean_mb']:.2f}"
            f" → {soak['rss_last_window_mean_mb']:.2f} MB; counted as growth above "
            f"{RSS_GROWTH_TOLERANCE_MB:g} MB)",
            soak["rss_growth_mb"] <= RSS_GROWTH_TOLERANCE_MB,
        )
    return {"table": rows, "targets": targets}


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| | scenario | conns | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MB "
        "| vendor calls | Redis cmds/req | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['what']} | {r['connections']} | {fmt(r['rps'], 0)} "
            f"| {fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['server_cpu_us_per_req'], 0)} "
            f"| {fmt(r['peak_rss_mb'])} | {r['vendor_calls']} | {fmt(r['redis_commands_per_req'], 2)} "
            f"| {r['errors']} |"
        )
    return "\n".join(lines) + "\n"


def rounds_markdown(out: dict[str, Any]) -> str:
    lines = [
        "| round | | req/s | p50 ms | p99 ms | server CPU µs/req | server CPU % | Redis CPU µs/req "
        "| load generator CPU % | other processes CPU % |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in (out.get("hit_path") or {}).get("rounds", []):
        lines.append(
            f"| {r['round']} | {r['scenario']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['server_cpu_us_per_req']:.0f} | {r['server_cpu_pct']:.0f} "
            f"| {fmt(r.get('redis_cpu_us_per_req'), 0)} | {r['loadgen_cpu_pct']:.0f} "
            f"| {r['other_cpu_pct']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def print_table(out: dict[str, Any]) -> None:
    summary = out["summary"]
    cols = (
        "",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU µs/req",
        "peak RSS MB",
        "vendor",
        "errors",
    )
    print()
    print("  ".join(f"{c:>11}" for c in cols))
    for r in summary["table"]:
        cells = (
            r["scenario"],
            r["connections"],
            fmt(r["rps"], 0),
            fmt(r["p50_ms"], 2),
            fmt(r["p99_ms"], 2),
            fmt(r["server_cpu_us_per_req"], 0),
            fmt(r["peak_rss_mb"]),
            r["vendor_calls"],
            r["errors"],
        )
        print("  ".join(f"{c!s:>11}" for c in cells))
    print()
    for t in summary["targets"]:
        verdict = {True: "met", False: "NOT MET", None: "INCONCLUSIVE"}[t["met"]]
        if t["target"].startswith("(watch"):
            verdict = "ok" if t["met"] else "over"
        print(f"  [{verdict}] {t['target']}: {t['value']}")
    profile = (out.get("profiles") or {}).get("hit-path") or {}
    if profile.get("self"):
        print(f"\n  hit path ({profile['profiler']}): self time, share of busy samples")
        for item in profile["self"][:12]:
            print(f"    {item['share_pct']:5.1f}%  {item['function']}")
        print("  self time by package")
        for item in profile["self_by_package"][:10]:
            print(f"    {item['share_pct']:5.1f}%  {item['package']}")
        print("  by concern (each sample charged to the first matching frame from the leaf up)")
        for item in profile.get("by_concern", []):
            print(f"    {item['share_pct']:5.1f}%  {item['concern']}")


def profile_markdown(
    name: str, profile: dict[str, Any], cpu_us_per_req: float | None, *, full: bool
) -> list[str]:
    """A profile's tables; shares times the scenario's measured CPU per request give µs."""
    if not profile.get("self"):
        return [
            f"No profile of the {name}: {'; '.join(profile.get('errors', [])) or 'skipped'}.",
            "",
        ]
    files = ", ".join(f"`bench-results/{f}`" for f in profile["files"])
    lines = [
        f"**{name}** — {profile['profiler']} attached to the running process under the same load "
        f"({profile['load']['rps']:,.0f} req/s while sampled; {profile['samples']} busy samples). "
        f"Flame output: {files}.",
        "",
    ]
    cpu = cpu_us_per_req or float("nan")
    if profile.get("by_concern"):
        lines += [
            f"| by concern (leaf-up) | share | ≈ µs/req of {fmt(cpu, 0)} |",
            "|---|--:|--:|",
            *[
                f"| {i['concern']} | {i['share_pct']:.1f}% | {fmt(i['share_pct'] * cpu / 100, 0)} |"
                for i in profile["by_concern"]
            ],
            "",
        ]
    lines += [
        f"| self time by package | share | ≈ µs/req of {fmt(cpu, 0)} |",
        "|---|--:|--:|",
        *[
            f"| {i['package']} | {i['share_pct']:.1f}% | {fmt(i['share_pct'] * cpu / 100, 0)} |"
            for i in profile["self_by_package"][:10]
        ],
        "",
    ]
    if full:
        lines += [
            "| self time | function |",
            "|--:|---|",
            *[f"| {i['share_pct']:.1f}% | `{i['function']}` |" for i in profile["self"][:15]],
            "",
        ]
    lines += [
        "| inclusive | function |",
        "|--:|---|",
        *[
            f"| {i['share_pct']:.1f}% | `{i['function']}` |"
            for i in profile["inclusive"][: 25 if full else 12]
        ],
        "",
    ]
    return lines


def readme_section(out: dict[str, Any]) -> str:
    m, method, summary = out["machine"], out["method"], out["summary"]
    if method["load_generator"] == "wrk":
        tool = (
            f"`{method['load_generator_version']}` with {method['wrk_threads']} threads, `--latency` "
            "and a generated Lua script for the POST body and headers"
        )
    else:
        tool = (
            "the bundled asyncio generator `tests/benchmarks/loadgen.py` (`wrk` was not installed)"
        )
    rounds = (out.get("hit_path") or {}).get("rounds", [])
    noise = median_of(rounds, "other_cpu_pct")
    steal = median_of(rounds, "steal_pct")
    vendor_ms = method["miss_vendor_latency_s"] * 1000
    lines = [
        "## Performance",
        "",
        "`make bench` runs `python -m tests.benchmarks.bench`: about four minutes on loopback, in one run.",
        "It writes `bench-results/results.json` (every number below and more), this section as",
        "`bench-results/performance.md`, and the profiles. Targets are ratios measured side by side in",
        "the same run; absolute numbers only describe this machine.",
        "",
        f"**Machine**: {m['nproc']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, "
        f"{m['implementation']} {m['python']}, Redis {out['redis']['version']} on loopback. Nothing is "
        "pinned: servers, load generator and Redis share the cores, so a one-process server gets at "
        f"most one core. Load average {out['load_average_at_start']} at the start; during the (a)/(b) "
        f"rounds other processes used a median {fmt(noise, 0)} % of a core and steal was "
        f"{fmt(steal, 1)} %.",
        "",
        "**Method**: each server and each load generator is its own process. Load: "
        f"{tool}; {method['connections']} keep-alive connections for (a), (b) and the soak. Server "
        "CPU per request is utime+stime of the server process from `/proc/<pid>/stat` before and "
        "after a run, over the requests answered; peak RSS is its `VmHWM`.",
        "",
        "- **(a)** baseline: `tests/benchmarks/baseline_app.py` — aiohttp, uvloop, orjson, hiredis; the "
        "same `POST /auth/tencent-wechat` answered with one redis-py `GET` and a JSON body; no auth, "
        "metrics or logging.",
        "- **(b)** hit path: `python -m gateway serve --config …` with caller auth (Bearer key), "
        "Prometheus metrics and the canonical JSON log line at info level written to a file; Redis "
        "`redis://127.0.0.1:6379/0` under a fresh key prefix; one identity, warmed, so every "
        "request is a hit.",
        f"- (a) and (b) alternate over {method['rounds']} rounds of {method['round_s']:g} s "
        f"(a b, b a, a b …) after {method['warmup_s']:g} s of warm-up each; the table gives medians "
        "over rounds.",
        f"- **(c)** misses: a new `wx_open_id` per request, vendor = `python -m gateway sandbox "
        f"--latency {method['miss_vendor_latency_s']:g}`, at 1 and {method['miss_connections'][1]} "
        f"connections. **(v)** sends pre-signed vendor requests (the gateway's own signing code, "
        "fresh nonces) straight to the sandbox: the vendor's latency as a client sees it, timer "
        "slack and the sandbox's own work included. **(p)** sends the same through "
        "`baseline_app.py --forward`, a bare aiohttp forwarding proxy (pooled client session, no "
        "signing, Redis or auth): what one extra Python HTTP hop costs here. **(r)** is that proxy "
        "with one redis-py `GET` before each forward: the least a gateway adds when, like this one, "
        "it must ask Redis (cache, cross-replica single flight) before it may call the vendor. "
        "Overhead = p50 of (c) "
        f"− p50 of (v) (also given: − the configured {vendor_ms:g} ms, and − p50 of (p)). "
        "(v), (p), (r) and (c) run one after the other at each connection count.",
        f"- **(d)** {method['burst_requests']} identical cold requests at once, one connection each "
        "(`loadgen.py burst`), spread over two gateway processes sharing Redis; vendor latency "
        f"{method['burst_vendor_latency_s']:g} s; vendor calls counted by the sandbox "
        "(`GET /_sandbox/stats`).",
        f"- **soak**: (b) under the same load for {method['soak_s']:g} s, RSS read every second.",
        f"- **profiles**: `py-spy record --pid` at {method['profile_rate_hz']} Hz for "
        f"{method['profile_s']:g} s on the running servers under the same load, after the measured "
        "runs (pyinstrument on a fresh gateway when py-spy cannot attach).",
        "",
        "### Results",
        "",
        table_markdown(summary["table"]),
        "(a) and (b) round by round:",
        "",
        rounds_markdown(out),
        "### Targets",
        "",
    ]
    for t in summary["targets"]:
        verdict = {True: "met", False: "**not met**", None: "inconclusive"}[t["met"]]
        if t["target"].startswith("(watch"):
            verdict = "ok" if t["met"] else "**over**"
        lines.append(f"- {verdict} — {t['target']}: {t['value']}.")
    misses = out.get("misses") or {}
    miss_runs = [r for r in misses.get("runs", []) if r["scenario"] == "c"]
    busiest = max(miss_runs, key=lambda r: r["requests"], default=None)
    if busiest and busiest.get("redis_commands_per_req"):
        lines += [
            "",
            f"Redis commands per miss, from `INFO commandstats` around the {busiest['connections']}-"
            "connection run (the machine's Redis may serve others too: an upper bound; the commands "
            "a script runs are counted under their own names as well: the round trips are the "
            "`evalsha` calls, two per cold miss, pinned by `tests/api/test_caching.py`): "
            + ", ".join(
                f"{name} {count:.2f}"
                for name, count in busiest["redis_commands_per_req"].items()
                if count >= 0.05
            )
            + ".",
        ]
    wake = misses.get("wake_cost")
    if wake:
        lines += [
            "",
            f"Waking costs here: `GET /healthz` on the miss gateway takes a median "
            f"{wake['back_to_back_p50_ms']:.2f} ms back to back but "
            f"{wake['after_idle_p50_ms']:.2f} ms after {vendor_ms:g} ms of quiet (the vCPUs halt when "
            "idle). A miss waits that long on the vendor, so at 1 connection it pays the wake-up in "
            "the gateway and in Redis on top of its own work; (p) pays it once too.",
        ]
    if misses.get("idle_cpu_pct") is not None:
        lines += [
            "",
            f"An idle gateway process uses {misses['idle_cpu_pct']:.1f} % of a core (background "
            "tasks); at 1 connection (~18 misses/s) that alone is "
            f"{misses['idle_cpu_pct'] * 10_000 / max(1.0, miss_runs[0]['rps']):.0f} µs of the CPU "
            "per request shown for c1.",
        ]
    lines += [
        "",
        "### Where the time goes",
        "",
        "Shares are of the process's busy samples (py-spy leaves idle ones out); py-spy pauses the "
        "process for each sample, so it serves fewer requests/s while profiled. py-spy sees no C "
        "frames: self time in `Runner.run` is uvloop's C event loop and epoll, the `send()` of a "
        "response is charged to aiohttp's `StreamWriter._writelines`, and aiohttp's C HTTP parser to "
        '`RequestHandler.data_received`. "By concern" charges each sample to the first frame, from '
        "the leaf up, that belongs to a concern (e.g. stdlib `json` under structlog counts as the log "
        "line); µs/req multiply a share by the scenario's measured CPU per request.",
        "",
    ]
    profiles = out.get("profiles") or {}
    cpu = {r["scenario"]: r["server_cpu_us_per_req"] for r in summary["table"]}
    miss_cpu = next((v for k, v in cpu.items() if k.startswith("c") and k != "c1"), None)
    lines += profile_markdown(
        "hit path (b)", profiles.get("hit-path") or {}, cpu.get("b"), full=True
    )
    lines += profile_markdown(
        "baseline (a)", profiles.get("baseline") or {}, cpu.get("a"), full=False
    )
    lines += profile_markdown(
        "miss path (c)", profiles.get("miss-path") or {}, miss_cpu, full=False
    )
    lines += [
        "### Running it",
        "",
        "`make bench` needs a Redis on `redis://127.0.0.1:6379/0` (or `GATEWAY_BENCH_REDIS_URL`; with "
        "none it starts a private `redis-server`), `wrk` (Debian package `wrk`; without it the bundled "
        "asyncio generator runs, which is itself CPU-bound and reports lower rates) and `py-spy` "
        "(`pip install py-spy`; it needs ptrace — without it, pyinstrument profiles a fresh gateway). "
        "`--quick` checks the harness in about a minute; `--help` lists the durations, connection "
        "counts and latencies; `BENCH_PROFILER=pyinstrument` forces the fallback profiler. Keys are "
        "written under a fresh `bench-<run id>` prefix and deleted at the end; nothing is flushed. "
        "Nothing in `tests/benchmarks/` is collected by pytest, and no test asserts on a timing.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short runs to check the harness")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per (a)/(b) round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--soak", type=float, default=60.0, help="0 skips the soak")
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
    parser.add_argument("--readme-out", help="also write the README section to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs and configs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.soak = 2, 2.0, 1.0, 6.0
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
    section = readme_section(out)
    (bench.results_dir / "performance.md").write_text(section, encoding="utf-8")
    if args.readme_out:
        Path(args.readme_out).write_text(section, encoding="utf-8")
    print_table(out)
    print(f"\nwrote {results} and {bench.results_dir / 'performance.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
