"""`python -m gateway sign`: the exact signed vendor request a provider would send, without its secret."""

from __future__ import annotations

import sys
import time
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError

from gateway.providers.registry import bind_providers
from gateway.settings import Settings, load_settings
from gateway.upstream import new_send_context

NO_PROVIDERS_HINT = (
    "no providers are configured: give --config FILE (or set GATEWAY_CONFIG), or --dev for the "
    "providers of `serve --dev` (one per installed kind)"
)


def dev_mode_settings() -> Settings:
    """`serve --dev`'s providers, pointing at a sandbox on its default port (fresh dev secrets)."""
    import secrets

    from gateway.devmode import dev_settings  # the only importers of the sandbox are CLI paths
    from gateway.sandbox.state import SandboxState

    return dev_settings("http://127.0.0.1:8081", SandboxState(), secrets.token_urlsafe(24))


def sign(provider_name: str, raw_input: str, *, config: str | None, dev: bool) -> int:
    settings = dev_mode_settings() if dev else load_settings(config)
    providers = bind_providers(settings.providers)
    if not providers:
        print(NO_PROVIDERS_HINT, file=sys.stderr)
        return 2
    if provider_name not in providers:
        print(
            f"unknown provider {provider_name!r}; configured: {', '.join(providers)}",
            file=sys.stderr,
        )
        return 2
    provider = providers[provider_name]
    try:
        raw = orjson.loads(raw_input)
        inputs = provider.parse_inputs(raw if isinstance(raw, dict) else {})
    except (orjson.JSONDecodeError, ValidationError) as exc:
        print(f"invalid input for {provider.kind}: {exc}", file=sys.stderr)
        return 2
    request = provider.build_request(inputs, new_send_context(time.time()))
    print(
        f"{request.method} {provider.redactor.redact(request.url)}"
    )  # a query may hold the secret
    for name, value in request.headers.items():
        print(f"{name}: {value}")
    print()
    print(request.body.decode("utf-8"))
    if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        print("\n# form fields, decoded:")
        for name, value in parse_qsl(request.body.decode("utf-8"), keep_blank_values=True):
            print(f"{name} = {value}")
    print("\n# string to sign (the secret is not shown):")
    print(request.string_to_sign)
    return 0
