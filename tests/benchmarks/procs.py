"""Processes and /proc for `make bench`: servers in their own processes, their CPU and memory.

CPU is utime+stime from /proc/<pid>/stat (a multi-process server: the parent and its children);
memory is VmRSS / VmHWM from /proc/<pid>/status. No server runs inside the harness.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000


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

    def pids(self) -> list[int]:
        """The server's process and its children (`serve --workers N` forks N workers)."""
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            return [self.pid, *(int(c) for c in children)]
        return [self.pid]

    def cpu(self) -> float:
        """CPU seconds of the server and its live children (a worker's CPU counts while it lives:
        they all live for the whole run)."""
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def rss_mb(self) -> float:
        """RSS of the largest process of the server (one worker's, with --workers)."""
        return max(_kb_or_zero(pid, "VmRSS") for pid in self.pids()) * 1024 / MB

    def hwm_mb(self) -> float:
        return max(_kb_or_zero(pid, "VmHWM") for pid in self.pids()) * 1024 / MB

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


def _kb_or_zero(pid: int, name: str) -> int:
    try:
        return status_kb(pid, name)
    except (OSError, KeyError):
        return 0


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
        "git": git_commit(),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "packages": versions,
    }


def git_commit() -> str:
    """The checkout's commit, with "dirty" when tracked files differ from it."""

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (dirty)" if git("status", "--porcelain", "--untracked-files=no") else "")
