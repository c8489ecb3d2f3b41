"""Live rotation without a restart: a running gateway re-reads its config file and the files it names
when they change, swapped the way a Kubernetes Secret volume swaps them (a symlink replaced at once);
a change that does not load changes nothing and says so."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.reload import ConfigSource, fingerprint
from tests.api.conftest import INPUTS, WECHAT, Keys, Vendors, provider_config, sha256_hex
from tests.helpers import eventually

pytestmark = pytest.mark.redis


def swap_in(directory: Path, name: str, content: str) -> None:
    """Write `content` as `directory/name` the way the kubelet updates a Secret volume: into a new
    timestamped directory, then one rename of the `..data` symlink the file links through."""
    version = directory / f"..{time.monotonic_ns()}"
    version.mkdir()
    (version / name).write_text(content, encoding="utf-8")
    link = directory / "..data_tmp"
    link.symlink_to(version.name)
    os.replace(link, directory / "..data")
    target = directory / name
    if not target.is_symlink():
        target.symlink_to(Path("..data") / name)


def secret_volume(tmp_path: Path, name: str, content: str) -> Path:
    """A directory laid out like a mounted Secret, holding `name`; the file's path."""
    directory = tmp_path / f"secret-{name}"
    directory.mkdir()
    swap_in(directory, name, content)
    return directory / name


def write_config(path: Path, vendors: Vendors, redis_url: str, prefix: str, **client: Any) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "redis_url": redis_url,
                "key_prefix": prefix.rstrip(":"),
                "reload_interval_s": 0.2,
                "providers": {WECHAT: provider_config(vendors)[WECHAT]},
                "clients": {"app": {"providers": ["*"], **client}},
            }
        ),
        encoding="utf-8",
    )


async def login(gateway: TestClient, key: str) -> int:
    response = await gateway.post(
        f"/auth/{WECHAT}", json=INPUTS[WECHAT], headers={"Authorization": f"Bearer {key}"}
    )
    await response.read()
    return response.status


async def reload_metrics(gateway: TestClient) -> dict[str, float]:
    text = await (await gateway.get("/metrics")).text()
    wanted = (
        'gateway_config_reloads_total{result="applied"}',
        'gateway_config_reloads_total{result="rejected"}',
        "gateway_config_last_reload_success",
    )
    values = {}
    for line in text.splitlines():
        for name in wanted:
            if line.startswith(name + " "):
                values[name] = float(line.split()[-1])
    return values


async def live_gateway(aiohttp_client: Any, config: Path) -> TestClient:
    source = ConfigSource(config)
    client: TestClient = await aiohttp_client(create_app(source.load(), source=source))
    return client


async def test_a_rotated_client_key_takes_effect_within_seconds_with_no_failed_request(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    """The client's key hashes live in a Secret-like file: adding the new key's hash lets it in within
    5 s while the old key keeps working; removing the old hash then shuts the old key out. Requests
    sent all along with the key being kept never fail."""
    old_key, new_key = keys.full, keys.wechat_only
    hashes = secret_volume(tmp_path, "hashes", sha256_hex(old_key))
    config = tmp_path / "gateway.yaml"
    write_config(config, vendors, redis_url, key_prefix, api_key_sha256_file=str(hashes))
    gateway = await live_gateway(aiohttp_client, config)
    assert (await login(gateway, old_key), await login(gateway, new_key)) == (200, 401)

    statuses: list[int] = []
    stop = asyncio.Event()

    async def keep_logging_in() -> None:
        while not stop.is_set() and len(statuses) < 2000:  # bounded in count; stopped below
            statuses.append(await login(gateway, old_key))
            await asyncio.sleep(0.01)

    steady = asyncio.ensure_future(keep_logging_in())
    swap_in(hashes.parent, "hashes", f"{sha256_hex(old_key)}\n{sha256_hex(new_key)}\n")

    async def new_key_works() -> bool:
        return await login(gateway, new_key) == 200

    assert await eventually(new_key_works, 5.0) < 5.0
    stop.set()
    await steady
    assert statuses and set(statuses) == {200}, set(statuses)

    swap_in(hashes.parent, "hashes", f"{sha256_hex(new_key)}\n")

    async def old_key_refused() -> bool:
        return await login(gateway, old_key) == 401

    await eventually(old_key_refused, 5.0)
    assert await login(gateway, new_key) == 200
    assert (await reload_metrics(gateway))['gateway_config_reloads_total{result="applied"}'] == 2


async def test_a_broken_new_file_changes_nothing_and_says_so(
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    """A hash file replaced with garbage is refused as a whole: the old key keeps working, the new
    (unvalidated) one is not let in, and the reload is counted as rejected with the success gauge at
    0; a good file afterwards is applied and sets it back to 1."""
    hashes = secret_volume(tmp_path, "hashes", sha256_hex(keys.full))
    config = tmp_path / "gateway.yaml"
    write_config(config, vendors, redis_url, key_prefix, api_key_sha256_file=str(hashes))
    gateway = await live_gateway(aiohttp_client, config)
    swap_in(hashes.parent, "hashes", f"{sha256_hex(keys.wechat_only)}\nnot-a-hash\n")

    async def rejected() -> bool:
        metrics = await reload_metrics(gateway)
        return metrics.get('gateway_config_reloads_total{result="rejected"}', 0) == 1

    await eventually(rejected, 5.0)
    assert (await reload_metrics(gateway))["gateway_config_last_reload_success"] == 0
    assert await login(gateway, keys.full) == 200
    assert await login(gateway, keys.wechat_only) == 401

    swap_in(hashes.parent, "hashes", f"{sha256_hex(keys.wechat_only)}\n")

    async def recovered() -> bool:
        return (await reload_metrics(gateway)).get("gateway_config_last_reload_success") == 1

    await eventually(recovered, 5.0)
    assert await login(gateway, keys.wechat_only) == 200


def test_a_secret_volume_swap_changes_the_fingerprint(tmp_path: Path) -> None:
    """A symlink swap (same path, new content behind it) is seen; an untouched file is not."""
    path = secret_volume(tmp_path, "secret", "one")
    before = fingerprint([path])
    assert fingerprint([path]) == before
    swap_in(path.parent, "secret", "two")
    assert fingerprint([path]) != before
