"""Live rotation: the config file and the files it names are re-read when they change, and on SIGHUP.

On Kubernetes a rotated Secret appears in its mounted files within a minute (mount the volume without
`subPath`: a subPath mount is never updated). Every `reload_interval_s` the gateway looks at the config
file, each provider's `app_secret_file` and each client's `api_key_sha256_file` (size, time and inode,
so the kubelet's symlink swap counts); when one changed, the whole configuration is loaded again as at
start-up.

A configuration that does not load is refused as a whole: the gateway keeps serving with what it has,
logs why (`config_reload_rejected`, naming the key at fault) and counts it
(`gateway_config_reloads_total{result="rejected"}`, `gateway_config_last_reload_success` 0, which the
GatewayConfigReloadFailed alert watches). One that loads is applied at once — what a reload can change:
the providers' app secrets and every client (keys, permissions, limits). Other changes (a new provider,
the store URL, timeouts…) need a restart; the log says which keys those were. Requests under way keep
the settings they started with: nothing in flight is dropped.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway.settings import ConfigError, Settings, load_settings

log = structlog.get_logger("gateway.reload")

Fingerprint = tuple[tuple[str, int, int, int] | tuple[str], ...]
LIVE_KEYS = frozenset({"providers", "clients"})  # what a reload may change without a restart


def watched_files(config_path: Path | None, settings: Settings) -> list[Path]:
    """The config file and every file it names."""
    files = [config_path] if config_path is not None else []
    files += [p.app_secret_file for p in settings.providers.values() if p.app_secret_file]
    files += [c.api_key_sha256_file for c in settings.clients.values() if c.api_key_sha256_file]
    return files


def fingerprint(files: list[Path]) -> Fingerprint:
    """What changes when one of `files` is written or replaced (a missing file counts as a state)."""
    states: list[tuple[str, int, int, int] | tuple[str]] = []
    for file in files:
        try:
            stat = os.stat(file)  # follows the symlinks a Secret volume swaps
        except OSError:
            states.append((str(file),))
            continue
        states.append((str(file), stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(states)


def needs_restart(old: Settings, new: Settings) -> list[str]:
    """The keys that changed but only take effect at start-up."""
    changed = [
        name
        for name in type(new).model_fields
        if name not in LIVE_KEYS and getattr(old, name) != getattr(new, name)
    ]
    if set(old.providers) != set(new.providers):
        changed.append("providers (added or removed)")
    for name in set(old.providers) & set(new.providers):
        keep = {"app_secret", "app_secret_file"}
        if old.providers[name].model_dump(exclude=keep) != new.providers[name].model_dump(
            exclude=keep
        ):
            changed.append(f"providers.{name} (other than its secret)")
    return changed


@dataclass(frozen=True)
class ConfigSource:
    """Where the settings came from: the config file (or none) and the command line's overrides."""

    path: Path | None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Settings:
        return load_settings(self.path, **self.overrides)


class Reloader:
    """Loads the configuration again when its files change (or when asked), and applies it."""

    def __init__(
        self,
        settings: Settings,
        source: ConfigSource,
        apply: Callable[[Settings], None],
        on_result: Callable[[bool], None],
    ) -> None:
        self.settings = settings
        self._config_path = source.path
        self._load = source.load
        self._apply = apply
        self._on_result = on_result
        self._seen = fingerprint(watched_files(self._config_path, settings))

    async def watch(self) -> None:
        """Check every `reload_interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            if fingerprint(watched_files(self._config_path, self.settings)) != self._seen:
                self.reload("files changed")

    def reload(self, reason: str) -> bool:
        """Load and apply now; False (and nothing changed) when the new configuration is refused."""
        files = watched_files(self._config_path, self.settings)
        self._seen = fingerprint(files)  # refused or not, this state is dealt with
        try:
            new = self._load()
        except ConfigError as error:
            log.error("config_reload_rejected", reason=reason, error=str(error))
            self._on_result(False)
            return False
        restart = needs_restart(self.settings, new)
        self._apply(new)
        self.settings = new
        self._seen = fingerprint(watched_files(self._config_path, new))
        log.info("config_reloaded", reason=reason, restart_needed_for=restart or None)
        self._on_result(True)
        return True


def reload_on_sighup(reloader: Reloader) -> None:
    """Reload on SIGHUP, in the running loop (the serving process installs it)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload, "SIGHUP")
