"""Drive `wrk` (Debian package `wrk`) or, without it, the bundled asyncio load generator.

Both report the same fields: requests, rps, non-2xx answers, socket errors and latency percentiles in
milliseconds. wrk gets a generated Lua script: POST with a JSON body and headers; optionally a new
identity per request (one body field made unique) or bodies taken in turn from a file (pre-signed
vendor requests); its `done` hook prints the summary as one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "BENCH-JSON "
UNIQUE = "@@UNIQUE@@"

DONE_HOOK = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,'
    .. '"timeout":%d,"mean_us":%.1f,"max_us":%.1f,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,'
    .. '"p999_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


def lua_string(text: str) -> str:
    """A Lua string literal (ASCII text: JSON's escapes are valid Lua escapes)."""
    return json.dumps(text, ensure_ascii=True)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_version() -> str | None:
    if not wrk_available():
        return None
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


@dataclass(frozen=True)
class Load:
    """One load run's shape."""

    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    connections: int
    duration_s: float
    unique_field: str | None = None  # a new identity per request
    bodies_file: Path | None = None  # raw bodies, one per line, sent in turn
    tag: str = "x"  # makes unique values unique across runs


def lua_script(load: Load, threads: int) -> str:
    lines = ['wrk.method = "POST"']
    headers = {"Content-Type": "application/json", **load.headers}
    for name, value in headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if load.bodies_file is not None:
        lines += [
            "local bodies = {}",
            f"for line in io.lines({lua_string(str(load.bodies_file))}) do",
            "  bodies[#bodies + 1] = line",
            "end",
            "local threads, i = 0, 0",
            "function setup(thread)",
            "  threads = threads + 1",
            '  thread:set("tid", threads)',
            f'  thread:set("nthreads", {threads})',
            "end",
            "function request()",
            "  local idx = (tid - 1) + i * nthreads",
            "  i = i + 1",
            "  return wrk.format(nil, nil, nil, bodies[(idx % #bodies) + 1])",
            "end",
        ]
    elif load.unique_field is not None:
        template = json.dumps({**load.body, load.unique_field: UNIQUE}, separators=(",", ":"))
        prefix, suffix = template.split(UNIQUE)
        lines += [
            f"local prefix, suffix = {lua_string(prefix)}, {lua_string(suffix)}",
            "local threads, counter = 0, 0",
            "function setup(thread)",
            "  threads = threads + 1",
            '  thread:set("tid", threads)',
            "end",
            "function request()",
            "  counter = counter + 1",
            f"  local id = {lua_string(load.tag)} .. '-' .. tid .. '-' .. counter",
            "  return wrk.format(nil, nil, nil, prefix .. id .. suffix)",
            "end",
        ]
    else:
        body = json.dumps(load.body, separators=(",", ":"))
        lines.append(f"wrk.body = {lua_string(body)}")
    return "\n".join(lines) + "\n" + DONE_HOOK


class Running:
    """A load run in progress (wrk or the asyncio generator, in its own process)."""

    def __init__(self, load: Load, tool: str, script_dir: Path, threads: int) -> None:
        self.load = load
        self.tool = tool
        self.threads = min(threads, load.connections)
        if tool == "wrk":
            script = script_dir / f"load-{load.tag}.lua"
            script.write_text(lua_script(load, self.threads), encoding="utf-8")
            argv = [
                "wrk",
                f"-t{self.threads}",
                f"-c{load.connections}",
                f"-d{max(1, round(load.duration_s))}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(script),
                load.url,
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "tests.benchmarks.loadgen",
                "run",
                "--url",
                load.url,
                "--connections",
                str(load.connections),
                "--duration",
                str(load.duration_s),
                "--body",
                json.dumps(load.body),
            ]
            for name, value in load.headers.items():
                argv += ["--header", f"{name}: {value}"]
            if load.unique_field:
                argv += ["--unique-field", load.unique_field]
            if load.bodies_file is not None:
                argv += ["--bodies-file", str(load.bodies_file)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def result(self) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=self.load.duration_s + 60)
        if self.process.returncode != 0:
            raise RuntimeError(f"{self.tool} failed ({self.process.returncode}): {err or out}")
        if self.tool == "wrk":
            return parse_wrk(out, self.load, self.threads)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


def parse_wrk(out: str, load: Load, threads: int) -> dict[str, Any]:
    line = next((ln for ln in out.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "tool": "wrk",
        "threads": threads,
        "connections": load.connections,
        "duration_s": seconds,
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "non2xx": raw["status"],
        "socket_errors": socket_errors,
        "mean_ms": raw["mean_us"] / 1000,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }
