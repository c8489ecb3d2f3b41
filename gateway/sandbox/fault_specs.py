"""Faults from text: the command line's `--fault` specs and the control endpoint's JSON.

Both name a fault kind (`KINDS`, plus `chaos`) with its arguments, an API, times and a probability,
and become an `Injection`, which `apply` adds to a `FaultPlan`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.sandbox.faults import (
    ActiveFault,
    BindInternalError,
    Empty,
    Fault,
    FaultPlan,
    Hang,
    Html,
    HttpStatus,
    Latency,
    OneOf,
    Reset,
    TencentError,
    TopError,
    Truncated,
    check_times_probability,
)


def _number(value: object) -> float:
    if isinstance(value, str):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, str):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _body(value: object) -> bytes:
    return _text(value).encode("utf-8")


def _choices(value: object) -> tuple[Fault, ...]:
    if not isinstance(value, list):
        raise TypeError("choices must be a JSON list of {kind, args} objects")
    return tuple(_fault_from_json(choice) for choice in value)


Converter = Callable[[object], object]

# kind -> (factory, its parameters in command-line order). Omitted parameters take the defaults.
KINDS: dict[str, tuple[Callable[..., Fault], tuple[tuple[str, Converter], ...]]] = {
    "latency": (Latency, (("seconds", _number),)),
    "hang": (Hang, (("seconds", _number),)),
    "reset": (Reset, (("mode", _text),)),
    "http_status": (HttpStatus, (("status", _integer), ("body", _body), ("content_type", _text))),
    "html": (Html, (("body", _body),)),
    "truncated": (Truncated, ()),
    "empty": (Empty, ()),
    "top_error": (
        TopError,
        (("code", _integer), ("msg", _text), ("sub_code", _text), ("sub_msg", _text)),
    ),
    "call_limited": (TopError.call_limited, (("ban_s", _integer),)),
    "tencent_error": (TencentError, (("code", _text), ("message", _text))),
    "bind_internal_error": (BindInternalError, (("ret_code", _integer), ("message", _text))),
    "one_of": (OneOf, (("choices", _choices),)),
}
CHAOS = "chaos"  # not a fault: `FaultPlan.chaos`, with the injection's probability


def kinds_help() -> str:
    """`latency:SECONDS, hang[:SECONDS], ...`: the kinds usable on the command line."""
    parts = []
    for kind, (factory, params) in KINDS.items():
        if kind == "one_of":  # its choices are faults: JSON only
            continue
        signature = inspect.signature(factory).parameters
        text, optional = kind, 0
        for name, _ in params:
            label = "close|rst" if name == "mode" else name.upper()
            if signature[name].default is inspect.Parameter.empty:
                text += f":{label}"
            else:
                text += f"[:{label}"
                optional += 1
        parts.append(text + "]" * optional)
    return ", ".join(parts)


def build_fault(kind: str, args: Mapping[str, object]) -> Fault:
    """The fault `kind` with `args` (converted and checked); ValueError when they do not fit."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}, {CHAOS}")
    factory, params = KINDS[kind]
    converters = dict(params)
    unknown = set(args) - set(converters)
    if unknown:
        raise ValueError(f"{kind} takes no argument {', '.join(sorted(unknown))}")
    try:
        # null leaves the conversion to the fault, which refuses it where it is not optional
        converted = {
            name: None if value is None else converters[name](value) for name, value in args.items()
        }
        return factory(**converted)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{kind}: {error}") from None


def _fault_from_json(value: object) -> Fault:
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        raise ValueError('a fault is a JSON object {"kind": ..., "args": {...}}')
    args = value.get("args") or {}
    if not isinstance(args, dict) or set(value) - {"kind", "args"}:
        raise ValueError('a fault is a JSON object {"kind": ..., "args": {...}}')
    return build_fault(value["kind"], args)


@dataclass(frozen=True)
class Injection:
    """One parsed request to inject: a fault (None: chaos), its API, times and probability."""

    fault: Fault | None
    api: str | None = None
    times: int | None = 1
    probability: float = 1.0

    def __post_init__(self) -> None:
        check_times_probability(self.times, self.probability)
        if self.fault is None and self.times is not None:
            raise ValueError("chaos runs until cleared: it takes no times")

    def apply(self, plan: FaultPlan) -> list[ActiveFault]:
        """Inject into `plan`; the new entries (chaos makes two)."""
        if self.fault is None:
            return plan.chaos(self.probability, api=self.api)
        return [plan.inject(self.api, self.fault, times=self.times, probability=self.probability)]


_SPEC = re.compile(
    r"(?P<body>[^@*%]+?)(?:@(?P<api>[^@*%]+))?(?:\*(?P<times>[^@*%]+))?(?:%(?P<prob>[^@*%]+))?"
)


def parse_fault_spec(text: str) -> Injection:
    """`KIND[:ARG...][@API][*TIMES][%PROBABILITY]`; TIMES defaults to every call, PROBABILITY to 1.

    Examples: `reset`, `http_status:502*3`, `latency:0.5%0.1`,
    `call_limited:60@<TOP method>*1`, `top_error:15:Remote service error`,
    `chaos%0.3`. ValueError when the text does not parse.
    """
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected KIND[:ARG...][@API][*TIMES][%PROBABILITY], got {text!r}")
    kind, *positional = match["body"].split(":")
    times = _integer(match["times"]) if match["times"] else None
    probability = _number(match["prob"]) if match["prob"] else 1.0
    if kind == CHAOS:
        if positional:
            raise ValueError("chaos takes no arguments; give its probability as %P")
        return Injection(None, match["api"], times, probability)
    params = KINDS.get(kind, (None, ()))[1]
    if len(positional) > len(params):
        raise ValueError(f"{kind} takes at most {len(params)} arguments, got {len(positional)}")
    args = {name: value for (name, _), value in zip(params, positional, strict=False)}
    return Injection(build_fault(kind, args), match["api"], times, probability)


def injection_from_json(value: object) -> Injection:
    """`{"api", "kind", "args", "times", "probability"}` (only kind required); ValueError if bad."""
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    unknown = set(value) - {"api", "kind", "args", "times", "probability"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    kind = value.get("kind")
    if not isinstance(kind, str):
        raise ValueError("kind is required: a fault kind or chaos")
    api = value.get("api")
    if api is not None and not (isinstance(api, str) and api):
        raise ValueError("api must be a non-empty string or null")
    args = value.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError("args must be a JSON object")
    if kind == CHAOS and args:
        raise ValueError("chaos takes no args; give its probability")
    fault = None if kind == CHAOS else build_fault(kind, args)
    times = value.get("times", None if fault is None else 1)
    probability = value.get("probability", 1.0)
    try:
        return Injection(fault, api, times, probability)
    except TypeError as error:
        raise ValueError(str(error)) from None
