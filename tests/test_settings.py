"""Configuration: the YAML file, GATEWAY_ environment overrides, secret files, and errors naming keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import ConfigError, load_settings

GOOD = """
redis_url: redis://127.0.0.1:6379/0
providers:
  tencent-wechat:
    kind: "tencent-iot:AppGetTokenByWeiXin"
    endpoint: https://iot.cloud.tencent.com/api/exploreropen/appapi
    app_key: "k1"
    app_secret: "{secret}"
  aligenie-login:
    kind: "top:taobao.ailab.aicloud.top.auth.get"
    endpoint: https://eco.taobao.com/router/rest
    app_key: "k2"
    app_secret_file: {secret_file}
    sign_method: hmac-sha256
    token_ttl_s: 7200
clients:
  billing-app:
    api_key_sha256: "{digest}"
    providers: ["tencent-wechat"]
"""
DIGEST = "a" * 64


def write_config(tmp_path: Path, text: str) -> Path:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    path = tmp_path / "gateway.yaml"
    path.write_text(text.format(secret="inline-secret", secret_file=secret_file, digest=DIGEST))
    return path


def test_the_documented_file_loads(tmp_path: Path) -> None:
    """The DESIGN.md example loads; inline and file secrets are read, and never shown in repr."""
    settings = load_settings(write_config(tmp_path, GOOD))
    assert settings.providers["tencent-wechat"].secret() == "inline-secret"
    assert (
        settings.providers["aligenie-login"].secret() == "from-a-file"
    )  # trailing newline stripped
    assert "inline-secret" not in repr(settings)
    assert settings.clients["billing-app"].providers == ["tencent-wechat"]


def test_gateway_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GATEWAY_CONFIG is read when no path is given, and GATEWAY_ variables override the file."""
    monkeypatch.setenv("GATEWAY_CONFIG", str(write_config(tmp_path, GOOD)))
    monkeypatch.setenv("GATEWAY_REDIS_URL", "memory://")
    settings = load_settings()
    assert settings.redis_url == "memory://"
    assert set(settings.providers) == {"tencent-wechat", "aligenie-login"}


def test_a_provider_s_dash_may_be_an_underscore_in_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shell can export GATEWAY_PROVIDERS__TENCENT_WECHAT__APP_SECRET but not the name with `-`:
    both set the file's tencent-wechat (provider names never hold `_`), and no other provider appears."""
    monkeypatch.setenv("GATEWAY_PROVIDERS__TENCENT_WECHAT__APP_SECRET", "from-the-shell")
    monkeypatch.setenv("GATEWAY_PROVIDERS__ALIGENIE-LOGIN__TOKEN_TTL_S", "600")
    settings = load_settings(write_config(tmp_path, GOOD))
    assert set(settings.providers) == {"tencent-wechat", "aligenie-login"}
    assert settings.providers["tencent-wechat"].secret() == "from-the-shell"
    assert settings.providers["tencent-wechat"].app_key == "k1"  # the rest still from the file
    assert settings.providers["aligenie-login"].token_ttl_s == 600


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            ('kind: "tencent-iot:AppGetTokenByWeiXin"', 'kind: "tencent-iot:Nope"'),
            "providers.tencent-wechat.kind",
        ),
        (('app_key: "k1"', 'app_key: ""'), "providers.tencent-wechat.app_key"),
        (
            ('    app_secret: "{secret}"\n', ""),
            "providers.tencent-wechat: Value error, give exactly one of app_secret",
        ),
        (("endpoint: https://eco", "endpoint: ftp://eco"), "providers.aligenie-login.endpoint"),
        (("sign_method: hmac-sha256", "sign_method: sha1"), "providers.aligenie-login.sign_method"),
        (("token_ttl_s: 7200", "token_ttl_s: -1"), "providers.aligenie-login.token_ttl_s"),
        (
            ('api_key_sha256: "{digest}"', 'api_key_sha256: "xyz"'),
            "clients.billing-app.api_key_sha256",
        ),
        (('providers: ["tencent-wechat"]', 'providers: ["ghost"]'), "unknown provider 'ghost'"),
        (("  tencent-wechat:\n", "  Tencent_WeChat:\n"), "must match [a-z0-9-]+"),
        (("redis_url:", "redis_ulr:"), "redis_ulr: Extra inputs are not permitted"),
    ],
)
def test_a_bad_file_names_the_key_at_fault(
    tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    """Each kind of mistake fails start-up with a message naming the key."""
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, GOOD.replace(old, new)))
    assert named in str(caught.value)
    assert "inline-secret" not in str(caught.value)


def test_metrics_port_must_not_be_the_service_port(tmp_path: Path) -> None:
    """One port for both would split logins between the two sites under --workers (SO_REUSEPORT)."""
    path = write_config(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="metrics_port must differ from port"):
        load_settings(path, port=9100, metrics_port=9100)
    assert load_settings(path, port=9100, metrics_port=9101).metrics_port == 9101


def test_unreadable_or_empty_secret_file(tmp_path: Path) -> None:
    """A missing or empty app_secret_file is named at start-up, not at the first login."""
    path = write_config(tmp_path, GOOD)
    (tmp_path / "secret").unlink()
    with pytest.raises(
        ConfigError, match=r"providers\.aligenie-login\.app_secret_file: cannot read"
    ):
        load_settings(path)
    (tmp_path / "secret").write_text("  \n")
    with pytest.raises(
        ConfigError, match=r"providers\.aligenie-login\.app_secret_file: .* is empty"
    ):
        load_settings(path)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    """Broken YAML, a list at the top and a missing file each fail with the file named."""
    path = tmp_path / "c.yaml"
    path.write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")
