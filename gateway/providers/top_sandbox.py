"""What a TOP kind's sandbox stand-in uses: the platform's error answer and its business-parameter rules.

gateway/sandbox/top.py runs the platform checks (signature, timestamp, app key…) and then the kind's
own `sandbox_check` and `sandbox_answer` (gateway/providers/top.py `TopKind`), which raise `TopError`
with the platform's own codes. It lives beside the protocol so that a kind module — built-in or from a
plug-in — never imports the sandbox.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Params = Mapping[str, str]


class TopSimulation(Protocol):
    """What the simulated platform lends a kind's `sandbox_answer` (gateway/sandbox/state.py has it)."""

    issued_tokens: list[str]
    memory: dict[str, dict[Any, Any]]  # per-kind scratch, kept like the vendor's own database

    @property
    def token_ttl_s(self) -> int: ...

    @property
    def top_session_expire_format(self) -> str: ...  # seconds, milliseconds or relative

    @property
    def bind_after_polls(self) -> int: ...

    def now(self) -> float: ...


SandboxCheck = Callable[[Params], None]
SandboxAnswer = Callable[[TopSimulation, Params], dict[str, Any]]


class TopError(Exception):
    """A platform or business error, answered as `error_response`."""

    def __init__(
        self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg


def missing_arguments(name: str) -> TopError:
    """Code 40, as the platform reports a required business parameter that was not sent."""
    return TopError(
        40, f"Missing Required Arguments:{name}", "isv.missing-parameter", f"缺少必选参数 {name}"
    )


def invalid_argument(name: str, why: str) -> TopError:
    """Code 41, as the platform reports a business parameter with an unacceptable value."""
    return TopError(41, "Invalid Arguments", "isv.invalid-parameter", f"非法参数 {name}: {why}")


def check_required(params: Params, names: tuple[str, ...]) -> None:
    """Rule: every required business parameter is sent (code 40)."""
    for name in names:
        if name not in params:
            raise missing_arguments(name)


def check_max_length(params: Params, name: str, limit: int) -> None:
    """Rule: a length-limited parameter stays within its limit (code 41)."""
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise invalid_argument(name, f"longer than {limit} characters")


def decode_json_object(params: Params, name: str) -> dict[str, Any] | None:
    """Rule: a `Json`/object-typed parameter is one field holding a JSON object (code 41)."""
    text = params.get(name)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid_argument(name, "not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid_argument(name, "not a JSON object")
    return value


def optional_object(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_argument(path, "not a JSON object")
    return value


def optional_string(parent: Mapping[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_argument(path, "not a string")
    return value


_GSON_HTML_ESCAPES = {ord(char): f"\\u{ord(char):04x}" for char in "<>&='"}


def gson_string(value: Mapping[str, Any]) -> str:
    """JSON as the vendor's Gson writes it: compact, raw UTF-8, HTML characters as \\u escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters can only occur inside JSON strings, where the escape means the same thing.
    return text.translate(_GSON_HTML_ESCAPES)


_TOKEN_ALPHABET = string.ascii_letters + string.digits


def new_token(length: int = 32) -> str:
    """A random credential, shaped like the platform's (letters and digits)."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))
