"""`python -m gateway sandbox`: run the vendor simulators on their own until SIGINT or SIGTERM.

Without `--top-app` / `--tencent-app` a random key and secret are generated for that vendor and
printed once on stdout: this is a local simulator, and the only place the gateway prints a secret.
`--fault` and `--chaos` make the vendors misbehave from the start (`faults.py`, `fault_specs.py`);
the `/_sandbox/` control routes (`control.py`) change faults and read call counts while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import string
import sys
from typing import get_args

from gateway.sandbox import fault_specs
from gateway.sandbox.app import TENCENT_PATH, TOP_PATH, plugin_responders, start_sandbox
from gateway.sandbox.control import FAULTS_PATH, STATS_PATH
from gateway.sandbox.state import SandboxState, TencentEnvelope, TopSessionExpireFormat


def key_secret(text: str) -> tuple[str, str]:
    """`KEY:SECRET` (the secret may itself contain `:`)."""
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        raise argparse.ArgumentTypeError(f"expected KEY:SECRET, got {text!r}")
    return key, secret


def vendor_key_secret(text: str) -> tuple[str, str, str]:
    """`VENDOR:KEY:SECRET`, for a plug-in protocol's vendor (the secret may contain `:`)."""
    vendor, sep, rest = text.partition(":")
    if not sep or not vendor:
        raise argparse.ArgumentTypeError(f"expected VENDOR:KEY:SECRET, got {text!r}")
    return (vendor, *key_secret(rest))


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0..65535, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be in 0..1, got {text}")
    return value


def fault_spec(text: str) -> fault_specs.Injection:
    """`KIND[:ARG...][@API][*TIMES][%PROBABILITY]` (see `fault_specs.parse_fault_spec`)."""
    try:
        return fault_specs.parse_fault_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


FAULT_HELP = (
    "inject a fault from the start (repeatable): KIND[:ARG...][@API][*TIMES][%%PROBABILITY]. "
    f"KIND is one of {fault_specs.kinds_help()}; or chaos. "
    "API is a TOP method or Tencent Action (default: every API); TIMES defaults to every "
    "matching call; PROBABILITY (0..1) to 1. ARGs cannot contain ':', '@', '*' or '%%'. "
    "Transport faults fire before any protocol check, vendor errors (top_error, call_limited, "
    "tencent_error, bind_internal_error) only after the checks pass. "
    "Examples: 'http_status:502*3', 'call_limited:60*1', 'reset:rst%%0.1', "
    "'latency:0.5'"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sandbox` sub-command's options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8081, help="0 picks a free port")
    for vendor, app in (
        ("top", "a TOP app_key and its secret"),
        ("tencent", "a Tencent AppKey and its AppSecret"),
    ):
        parser.add_argument(
            f"--{vendor}-app",
            dest=f"{vendor}_apps",
            metavar="KEY:SECRET",
            type=key_secret,
            action="append",
            help=f"{app} (repeatable); random when none is given",
        )
    parser.add_argument(
        "--plugin-app",
        dest="plugin_apps",
        metavar="VENDOR:KEY:SECRET",
        type=vendor_key_secret,
        action="append",
        help="an app of a plug-in protocol's vendor (e.g. wechat:wx01:secret; repeatable); "
        "random for each plug-in vendor without one",
    )
    parser.add_argument(
        "--token-ttl", type=positive_int, default=7200, help="lifetime of issued tokens, seconds"
    )
    parser.add_argument(
        "--tencent-envelope", choices=get_args(TencentEnvelope), default="documented"
    )
    parser.add_argument(
        "--top-session-expire-format", choices=get_args(TopSessionExpireFormat), default="seconds"
    )
    parser.add_argument(
        "--latency", type=non_negative_float, default=0.0, help="seconds before each answer"
    )
    parser.add_argument(
        "--bind-after-polls",
        type=non_negative_int,
        default=0,
        help="checkbind answers ret_value=false this many times per identity",
    )
    parser.add_argument(
        "--fault",
        dest="faults",
        metavar="SPEC",
        type=fault_spec,
        action="append",
        help=FAULT_HELP,
    )
    parser.add_argument(
        "--chaos",
        type=probability,
        default=0.0,
        metavar="P",
        help="fail a fraction P of the calls with random transient faults (HTTP 500/502/503, "
        "connection closed, TOP isp code 15 or code 10, Tencent InternalError, checkbind 331001)",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random draws of --chaos and of PROBABILITY, so runs repeat (default 0)",
    )


def random_top_app() -> tuple[str, str]:
    """A TOP-shaped app: an 8-digit app_key and a 32-hex secret."""
    return str(10_000_000 + secrets.randbelow(90_000_000)), secrets.token_hex(16)


def random_tencent_app() -> tuple[str, str]:
    """A Tencent-shaped app: an alphanumeric AppKey and AppSecret."""
    alphabet = string.ascii_letters + string.digits
    return (
        "".join(secrets.choice(alphabet) for _ in range(17)),
        "".join(secrets.choice(alphabet) for _ in range(32)),
    )


def state_from_args(args: argparse.Namespace) -> SandboxState:
    """The sandbox state the options describe; generated apps are printed with their secret."""
    top_apps = dict(args.top_apps or ())
    tencent_apps = dict(args.tencent_apps or ())
    if not top_apps:
        key, secret = random_top_app()
        top_apps[key] = secret
        print(f"TOP app (generated):     app_key={key} app_secret={secret}")
    if not tencent_apps:
        key, secret = random_tencent_app()
        tencent_apps[key] = secret
        print(f"Tencent app (generated): AppKey={key} AppSecret={secret}")
    print(f"TOP app keys:     {', '.join(top_apps)}")
    print(f"Tencent AppKeys:  {', '.join(tencent_apps)}")
    state = SandboxState(
        top_apps=top_apps,
        tencent_apps=tencent_apps,
        token_ttl_s=args.token_ttl,
        tencent_envelope=args.tencent_envelope,
        top_session_expire_format=args.top_session_expire_format,
        latency_s=args.latency,
        bind_after_polls=args.bind_after_polls,
        fault_seed=args.fault_seed,
    )
    for vendor, key, secret in args.plugin_apps or ():
        state.plugin_apps.setdefault(vendor, {})[key] = secret
    for responder in plugin_responders():  # plug-in protocols' vendors: one app each at least
        if responder.vendor not in state.plugin_apps:
            key, secret = random_tencent_app()
            state.plugin_apps[responder.vendor] = {key: secret}
            print(f"{responder.vendor} app (generated, plug-in): app_key={key} app_secret={secret}")
        print(f"{responder.vendor} app keys: {', '.join(state.plugin_apps[responder.vendor])}")
    injections: list[fault_specs.Injection] = list(args.faults or ())
    if args.chaos > 0:
        injections.append(fault_specs.Injection(None, times=None, probability=args.chaos))
    for injection in injections:
        injection.apply(state.faults)
    for entry in state.faults.active:
        print(f"Fault: {json.dumps(entry.to_json(), ensure_ascii=False)}")
    return state


async def serve(state: SandboxState, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; 1 when the address cannot be bound."""
    try:
        runner, base_url = await start_sandbox(state, host, port)
    except OSError as error:
        print(f"sandbox: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    print(f"TOP endpoint:     {base_url}{TOP_PATH}")
    print(f"Tencent endpoint: {base_url}{TENCENT_PATH}")
    for responder in plugin_responders():
        print(f"{responder.vendor} endpoint (plug-in): {base_url}{responder.path}")
    print(f"Control:          {base_url}{FAULTS_PATH} (POST, GET, DELETE), {base_url}{STATS_PATH}")
    print("Press Ctrl+C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the sandbox from parsed options; the process exit status."""
    state = state_from_args(args)
    try:
        return asyncio.run(serve(state, args.host, args.port))
    except KeyboardInterrupt:  # a second Ctrl+C while shutting down
        return 130
