"""No secret, caller key, signature or token leaves the gateway by a log line, a response or /metrics.

One test drives every scenario the API has — a login per kind, cached hits, forced refreshes, DELETE, and
each error path (400/401/403/404/405/413/415/422/429/502/503/504, and a 500 while a bug allows one) —
through real gateways on loopback, the vendor sandbox and a real Redis, with the production log pipeline
(`configure_logging("debug", json=True)`, its value-redaction safety net left out) rendering every
event. Then it sweeps everything that came out for every configured secret, every caller key, every token
the sandbox issued and every signature the gateway sent.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import structlog
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from gateway.__main__ import main
from gateway.app import create_app
from gateway.encryption import parse_encryption_keys
from gateway.logging import RedactValues, configure_logging
from gateway.providers.registry import bind_providers
from gateway.request_line import REQUEST_LINE, JsonRequestLine
from gateway.sandbox.faults import (
    BindInternalError,
    Empty,
    Html,
    HttpStatus,
    Latency,
    Reset,
    TencentError,
    TopError,
    Truncated,
)
from gateway.sandbox.state import CannedResponse
from gateway.settings import ConfigError, Settings, load_settings
from tests.api.conftest import (
    ALIGENIE,
    APIS,
    BIND,
    INPUTS,
    MINI_APP,
    WECHAT,
    Keys,
    StartGateway,
    Vendors,
    closed_port,
    gateway_settings,
)
from tests.helpers import ShiftedClock

pytestmark = pytest.mark.redis


def forget_cached_loggers() -> None:
    """Make the gateway's module-level loggers assemble themselves again from the current configuration.

    `configure_logging` caches each logger on first use (structlog's `cache_logger_on_first_use`): a
    logger first used under another test's configuration would keep that test's level and output.
    structlog caches by setting `bind` on the lazy proxy instance; removing it undoes the caching.
    """
    lazy_proxy = type(structlog.get_logger("probe"))
    for name, module in list(sys.modules.items()):
        if name == "gateway" or name.startswith("gateway."):
            for value in list(vars(module).values()):
                if isinstance(value, lazy_proxy):
                    vars(value).pop("bind", None)


def values_as_they_are(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The value-redaction step of the log line, turned off."""
    return event


@contextmanager
def render_logs() -> Iterator[io.StringIO]:
    """Every structlog event, through the gateway's own processors (debug level, JSON), into a buffer —
    with the safety net off: the processor that redacts configured secrets and credential shapes from
    every logged string is left out, so a call site that logs a secret or a token is caught here.

    `configure_logging` is called as `serve` calls it; only the output stream is swapped for the buffer,
    and loggers are not cached, so nothing of this configuration outlives the block.
    """
    forget_cached_loggers()
    previous = structlog.get_config()
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level  # configure_logging replaces them
    access_level = logging.getLogger("aiohttp.access").level
    request_line = REQUEST_LINE.line
    configure_logging("debug", json=True)
    configured = structlog.get_config()
    buffer = io.StringIO()
    structlog.configure(
        processors=[p for p in configured["processors"] if not isinstance(p, RedactValues)],
        wrapper_class=configured["wrapper_class"],
        context_class=configured["context_class"],
        logger_factory=structlog.PrintLoggerFactory(buffer),
        cache_logger_on_first_use=False,
    )
    # The request line is rendered apart from structlog's chain (gateway.request_line): the same
    # renderer, its value redaction left out too, into the same buffer.
    REQUEST_LINE.use(JsonRequestLine(logging.DEBUG, values_as_they_are, out=buffer))
    try:
        yield buffer
    finally:
        REQUEST_LINE.use(request_line)
        structlog.configure(**previous)
        forget_cached_loggers()
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        logging.getLogger("aiohttp.access").setLevel(access_level)


@pytest.fixture
def rendered_logs() -> Iterator[io.StringIO]:
    """Every structlog event, safety net off, into a buffer (see render_logs)."""
    with render_logs() as buffer:
        yield buffer


@dataclass
class Traffic:
    """What the gateways answered: every head and body, with successful login bodies kept apart
    (they carry the token to its caller by design)."""

    answers: list[str] = field(default_factory=list)
    login_bodies: list[str] = field(default_factory=list)
    statuses: list[tuple[str, int]] = field(default_factory=list)

    async def send(
        self, client: TestClient, method: str, path: str, *, expect: int | set[int], **kwargs: Any
    ) -> dict[str, Any] | None:
        response = await client.request(method, path, **kwargs)
        body = await response.text()
        head = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        self.statuses.append((f"{method} {path}", response.status))
        expected = {expect} if isinstance(expect, int) else expect
        assert response.status in expected, f"{method} {path}: {response.status} {body[:300]}"
        if method == "POST" and path.startswith("/auth/") and response.status == 200:
            self.answers.append(head)
            self.login_bodies.append(body)
        else:
            self.answers.append(f"{head}\n\n{body}")
        return json.loads(body) if body and body.lstrip().startswith("{") else None


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def variant(provider: str, tag: str) -> dict[str, Any]:
    """The provider's test input for another identity (failures are remembered per identity)."""
    first = {
        MINI_APP: "mini_app_id",
        ALIGENIE: "user_id",
        BIND: "open_id",
        WECHAT: "wx_open_id",
    }[provider]
    return {**INPUTS[provider], first: f"{INPUTS[provider][first][:20]}-{tag}"}


def forms(value: str) -> set[str]:
    """The ways a value could show up in text, lower-cased: as is, URL-encoded, JSON-escaped."""
    shown = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return {form.lower() for form in shown}


def leaks(needles: dict[str, list[str]], text: str) -> list[str]:
    """Which needles occur in `text` in any of their forms (case-insensitively)."""
    haystack = text.lower()
    return [
        f"{what}: {value[:6]}…"
        for what, values in needles.items()
        for value in values
        if any(form in haystack for form in forms(value))
    ]


async def drive_every_scenario(
    start_gateway: StartGateway,
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    traffic: Traffic,
    extra_secrets: list[str],
) -> None:
    """Every success and failure path of the API, on several gateways; secrets made on the way are
    added to `extra_secrets`."""
    state = vendors.state
    full, wechat_only = bearer(keys.full), bearer(keys.wechat_only)
    gateway = await start_gateway()
    gateways = [gateway]

    # The happy paths: service endpoints, a login per kind, a cached hit, a forced refresh, DELETE.
    for path in ("/healthz", "/readyz", "/openapi.json"):
        await traffic.send(gateway, "GET", path, expect=200)
    await traffic.send(gateway, "GET", "/auth", expect=200, headers=full)
    await traffic.send(gateway, "GET", "/auth", expect=200, headers=wechat_only)
    for provider in (MINI_APP, ALIGENIE, BIND, WECHAT):
        body = INPUTS[provider]
        first = await traffic.send(
            gateway, "POST", f"/auth/{provider}", expect=200, json=body, headers=full
        )
        assert first is not None and first["cached"] is False
        again = await traffic.send(
            gateway, "POST", f"/auth/{provider}", expect=200, json=body, headers=full
        )
        assert again is not None and again["cached"] is True
        fresh = {**full, "Cache-Control": "no-cache"}
        await traffic.send(
            gateway, "POST", f"/auth/{provider}", expect=200, json=body, headers=fresh
        )
        await traffic.send(
            gateway, "DELETE", f"/auth/{provider}", expect=204, json=body, headers=full
        )
        await traffic.send(
            gateway, "POST", f"/auth/{provider}", expect=200, json=body, headers=full
        )
    await traffic.send(
        gateway, "POST", f"/auth/{WECHAT}", expect=200, json=INPUTS[WECHAT], headers=wechat_only
    )

    # The caller's mistakes.
    await traffic.send(gateway, "POST", f"/auth/{WECHAT}", expect=401, json=INPUTS[WECHAT])
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{WECHAT}",
        expect=401,
        json=INPUTS[WECHAT],
        headers=bearer(secrets.token_urlsafe(24)),
    )
    await traffic.send(
        gateway, "POST", f"/auth/{MINI_APP}", expect=403, json=INPUTS[MINI_APP], headers=wechat_only
    )
    await traffic.send(gateway, "POST", "/auth/no-such-provider", expect=404, json={}, headers=full)
    await traffic.send(gateway, "GET", "/no/such/route", expect=404)
    await traffic.send(gateway, "PUT", f"/auth/{WECHAT}", expect=405, headers=full)
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{WECHAT}",
        expect=400,
        data=b"{not json",
        headers={**full, "Content-Type": "application/json"},
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{WECHAT}",
        expect=400,
        json={**INPUTS[WECHAT], "nick_name": "a\x00b", "surprise": 1},
        headers=full,
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{WECHAT}",
        expect=413,
        data=b'{"pad": "' + b"x" * 20_000 + b'"}',
        headers={**full, "Content-Type": "application/json"},
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{WECHAT}",
        expect=415,
        data=b"wx_open_id=a",
        headers={**full, "Content-Type": "application/x-www-form-urlencoded"},
    )
    # A `params` object nested past what the request signer can write: a 500 while that bug lasts.
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"a": deep}
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{BIND}",
        expect={200, 400, 500},
        json={**variant(BIND, "deep"), "params": deep},
        headers=full,
    )

    # The vendor rejecting the input (422), each class of it, each for its own identity.
    state.enqueue(
        APIS[MINI_APP],
        CannedResponse.json(
            {
                "error_response": {
                    "code": 50,
                    "msg": "Remote service error",
                    "sub_code": "isv.invalid-parameter",
                    "sub_msg": "非法参数",
                }
            }
        ),
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{MINI_APP}",
        expect=422,
        json=variant(MINI_APP, "isv"),
        headers=full,
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{MINI_APP}",
        expect=422,
        json=variant(MINI_APP, "isv"),
        headers=full,
    )
    state.enqueue(
        APIS[MINI_APP],
        CannedResponse.json(
            {
                "yunos_aiot_thirdminiapp_auth_get_response": {
                    "result": {"code": 404, "msg": "no app"}
                }
            }
        ),
    )
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{MINI_APP}",
        expect=422,
        json=variant(MINI_APP, "biz"),
        headers=full,
    )
    state.inject(APIS[ALIGENIE], TopError(27, "Invalid session", "invalid-sessionkey"))
    await traffic.send(
        gateway,
        "POST",
        f"/auth/{ALIGENIE}",
        expect=422,
        json=variant(ALIGENIE, "cred"),
        headers=full,
    )
    state.inject(
        APIS[WECHAT], TencentError("InvalidParameterValue.ErrorUserNotExists", "no such user")
    )
    await traffic.send(
        gateway, "POST", f"/auth/{WECHAT}", expect=422, json=variant(WECHAT, "nouser"), headers=full
    )

    # The vendor failing (502), once per kind of failure; faults last until cleared, so retries see them too.
    failures = [
        (WECHAT, HttpStatus(503)),
        (ALIGENIE, Html()),
        (BIND, Empty()),
        (WECHAT, Truncated()),
        (ALIGENIE, Reset()),
        (MINI_APP, TopError.remote_timeout()),
        (
            MINI_APP,
            TopError(11, "Insufficient isv permissions", "isv.permission-api-package-limit"),
        ),
        (BIND, BindInternalError()),
        (WECHAT, TencentError()),
    ]
    for index, (provider, fault) in enumerate(failures):
        state.inject(APIS[provider], fault, times=None)
        await traffic.send(
            gateway,
            "POST",
            f"/auth/{provider}",
            expect={502, 503},
            json=variant(provider, f"fail{index}"),
            headers=full,
        )
        state.clear_faults()

    # The gateway's own configuration is wrong: secret (signature rejected), clock, endpoint.
    wrong_secret = secrets.token_hex(16)
    extra_secrets.append(wrong_secret)
    wrong = await start_gateway(**{MINI_APP: {"app_secret": wrong_secret}})
    skewed = await start_gateway(clock=ShiftedClock(offset=-3600))
    unreachable = await start_gateway(
        **{WECHAT: {"endpoint": f"http://127.0.0.1:{closed_port()}/api"}}
    )
    slow = await start_gateway(**{WECHAT: {"timeout_s": 0.2}})
    gateways += [wrong, skewed, unreachable, slow]
    await traffic.send(
        wrong, "POST", f"/auth/{MINI_APP}", expect=502, json=variant(MINI_APP, "sig"), headers=full
    )
    await traffic.send(
        skewed,
        "POST",
        f"/auth/{MINI_APP}",
        expect=502,
        json=variant(MINI_APP, "skew"),
        headers=full,
    )
    await traffic.send(
        unreachable,
        "POST",
        f"/auth/{WECHAT}",
        expect=502,
        json=variant(WECHAT, "down"),
        headers=full,
    )
    state.inject(APIS[WECHAT], Latency(1.0), times=None)
    await traffic.send(
        slow, "POST", f"/auth/{WECHAT}", expect=504, json=variant(WECHAT, "slow"), headers=full
    )
    state.clear_faults()

    # Redis down: logins still answer from the vendor, DELETE cannot forget anything (503).
    no_redis = await start_gateway(redis=f"redis://127.0.0.1:{closed_port()}/0")
    gateways.append(no_redis)
    await traffic.send(
        no_redis,
        "POST",
        f"/auth/{WECHAT}",
        expect=200,
        json=variant(WECHAT, "noredis"),
        headers=full,
    )
    await traffic.send(
        no_redis,
        "DELETE",
        f"/auth/{WECHAT}",
        expect=503,
        json=variant(WECHAT, "noredis"),
        headers=full,
    )

    # Encryption at rest and a configured cache key secret: a login, a hit, a forget.
    encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
    cache_key_secret = secrets.token_hex(16)
    extra_secrets += [encryption_key, cache_key_secret]
    sealed_settings = gateway_settings(vendors, keys, redis_url, key_prefix + "sealed").model_copy(
        update={
            "encryption_keys": [SecretStr(f"k1:{encryption_key}")],
            "cache_key_secret": SecretStr(cache_key_secret),
        }
    )
    sealed: TestClient = await aiohttp_client(create_app(sealed_settings))
    gateways.append(sealed)
    for expect in (200, 200):
        await traffic.send(
            sealed, "POST", f"/auth/{ALIGENIE}", expect=expect, json=INPUTS[ALIGENIE], headers=full
        )
    await traffic.send(
        sealed, "DELETE", f"/auth/{ALIGENIE}", expect=204, json=INPUTS[ALIGENIE], headers=full
    )

    # The vendor's quota (429), last: the gateway then keeps the app key banned for a while.
    state.inject(APIS[BIND], TopError.call_limited(42), times=None)
    await traffic.send(
        gateway, "POST", f"/auth/{BIND}", expect=429, json=variant(BIND, "quota"), headers=full
    )
    await traffic.send(
        gateway, "POST", f"/auth/{BIND}", expect=429, json=variant(BIND, "quota2"), headers=full
    )
    state.clear_faults()

    for client in gateways:
        await traffic.send(client, "GET", "/metrics", expect=200)


async def test_no_secret_key_signature_or_token_in_logs_answers_or_metrics(
    start_gateway: StartGateway,
    aiohttp_client: Any,
    vendors: Vendors,
    keys: Keys,
    redis_url: str,
    key_prefix: str,
    rendered_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Across every API scenario, no secret, caller key, signature or token is in any log, answer or /metrics."""
    caplog.set_level(logging.DEBUG)
    traffic = Traffic()
    extra_secrets: list[str] = []
    await drive_every_scenario(
        start_gateway, aiohttp_client, vendors, keys, redis_url, key_prefix, traffic, extra_secrets
    )
    out, err = capfd.readouterr()
    logs = rendered_logs.getvalue()

    # The capture is real: one canonical line per request, and the debug-level vendor requests.
    events = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert sum(1 for e in events if e.get("event") == "request") == len(traffic.statuses)
    assert any(e.get("event") == "vendor_request" for e in events)
    covered = {status for _, status in traffic.statuses}
    assert {200, 204, 400, 401, 403, 404, 405, 413, 415, 422, 429, 502, 503, 504} <= covered

    recorded = vendors.state.requests
    signatures = [r.params["sign"] for r in recorded if isinstance(r.params.get("sign"), str)]
    signatures += [
        r.params["Signature"] for r in recorded if isinstance(r.params.get("Signature"), str)
    ]
    tokens = list(vendors.state.issued_tokens)
    assert len(signatures) == len(recorded) and tokens  # every request was signed; tokens issued
    assert any(token in body for body in traffic.login_bodies for token in tokens)
    never_anywhere = {
        "app secret": [vendors.top_secret, vendors.tencent_secret, *extra_secrets],
        "caller key": [keys.full, keys.wechat_only],
        "signature": signatures,
    }
    # Tokens go to their caller in a login answer, and nowhere else.
    not_outside_logins = {"token": tokens}

    everything_but_login_bodies = "\n".join([logs, caplog.text, out, err, *traffic.answers])
    found = leaks({**never_anywhere, **not_outside_logins}, everything_but_login_bodies)
    found += leaks(never_anywhere, "\n".join(traffic.login_bodies))
    assert not found, f"leaked: {found}"


def test_reprs_of_settings_providers_and_keys_show_no_secret(
    vendors: Vendors, keys: Keys, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """repr() and str() of the settings, providers and encryption keys never show a secret."""
    file_secret = secrets.token_hex(16)
    (tmp_path / "secret").write_text(file_secret + "\n", encoding="utf-8")
    encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
    cache_key_secret = secrets.token_hex(16)
    base = gateway_settings(vendors, keys, redis_url, key_prefix)
    config = {name: provider.model_dump() for name, provider in base.providers.items()}
    config["from-file"] = {
        **config[WECHAT],
        "app_secret": None,
        "app_secret_file": tmp_path / "secret",
    }
    settings = Settings(
        redis_url=redis_url,
        providers=config,
        encryption_keys=[SecretStr(f"k1:{encryption_key}")],
        cache_key_secret=SecretStr(cache_key_secret),
    )
    providers = bind_providers(settings.providers)
    assert providers["from-file"].secret == file_secret  # the file was read, so its secret is held
    texts = [
        repr(settings),
        str(settings),
        repr(settings.model_dump()),
        settings.model_dump_json(),
        repr(providers),
        *(repr(provider) for provider in providers.values()),
        *(str(provider) for provider in providers.values()),
        repr(parse_encryption_keys([f"k1:{encryption_key}"])),
    ]
    found = leaks(
        {
            "app secret": [vendors.top_secret, vendors.tencent_secret, file_secret],
            "encryption key": [encryption_key],
            "cache key secret": [cache_key_secret],
        },
        "\n".join(texts),
    )
    assert not found, f"shown by a repr: {found}"


def test_config_errors_never_quote_a_secret(tmp_path: Path) -> None:
    """A bad configuration is reported by key, without the secret or key material next to the fault."""
    secret = secrets.token_hex(16)
    short_key = base64.b64encode(secrets.token_bytes(31)).decode()  # valid base64, wrong length
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "providers": {
                    "broken": {
                        "kind": "tencent-iot:AppGetTokenByWeiXin",
                        "endpoint": "not a url",
                        "app_key": "k",
                        "app_secret": secret,
                    }
                },
                "encryption_keys": [f"k1:{short_key}"],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "providers.broken.endpoint" in message and "encryption_keys" in message
    assert not leaks({"secret": [secret], "key": [short_key]}, message), message


def test_sign_command_prints_the_request_but_not_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m gateway sign` shows the signed request (signature included) and never the app secret."""
    secret = secrets.token_hex(16)
    (tmp_path / "secret").write_text(secret, encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "providers": {
                    "zebra": {
                        "kind": "top:yunos.aiot.thirdminiapp.auth.get",
                        "endpoint": "https://eco.taobao.com/router/rest",
                        "app_key": "12345678",
                        "app_secret_file": str(tmp_path / "secret"),
                        "sign_method": "md5",
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    assert main(["sign", "zebra", json.dumps(INPUTS[MINI_APP]), "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "sign=" in out and "string to sign" in out
    assert not leaks({"app secret": [secret]}, out + err), out
