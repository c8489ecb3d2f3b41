"""The command line as a user runs it: `sign`, `serve --dev` with its printed curl, and config errors."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from gateway.signing import top as top_signing
from tests.api.conftest import closed_port

SECRET = "cli-test-secret-" + os.urandom(8).hex()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""
providers:
  zebra:
    kind: "top:yunos.aiot.thirdminiapp.auth.get"
    endpoint: https://eco.taobao.com/router/rest
    app_key: "12345678"
    app_secret: "{SECRET}"
    sign_method: md5
  wechat:
    kind: "tencent-iot:AppGetTokenByWeiXin"
    endpoint: https://iot.cloud.tencent.com/api/exploreropen/appapi
    app_key: "ak"
    app_secret: "{SECRET}"
"""
    )
    return path


def test_sign_prints_the_exact_request_without_the_secret(config: Path) -> None:
    """`sign` prints method, URL, headers, body and string to sign; the body's signature verifies; no secret."""
    result = run_cli(
        "sign", "zebra", '{"mini_app_id": "2021001170634349"}', "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert SECRET not in out and SECRET not in result.stderr
    lines = out.splitlines()
    assert lines[0] == "POST https://eco.taobao.com/router/rest"
    assert "Content-Type: application/x-www-form-urlencoded;charset=utf-8" in lines
    body = lines[lines.index("") + 1]
    fields = dict(parse_qsl(body))
    assert fields["params"] == '{"par":{"mini_app_id":"2021001170634349"}}'
    assert fields["sign"] == top_signing.sign(fields, SECRET, "md5")
    string_to_sign = lines[-1]
    assert string_to_sign == top_signing.string_to_sign(fields)


def test_sign_tencent(config: Path) -> None:
    """`sign` for Tencent prints the JSON body with a fresh Nonce and RequestId."""
    result = run_cli(
        "sign",
        "wechat",
        '{"wx_open_id": "o", "nick_name": "n", "avatar": "a"}',
        "--config",
        str(config),
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout.splitlines()[result.stdout.splitlines().index("") + 1])
    assert body["Action"] == "AppGetTokenByWeiXin" and 1 <= body["Nonce"] < 2**31
    assert SECRET not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sign", "ghost", "{}"), "unknown provider 'ghost'"),
        (("sign", "zebra", "{not json"), "invalid input"),
        (("sign", "zebra", '{"device_id": "d"}'), "mini_app_id"),
    ],
)
def test_sign_errors(config: Path, args: tuple[str, ...], message: str) -> None:
    """`sign` with an unknown provider or bad input exits 2 with a clear message."""
    result = run_cli(*args, "--config", str(config))
    assert result.returncode == 2
    assert message in result.stderr


def test_bad_config_fails_start_up_naming_the_key(tmp_path: Path) -> None:
    """`serve` with a bad file exits 2 and names the key, before listening."""
    path = tmp_path / "bad.yaml"
    path.write_text("providers:\n  x:\n    kind: nope\n")
    result = run_cli("serve", "--config", str(path))
    assert result.returncode == 2
    assert "providers.x.kind" in result.stderr


def test_serve_dev_prints_a_curl_that_works() -> None:
    """`serve --dev` starts with no Redis and no config, and the curl it prints logs in, then hits the cache."""
    port = closed_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--dev", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GATEWAY_CONFIG": ""},
    )
    try:
        banner = read_until(process, "-d '", timeout_s=30)
        curl = re.search(r"curl -s .*?-d '[^']*'", banner.replace("\\\n", " "), re.DOTALL)
        assert curl, banner
        command = shlex.split(curl.group(0))
        first = json.loads(
            subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
        )
        assert first["provider"] == "tencent-wechat" and first["token"] and first["cached"] is False
        second = json.loads(
            subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
        )
        assert second["cached"] is True and second["token"] == first["token"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} in output:\n{seen}")


def test_check_config_command(config: Path, tmp_path: Path) -> None:
    """`check-config FILE` exits 0 for a valid file (no secret printed) and 2 naming the bad key."""
    good = run_cli("check-config", str(config))
    assert good.returncode == 0, good.stderr
    assert SECRET not in good.stdout + good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  x:\n    kind: nope\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "providers.x.kind" in result.stdout + result.stderr


def test_sign_dev_signs_for_the_dev_mode_providers() -> None:
    """`sign --dev` needs no config: it signs for the providers `serve --dev` configures."""
    result = run_cli("sign", "--dev", "zebra-miniapp", '{"mini_app_id": "2021001170634349"}')
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    assert fields["method"] == "yunos.aiot.thirdminiapp.auth.get"
    assert fields["app_key"] == "dev-top-app"
    assert re.fullmatch(r"[0-9A-F]{64}", fields["sign"])


def test_sign_without_any_provider_says_how_to_point_it_at_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("providers: {}\n")
    result = run_cli("sign", "zebra", "{}", "--config", str(empty))
    assert (result.returncode, result.stdout) == (2, "")
    assert "no providers are configured: give --config FILE (or set GATEWAY_CONFIG), or --dev" in (
        result.stderr
    )


@pytest.mark.parametrize(
    "command", ["serve", "sandbox", "hash-key", "check-config", "sign", "kinds"]
)
def test_every_command_help_shows_an_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    example = result.stdout.split("example:\n", 1)[1].strip()
    assert example.startswith(f"python -m gateway {command}")
