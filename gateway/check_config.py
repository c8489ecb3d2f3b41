"""`python -m gateway check-config FILE`: validate a configuration offline and say what it sets up.

The file is loaded exactly as `serve` loads it (`load_settings`: the YAML file, then `GATEWAY_*`
environment variables over it, then the app secret files it names), so a file this accepts is one the
gateway starts with on this machine. An invalid file gets each key at fault with what is wrong and,
for the keys people most often get wrong, what a right value looks like: exit status 2. A valid one gets a
summary and warnings about settings that work but are probably not meant for production: exit status 0.

Nothing secret is ever printed: not an app secret, nor the cache key secret, nor an encryption key, nor
the credentials of the Redis URL. The summary says only whether each is set and where it comes from.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from urllib.parse import urlsplit

from gateway.settings import ConfigError, Settings, load_settings

EXIT_VALID = 0
EXIT_INVALID = 2  # the same status `serve` exits with on a bad configuration

# What a right value looks like, for keys whose validation message alone does not say (by last key part).
_HINTS = {
    "endpoint": "an http(s) URL with a host, e.g. https://eco.taobao.com/router/rest",
    "api_key_sha256": 'the hex sha256 of the client\'s API key: printf %s "$KEY" | sha256sum',
    "encryption_keys": "entries '<kid>:<base64 of 32 random bytes>', e.g. "
    "k1:$(head -c 32 /dev/urandom | base64)",
    "key_prefix": "letters, digits and : _ - only",
    "app_secret_file": "a readable, non-empty file holding the app secret; in Kubernetes it is mounted "
    "from the Secret, so check inside the pod (kubectl exec ... -- python -m gateway check-config "
    "/etc/gateway/config.yaml)",
}
_ERROR_LINE = re.compile(r"^\s*(?P<key>[^:\s]+): ")


def check_config(path: str) -> tuple[bool, list[str]]:
    """(valid, lines to show): a summary and warnings when the file is valid, the errors when it is not."""
    try:
        settings = load_settings(path)
    except ConfigError as error:
        return False, _explain_errors(str(error))
    except UnicodeDecodeError:
        return False, _explain_errors(f"config file {path} is not UTF-8 text")
    lines = [f"config file {path} is valid", *_summary(settings)]
    lines += [f"warning: {warning}" for warning in config_warnings(settings)]
    return True, lines


def main(path: str) -> int:
    """Check `path`, print the outcome (stdout when valid, stderr when not) and return the exit status."""
    valid, lines = check_config(path)
    print("\n".join(lines), file=sys.stdout if valid else sys.stderr)
    return EXIT_VALID if valid else EXIT_INVALID


def config_warnings(settings: Settings) -> list[str]:
    """Settings that load but are probably a mistake outside development, each with why it matters."""
    warnings: list[str] = []
    for name, provider in settings.providers.items():
        endpoint = urlsplit(provider.endpoint)
        host = endpoint.hostname or ""
        if endpoint.scheme == "http" and not _is_loopback(host):
            warnings.append(
                f"providers.{name}.endpoint uses plain http:// to {host}: the app key, the request "
                "signature and the caller's identifiers cross the network unencrypted and can be read "
                "or altered on the way; use https://"
            )
    for name, provider in settings.providers.items():
        limits = provider.limits
        if limits.rate_per_s is None and limits.max_concurrency is None:
            warnings.append(
                f"providers.{name}.limits turns the outbound limits off: nothing keeps a flood of "
                "distinct identities from every client away from the vendor, which can call-limit the "
                "app key (TOP code 7) for every client at once; set rate_per_s a little under the "
                "vendor's quota"
            )
    for name, client in settings.clients.items():
        if client.vendor_calls_per_s is None:
            warnings.append(
                f"clients.{name}.vendor_calls_per_s is null: this client's misses are unlimited, so "
                "it alone can spend the vendor quota every other client shares; set it to its peak of "
                "new logins per second per replica, with room"
            )
    if urlsplit(settings.redis_url).scheme == "memory":
        warnings.append(
            "redis_url is memory://: each process keeps its own credentials, so replicas share "
            "neither the cache nor single flight (every replica calls the vendor for the same "
            "identity) and a restart forgets them all; use it for one process only"
        )
    elif not settings.encryption_keys:
        # Only for a real store: a memory:// store never leaves the process.
        warnings.append(
            "encryption_keys is empty: credentials are stored in Redis in plain text, readable by "
            "anyone who can read the database or its backups; set encryption_keys to "
            "'<kid>:<base64 of 32 random bytes>' entries"
        )
    if not settings.providers:
        warnings.append("no providers are configured: every /auth call answers 404")
    if not settings.clients:
        warnings.append(
            "no clients are configured: every /auth call is refused with 401; add clients.<name> "
            "with api_key_sha256 and providers"
        )
    else:
        for name in settings.providers:
            if not any(client.may_use(name) for client in settings.clients.values()):
                warnings.append(
                    f"providers.{name} is allowed for no client: no caller can use it; "
                    "name it in a client's providers"
                )
    return warnings


def _summary(settings: Settings) -> list[str]:
    lines = [f"providers ({len(settings.providers)}):"]
    for name, provider in sorted(settings.providers.items()):
        secret = (
            f"app secret from {provider.app_secret_file}"
            if provider.app_secret_file is not None
            else "app secret inline"
        )
        lines.append(
            f"  {name}: {provider.kind} at {_shown_endpoint(provider.endpoint)} ({secret})"
        )
    lines.append(f"clients ({len(settings.clients)}):")
    for name, client in sorted(settings.clients.items()):
        allowed = (
            "every provider" if "*" in client.providers else ", ".join(sorted(client.providers))
        )
        lines.append(f"  {name}: may use {allowed}")
    lines.append(f"store: {_redacted_store_url(settings.redis_url)}")
    keys = len(settings.encryption_keys)
    lines.append(
        f"encryption at rest: on ({keys} key{'s' if keys != 1 else ''}; the first one seals)"
        if keys
        else "encryption at rest: off"
    )
    lines.append(
        "cache key secret: set"
        if settings.cache_key_secret is not None
        else "cache key secret: not set (derived per provider from its app secret)"
    )
    overrides = sorted(name for name in os.environ if _is_setting_variable(name))
    if overrides:
        lines.append(f"environment over the file: {', '.join(overrides)}")
    return lines


def _shown_endpoint(url: str) -> str:
    """scheme://host[:port]/path of a URL — the path tells one vendor API from another — with no query
    or fragment (either may carry a token) and never the user:password part."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _redacted_store_url(url: str) -> str:
    """The store URL without its credentials (user:password@) or query (which may hold a password)."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    hidden = [
        what
        for what, present in (("credentials", "@" in parts.netloc), ("query", bool(parts.query)))
        if present
    ]
    shown = f"{parts.scheme}://{hosts}{parts.path}"
    return shown + (f" ({' and '.join(hidden)} not shown)" if hidden else "")


def _is_setting_variable(name: str) -> bool:
    """GATEWAY_REDIS_URL, GATEWAY_PROVIDERS__A__TIMEOUT_S: a variable load_settings reads over the file."""
    upper = name.upper()  # pydantic-settings matches variable names case-insensitively
    if not upper.startswith("GATEWAY_"):
        return False
    field = upper.removeprefix("GATEWAY_").split("__", 1)[0].lower()
    return field in Settings.model_fields


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _explain_errors(message: str) -> list[str]:
    """ConfigError's message (one line per key at fault), with what a right value looks like where known."""
    lines: list[str] = []
    for line in message.splitlines():
        lines.append(line)
        match = _ERROR_LINE.match(line)
        # The last named part of the key: "providers.a.endpoint" -> endpoint, "encryption_keys.0" ->
        # encryption_keys.
        names = [part for part in match["key"].split(".") if not part.isdigit()] if match else []
        hint = _HINTS.get(names[-1]) if names else None
        if hint is not None:
            lines.append(f"      expected: {hint}")
    lines.append(
        "the gateway would not start with this configuration (see the docs: Reference, Configuration)"
    )
    return lines
