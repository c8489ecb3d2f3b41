"""Kinds are found through the entry-point group `auth_gateway.kinds`, built-in ones included; a broken
plug-in stops the gateway at start with a message naming it, and a config naming a kind that is not
installed says which ones are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.providers.registry import ENTRY_POINT_GROUP, installed_kinds
from gateway.settings import ConfigError, load_settings

BUILT_IN = {
    "top:yunos.aiot.thirdminiapp.auth.get": "top-miniapp-auth",
    "top:taobao.ailab.aicloud.top.auth.get": "top-aicloud-login",
    "top:alibaba.ailabs.iot.device.inside.checkbind.invoke": "top-bind-check",
    "top:taobao.top.auth.token.create": "top-token-create",
    "tencent-iot:AppGetTokenByWeiXin": "tencent-wechat-login",
}


def gateway_cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def fake_plugin(root: Path, entry_point: str, module: str | None = None) -> Path:
    """An installed distribution as importlib.metadata sees one: a dist-info with entry points."""
    info = root / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point}\n")
    if module is not None:
        (root / "broken_plugin_mod.py").write_text(module)
    return root


def test_the_built_in_kinds_come_through_the_entry_point_group() -> None:
    installed = installed_kinds()
    for name, entry_point in BUILT_IN.items():
        assert installed[name].package == "auth-gateway"
        assert installed[name].entry_point.startswith(f"{entry_point} = gateway.providers.")


def test_kinds_command_lists_each_kind_with_its_package() -> None:
    result = gateway_cli("kinds")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = {line.split()[0]: line.split()[1] for line in lines}
    assert {name: listed[name] for name in BUILT_IN} == dict.fromkeys(BUILT_IN, "auth-gateway")
    assert set(listed) == set(installed_kinds())


@pytest.mark.parametrize(
    ("entry_point", "module", "said"),
    [
        (
            "broken = broken_plugin_mod:KIND",
            "import not_a_module_anywhere\n",
            "cannot be loaded: ModuleNotFoundError: No module named 'not_a_module_anywhere'",
        ),
        ("broken = broken_plugin_mod:KIND", "KIND = object()\n", "is not a kind (it has no kind,"),
        ("broken = broken_plugin_mod:MISSING", "KIND = 1\n", "cannot be loaded: AttributeError"),
    ],
)
def test_a_broken_plugin_fails_at_start_naming_the_plugin_and_entry_point(
    tmp_path: Path, entry_point: str, module: str, said: str
) -> None:
    """No traceback deep in the registry: one message with the package and the entry point."""
    config = tmp_path / "gateway.yaml"
    config.write_text("providers: {}\n")
    root = fake_plugin(tmp_path / "site", entry_point, module)
    for args in (("kinds",), ("check-config", str(config))):
        result = gateway_cli(*args, pythonpath=root)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"plug-in broken-plugin: entry point {entry_point!r}" in result.stderr
        assert said in result.stderr
        assert "Traceback" not in result.stderr


def test_a_kind_registered_twice_is_refused(tmp_path: Path) -> None:
    root = fake_plugin(
        tmp_path / "site",
        "again = gateway.providers.top_token_create:KIND",
    )
    result = gateway_cli("kinds", pythonpath=root)
    assert result.returncode == 2
    assert "kind 'top:taobao.top.auth.token.create' is registered twice" in result.stderr
    assert "auth-gateway" in result.stderr and "broken-plugin" in result.stderr


def test_a_kind_that_is_not_installed_names_the_installed_ones(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "providers:\n  mini:\n    kind: 'wechat:not-installed'\n"
        "    endpoint: https://vendor.example/x\n    app_key: k\n    app_secret: s\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "providers.mini.kind" in message
    assert "unknown kind 'wechat:not-installed'; installed kinds: " in message
    for name in BUILT_IN:
        assert name in message


def test_a_misspelt_key_of_a_provider_is_named(tmp_path: Path) -> None:
    """Kinds may take options beside the common keys, so an unknown key still fails by its name."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "providers:\n  oauth:\n    kind: 'top:taobao.top.auth.token.create'\n"
        "    endpoint: https://vendor.example/x\n    app_key: k\n    app_secret: s\n"
        "    token_tll_s: 60\n"
    )
    with pytest.raises(ConfigError, match=r"providers\.oauth\.token_tll_s: Extra inputs"):
        load_settings(config)
