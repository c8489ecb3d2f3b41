"""The one redaction mechanism: configured secrets and credential shapes out, ordinary vendor words kept."""

from __future__ import annotations

import base64
import json
import secrets
from urllib.parse import quote_plus

import pytest

from gateway.logging import RedactValues
from gateway.redaction import (
    MAX_VENDOR_TEXT,
    REDACTED,
    SHAPES_ONLY,
    Redactor,
    redact_text,
)

SIG64 = secrets.token_hex(32).upper()  # what a TOP hmac-sha256 `sign` looks like


@pytest.mark.parametrize(
    "credential",
    [
        secrets.token_hex(16).upper(),  # TOP md5 / hmac sign
        SIG64,  # TOP hmac-sha256 sign
        secrets.token_hex(16),  # a Tencent token, a TOP session id
        base64.b64encode(secrets.token_bytes(20)).decode(),  # a Tencent HMAC-SHA1 Signature
        "P206d+JzP37FLKBDkD689wqnl4k=",  # the documented Tencent example signature
        "V944n0HrnZ4DAAtOStvvDat7",  # a 24-character mixed-case id
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",  # a JWT
    ],
)
def test_token_shaped_runs_are_redacted_inside_vendor_words(credential: str) -> None:
    """A token-looking run is replaced wherever it sits, Chinese text around it kept."""
    text = f"签名 {credential} 无效; 令牌{credential}过期"
    assert SHAPES_ONLY.redact(text) == f"签名 {REDACTED} 无效; 令牌{REDACTED}过期"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {REDACTED}"),
        ("bearer short", f"bearer {REDACTED}"),
        ("sign=ABC&v=2.0", f"sign={REDACTED}&v=2.0"),
        ("session=test", f"session={REDACTED}"),
        (
            '{"accessToken":"short", "userId": "1"}',
            f'{{"accessToken":"{REDACTED}", "userId": "1"}}',
        ),
        ("AppSecret = hunter22", f"AppSecret = {REDACTED}"),
    ],
)
def test_named_credentials_are_redacted_whatever_their_shape(text: str, redacted: str) -> None:
    """A value the text names as a credential (Bearer, sign=, session=, "accessToken":) is replaced."""
    assert SHAPES_ONLY.redact(text) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "非法参数",
        "系统内部未知错误",
        "isv.invalid-parameter",
        "accesscontrol.limited-by-app-access-count",
        "isp.top-remote-connection-timeout-tmall",
        "InvalidParameterValue.NickNameLengthInvalid",
        "This ban will last for 42 more seconds",
        "An internal error has occurred. Retry your request.",
        "36653b6e-f41a-11e6-bc64-92361f002671",  # a lower-case UUID request id
        "zt2wz4xuqb6h",  # a short TOP request id
        "/auth/tencent-wechat-2021-prod-cn",
        "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
        "sign_method=md5 is not supported",
        "the app_secret is wrong",
        "2016-01-01 12:00:00",
        "http://example.com/a.jpg",
    ],
)
def test_ordinary_vendor_words_are_kept(text: str) -> None:
    """Codes, Chinese messages, UUIDs, paths and parameter names are not mistaken for credentials."""
    assert SHAPES_ONLY.redact(text) == text


def test_configured_secrets_are_redacted_in_every_form_and_case() -> None:
    """A configured secret is replaced as is, upper-cased, URL-encoded and JSON-escaped; short ones are not."""
    secret = 'plain words / "quoted" + more'  # no credential shape: only the exact rule can find it
    redactor = Redactor([secret, "abc"])
    for form in (secret, secret.upper(), quote_plus(secret), json.dumps(secret)[1:-1]):
        assert redactor.redact(f"echo <{form}> abc") == f"echo <{REDACTED}> abc"
    assert SHAPES_ONLY.redact(f"echo <{secret}>") == f"echo <{secret}>"


def test_the_longest_secret_wins() -> None:
    """A secret that contains another is replaced whole, not around the shorter one."""
    redactor = Redactor(["horse-battery", "correct-horse-battery-staple"])
    assert redactor.redact("x correct-horse-battery-staple y") == f"x {REDACTED} y"


def test_secrets_go_before_shapes() -> None:
    """A token-shaped run running into a secret cannot swallow its head and leave its tail."""
    secret = "Kx7 correct horse"
    text = "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8" + secret
    assert Redactor([secret]).redact(text) == REDACTED + REDACTED


def test_redact_text_cuts_after_redacting() -> None:
    """The cut comes after redaction: a secret at the limit is replaced, not half shown, and no
    `[redacted]` marker is split."""
    secret = "correct-horse-battery-staple"
    text = "x" * (MAX_VENDOR_TEXT - 10) + " " + secret + " tail"
    cut = redact_text(text, Redactor([secret]))
    assert "correct" not in cut and len(cut) <= MAX_VENDOR_TEXT
    assert cut == "x" * (MAX_VENDOR_TEXT - 10) + " "  # the marker would not fit: dropped whole
    assert redact_text("ok " * 100) == ("ok " * 100)[:MAX_VENDOR_TEXT]
    assert redact_text("short", limit=3) == "sho"


def test_log_processor_uses_the_redactor_and_spares_request_ids() -> None:
    """Log lines lose configured secrets and token shapes; a request id keeps its token-like shape."""
    secret = "correct-horse-battery-staple"
    trace_id = secrets.token_hex(16)
    redact = RedactValues(Redactor([secret]))
    for _ in range(2):  # the second time from the processor's memo
        event = redact(
            None,
            "info",
            {
                "event": "request",
                "error": f"vendor said {secret} and {SIG64}",
                "request_id": trace_id,
                "status": 200,
            },
        )
        assert event == {
            "event": "request",
            "error": f"vendor said {REDACTED} and {REDACTED}",
            "request_id": trace_id,
            "status": 200,
        }
    assert redact(None, "info", {"request_id": f"x-{secret}"})["request_id"] == f"x-{REDACTED}"
