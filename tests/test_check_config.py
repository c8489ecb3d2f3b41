"""`check-config`: a valid file gets exit 0, a summary without secrets and explained warnings; an invalid
one gets exit 2 and each key at fault named."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.check_config import check_config, main

TENCENT = "tencent-iot:AppGetTokenByWeiXin"
ALIGENIE = "top:taobao.ailab.aicloud.top.auth.get"


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks read GATEWAY_* variables over the file; start each test without any (CI sets some)."""
    for name in [n for n in os.environ if n.upper().startswith("GATEWAY_")]:
        monkeypatch.delenv(name)


class Secrets:
    """Random secret values a config holds, none of which may ever be printed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tencent = f"tencent-{secrets.token_hex(12)}"
        self.aligenie_file = tmp_path / "aligenie.app-secret"
        self.aligenie = f"aligenie-{secrets.token_hex(12)}"
        self.aligenie_file.write_text(self.aligenie + "\n", encoding="utf-8")
        self.cache_key = f"cache-{secrets.token_hex(12)}"
        self.encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.redis_password = f"redis-{secrets.token_hex(12)}"
        self.api_key = secrets.token_urlsafe(24)

    def all(self) -> list[str]:
        return [
            self.tencent,
            self.aligenie,
            self.cache_key,
            self.encryption_key,
            self.redis_password,
            self.api_key,
        ]


@pytest.fixture
def config_secrets(tmp_path: Path) -> Secrets:
    return Secrets(tmp_path)


def production_config(s: Secrets) -> dict[str, Any]:
    """A config no warning applies to: https vendors, Redis with TLS, encryption on, every provider used."""
    return {
        "redis_url": f"rediss://gateway:{s.redis_password}@redis.internal:6380/0?ssl_cert_reqs=required",
        "cache_key_secret": s.cache_key,
        "encryption_keys": [f"k2025:{s.encryption_key}"],
        "providers": {
            "tencent-wechat": {
                "kind": TENCENT,
                "endpoint": "https://iot.cloud.tencent.com/api/exploreropen/appapi",
                "app_key": "tencent-app",
                "app_secret": s.tencent,
            },
            "aligenie-login": {
                "kind": ALIGENIE,
                "endpoint": "https://eco.taobao.com/router/rest",
                "app_key": "top-app",
                "app_secret_file": str(s.aligenie_file),
            },
        },
        "clients": {
            "billing-app": {
                "api_key_sha256": hashlib.sha256(s.api_key.encode()).hexdigest(),
                "providers": ["tencent-wechat"],
            },
            "ops-console": {
                "api_key_sha256": hashlib.sha256(b"another key").hexdigest(),
                "providers": ["*"],
            },
        },
    }


def write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def run(path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(path)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def warnings_of(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning: ")]


# --- valid files --------------------------------------------------------------------------------------


def test_valid_file_exits_0_with_a_summary_of_providers_clients_store_and_encryption(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """A production-like file exits 0 and lists each provider's kind and host, each client's providers,
    the store without its credentials and whether encryption is on, with no warning."""
    path = write(tmp_path, production_config(config_secrets))
    status, out, err = run(path, capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"config file {path} is valid"
    assert (
        f"  aligenie-login: {ALIGENIE} at https://eco.taobao.com/router/rest "
        f"(app secret from {config_secrets.aligenie_file})"
    ) in lines
    assert (
        f"  tencent-wechat: {TENCENT} at https://iot.cloud.tencent.com/api/exploreropen/appapi "
        "(app secret inline)"
    ) in lines
    assert "  billing-app: may use tencent-wechat" in lines
    assert "  ops-console: may use every provider" in lines
    assert "store: rediss://redis.internal:6380/0 (credentials and query not shown)" in lines
    assert "encryption at rest: on (1 key; the first one seals)" in lines
    assert "cache key secret: set" in lines
    assert warnings_of(out) == []


def test_summary_never_shows_a_secret(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """No app secret (inline or from a file), cache key secret, encryption key, Redis password or API key
    appears in the output, even with the vendor and Redis URLs carrying user:password."""
    config = production_config(config_secrets)
    config["providers"]["tencent-wechat"]["endpoint"] = (
        f"https://user:{config_secrets.tencent}@iot.cloud.tencent.com/api/exploreropen/appapi"
        f"?token={config_secrets.tencent}#{config_secrets.tencent}"
    )
    status, out, err = run(write(tmp_path, config), capsys)
    assert status == 0
    assert [s for s in config_secrets.all() if s in out + err] == []
    assert "user" not in out and "token" not in out
    assert " at https://iot.cloud.tencent.com/api/exploreropen/appapi (" in out


def test_environment_overrides_are_named_but_their_values_are_not_shown(
    tmp_path: Path,
    config_secrets: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A GATEWAY_ variable that overrides the file is listed by name; the summary shows its effect
    without its credentials, and variables that are not settings are not listed."""
    monkeypatch.setenv(
        "GATEWAY_REDIS_URL", f"redis://:{config_secrets.redis_password}@cache:6379/2"
    )
    monkeypatch.setenv("GATEWAY_REQUIRE_REDIS", "1")  # a test-suite switch, not a setting
    status, out, _ = run(write(tmp_path, production_config(config_secrets)), capsys)
    assert status == 0
    assert "environment over the file: GATEWAY_REDIS_URL" in out.splitlines()
    assert "store: redis://cache:6379/2 (credentials not shown)" in out.splitlines()
    assert config_secrets.redis_password not in out


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://gw.vendor.example/router/rest",
        "http://10.1.2.3:8080/router/rest",
    ],
)
def test_plain_http_to_another_host_is_warned_about(
    endpoint: str,
    tmp_path: Path,
    config_secrets: Secrets,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A vendor endpoint over plain http:// to a non-loopback host is valid but warned about, naming the
    provider and why it matters."""
    config = production_config(config_secrets)
    config["providers"]["aligenie-login"]["endpoint"] = endpoint
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    (warning,) = warnings_of(out)
    assert warning.startswith("warning: providers.aligenie-login.endpoint uses plain http:// to ")
    assert "unencrypted" in warning and "use https://" in warning


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8081/router/rest",
        "http://localhost:8081/router/rest",
        "http://[::1]:8081/router/rest",
    ],
)
def test_plain_http_to_loopback_is_not_warned_about(
    endpoint: str,
    tmp_path: Path,
    config_secrets: Secrets,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """http:// to a loopback address (the sandbox, a local proxy) leaves the machine never, so no warning."""
    config = production_config(config_secrets)
    config["providers"]["aligenie-login"]["endpoint"] = endpoint
    status, out, _ = run(write(tmp_path, config), capsys)
    assert (status, warnings_of(out)) == (0, [])


def test_memory_store_is_warned_about_as_single_process_only(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """redis_url memory:// is valid but warned about (replicas share nothing); encryption is not asked for,
    since the credentials never leave the process."""
    config = production_config(config_secrets)
    config["redis_url"] = "memory://"
    config["encryption_keys"] = []
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    assert "store: memory://" in out.splitlines()
    (warning,) = warnings_of(out)
    assert warning.startswith("warning: redis_url is memory://") and "one process only" in warning


def test_empty_encryption_keys_with_redis_is_warned_about(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without encryption_keys the credentials sit in Redis in plain text: valid, warned about."""
    config = production_config(config_secrets)
    del config["encryption_keys"]
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    assert "encryption at rest: off" in out.splitlines()
    (warning,) = warnings_of(out)
    assert warning.startswith("warning: encryption_keys is empty") and "plain text" in warning


def test_no_clients_is_warned_about(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with no clients is valid but every call would get 401, which the warning says."""
    config = production_config(config_secrets)
    del config["clients"]
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    assert "clients (0):" in out.splitlines()
    (warning,) = warnings_of(out)
    assert warning.startswith("warning: no clients are configured") and "401" in warning


def test_a_provider_no_client_may_use_is_warned_about(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider that no client's providers list names (nor "*") can never be called: warned about."""
    config = production_config(config_secrets)
    del config["clients"]["ops-console"]
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    assert warnings_of(out) == [
        "warning: providers.aligenie-login is allowed for no client: no caller can use it; "
        "name it in a client's providers"
    ]


# --- invalid files ------------------------------------------------------------------------------------


def test_client_naming_an_unknown_provider_is_an_error(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client allowed a provider that is not configured makes the file invalid (exit 2), naming both."""
    config = production_config(config_secrets)
    config["clients"]["billing-app"]["providers"] = ["tencent-wechat", "tencent-wehcat"]
    status, out, err = run(write(tmp_path, config), capsys)
    assert (status, out) == (2, "")
    assert "clients.billing-app.providers names unknown provider 'tencent-wehcat'" in err


@pytest.mark.parametrize(
    ("key", "value", "named", "hint"),
    [
        (("providers", "tencent-wechat", "endpoint"), "iot.cloud.tencent.com", None, "http(s) URL"),
        (("providers", "tencent-wechat", "kind"), "tencent-iot:Login", None, TENCENT),
        (("providers", "tencent-wechat", "sign_methd"), "md5", None, None),
        (("clients", "billing-app", "api_key_sha256"), "not-a-digest", None, "sha256sum"),
        (("key_prefix",), "gw prefix", None, "letters, digits"),
        (("max_body_bytes",), 0, None, None),
        (("encryption_keys",), ["k1:c2hvcnQ="], "encryption_keys[0] (k1)", "32 random bytes"),
    ],
    ids=lambda v: ".".join(v) if isinstance(v, tuple) else None,
)
def test_invalid_value_exits_2_naming_the_key(
    key: tuple[str, ...],
    value: Any,
    named: str | None,
    hint: str | None,
    tmp_path: Path,
    config_secrets: Secrets,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad value exits 2 with its dotted key named on stderr, and for the usual mistakes what a right
    value looks like; nothing goes to stdout and no secret is echoed."""
    config = production_config(config_secrets)
    parent = config
    for part in key[:-1]:
        parent = parent[part]
    parent[key[-1]] = value
    status, out, err = run(write(tmp_path, config), capsys)
    assert (status, out) == (2, "")
    assert f"  {'.'.join(key)}: " in err
    if named is not None:
        assert named in err
    if hint is not None:
        assert hint in err
    assert [s for s in config_secrets.all() if s in err] == []
    assert "c2hvcnQ=" not in err, "a rejected encryption key must not be echoed"
    assert err.rstrip().endswith("(see the docs: Reference, Configuration)")


def test_unreadable_secret_file_is_an_error_that_says_where_to_check(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """An app_secret_file that cannot be read exits 2, names the key and points at checking inside the pod."""
    config_secrets.aligenie_file.unlink()
    status, _, err = run(write(tmp_path, production_config(config_secrets)), capsys)
    assert status == 2
    assert "providers.aligenie-login.app_secret_file: cannot read" in err
    assert "kubectl exec" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read config file"),
        (b"providers: [\n", "is not valid YAML"),
        (b"- just\n- a list\n", "must hold a mapping at the top level"),
        (b"\xff\xfe\x00 not text", "is not UTF-8 text"),
    ],
    ids=["missing", "broken-yaml", "not-a-mapping", "not-utf8"],
)
def test_unreadable_file_exits_2_with_the_reason(
    content: bytes | None, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, broken YAML, a top level that is not a mapping or bytes that are not text exit 2
    with the reason, never a traceback."""
    path = tmp_path / "gateway.yaml"
    if content is not None:
        path.write_bytes(content)
    status, out, err = run(str(path), capsys)
    assert (status, out) == (2, "")
    assert expected in err


def test_check_config_returns_the_lines_main_prints(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """check_config gives (valid, lines) and main prints exactly those lines, so a caller may use either."""
    path = write(tmp_path, production_config(config_secrets))
    valid, lines = check_config(path)
    status, out, _ = run(path, capsys)
    assert (valid, status) == (True, 0)
    assert out == "\n".join(lines) + "\n"


def test_limits_turned_off_are_warned_about(
    tmp_path: Path, config_secrets: Secrets, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider without outbound limits and a client without a vendor-call limit are valid, but each is
    warned about, naming the key and why it matters."""
    config = production_config(config_secrets)
    config["providers"]["aligenie-login"]["limits"] = {"rate_per_s": None, "max_concurrency": None}
    config["clients"]["ops-console"]["vendor_calls_per_s"] = None
    status, out, _ = run(write(tmp_path, config), capsys)
    assert status == 0
    provider_warning, client_warning = warnings_of(out)
    assert provider_warning.startswith(
        "warning: providers.aligenie-login.limits turns the outbound"
    )
    assert "call-limit the app key" in provider_warning
    assert client_warning.startswith("warning: clients.ops-console.vendor_calls_per_s is null")
