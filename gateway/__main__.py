"""Command line: `serve`, `serve --dev`, `sandbox`, `sign`, `kinds`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import structlog
from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from gateway.api.keys import LIFECYCLE
from gateway.api.listeners import start_listeners
from gateway.app import RELOADER, create_app
from gateway.logging import configure_logging, secret_values
from gateway.metrics import share_between_processes
from gateway.providers.registry import installed_kinds
from gateway.redaction import Redactor
from gateway.reload import ConfigSource, reload_on_sighup
from gateway.settings import ConfigError, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = command(
        "serve", "run the gateway", "python -m gateway serve --config gateway.yaml --workers 2"
    )
    serve.add_argument("--config", help="YAML config file (default: $GATEWAY_CONFIG)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument(
        "--workers", type=int, help="worker processes sharing the port via SO_REUSEPORT (default 1)"
    )
    serve.add_argument(
        "--dev", action="store_true", help="in-process vendor sandbox + memory store + a dev key"
    )

    sandbox = command(
        "sandbox",
        "run the vendor sandbox on its own",
        "python -m gateway sandbox --port 8081 --top-app 12345678:top-secret --fault 'http_status:503*2'",
    )
    from gateway.sandbox import cli as sandbox_cli

    sandbox_cli.add_arguments(sandbox)

    hash_key = command(
        "hash-key",
        "print the api_key_sha256 for a caller key (read from stdin), or --new",
        "python -m gateway hash-key --new",
    )
    hash_key.add_argument("--new", action="store_true", help="generate a new key and print both")

    check = command(
        "check-config",
        "validate a configuration file offline",
        "python -m gateway check-config deploy/base/config.yaml",
    )
    check.add_argument("file")

    sign = command(
        "sign",
        "print the exact signed vendor request (no secret)",
        "python -m gateway sign --dev tencent-wechat "
        '\'{"wx_open_id": "o-1", "nick_name": "n", "avatar": "https://e.x/a.png"}\'',
    )
    sign.add_argument("provider")
    sign.add_argument("input", help="the provider's JSON input, as sent to POST /auth/<provider>")
    sign.add_argument("--config", help="YAML config file (default: $GATEWAY_CONFIG)")
    sign.add_argument(
        "--dev", action="store_true", help="the providers of `serve --dev` (one per installed kind)"
    )

    command(
        "kinds",
        "list the installed kinds and the package each comes from",
        "python -m gateway kinds",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "sandbox":
            return sandbox_cli.run(args)
        if args.command == "hash-key":
            return _hash_key(args.new)
        if args.command == "check-config":
            from gateway.check_config import main as check_config

            return check_config(args.file)
        if args.command == "kinds":
            return _kinds()
        from gateway.sign import sign as print_signed

        return print_signed(args.provider, args.input, config=args.config, dev=args.dev)
    except ConfigError as exc:  # PluginError included
        print(exc, file=sys.stderr)
        return 2


def _kinds() -> int:
    """One line per installed kind: its name, the package and the entry point that registered it."""
    for name, installed in installed_kinds().items():
        print(f"{name}  {installed.package}  ({installed.entry_point})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    _use_uvloop()
    if args.dev:
        asyncio.run(_serve_dev(args.host or "127.0.0.1", args.port or 8080))
        return 0
    config = args.config or os.environ.get("GATEWAY_CONFIG")
    source = ConfigSource(
        Path(config) if config else None,
        {"host": args.host, "port": args.port, "workers": args.workers},
    )
    settings = source.load()
    # One redaction for the log lines and the problem documents, which a reload teaches new secrets.
    redactor = Redactor(secret_values(settings))
    configure_logging(settings.log_level, redactor=redactor)
    if settings.workers > 1:
        return _serve_workers(
            settings, lambda: create_app(settings, redactor=redactor, source=source)
        )
    asyncio.run(
        _run_until_stopped(create_app(settings, redactor=redactor, source=source), settings)
    )
    return 0


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def _serve_workers(settings: Settings, make_app: Callable[[], web.Application]) -> int:
    """`--workers N`: N forked processes, each a whole gateway on the same port (SO_REUSEPORT lets the
    kernel spread connections). Each worker has its own in-process cache; they share Redis like any
    replicas, and their metrics through files in a directory the parent makes and removes, so /metrics
    answers for all. The parent forwards SIGTERM/SIGINT (and SIGHUP: every worker reloads); when a
    worker ends without being told to, it stops the others and exits 1, so the pod restarts whole
    instead of serving on fewer workers."""
    log = structlog.get_logger("gateway")
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    children: set[int] = set()
    stopping = False

    def stop_all(signum: int, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def forward(signum: int, _frame: object = None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    failed = False
    try:
        share_between_processes(metrics_dir)
        # A stop signal that comes while the workers start waits for the handler, which then reaches
        # every worker started: none is left running without a parent, and the directory goes.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for signum in STOP_SIGNALS:
            signal.signal(signum, stop_all)
        signal.signal(signal.SIGHUP, forward)
        try:
            for _ in range(settings.workers):
                pid = os.fork()
                if pid == 0:
                    _run_worker(settings, make_app)
                children.add(pid)
        except OSError as error:
            log.error("worker_start_failed", error=str(error))
            failed = True
            stop_all(signal.SIGTERM)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        while children:
            pid, status = os.wait()
            children.discard(pid)
            mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]  # its gauges leave "live*"
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                log.error("worker_exited", pid=pid, exit_code=code, action="stopping the others")
                failed = True
                stop_all(signal.SIGTERM)
            failed = failed or code != 0
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 1 if failed else 0


def _run_worker(settings: Settings, make_app: Callable[[], web.Application]) -> NoReturn:
    """A forked worker: the parent's stop handler and signal mask are not its own; no event loop exists
    yet, so forking before this was safe."""
    for signum in (*STOP_SIGNALS, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)  # until the event loop installs its own
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    code = 0
    try:
        asyncio.run(_run_until_stopped(make_app(), settings))
    except BaseException:
        structlog.get_logger("gateway").exception("worker_failed")
        code = 1
    os._exit(code)


async def _serve_dev(host: str, port: int) -> None:
    from gateway.devmode import start_dev_environment  # the only non-test importer of the sandbox

    env = await start_dev_environment(host, port)
    configure_logging("info", secrets=secret_values(env.settings))
    try:
        await _run_until_stopped(create_app(env.settings), env.settings, banner=env.banner())
    finally:
        await env.sandbox.cleanup()


async def _run_until_stopped(
    app: web.Application, settings: Settings, *, banner: str | None = None
) -> None:
    """Serve until SIGTERM/SIGINT, then drain: unready at once, keep serving for `drain_delay_s` (so
    load balancers stop sending), then finish in-flight requests within `shutdown_timeout_s`."""
    listeners = await start_listeners(app, settings)
    # Start-up objects (settings, models, routes, pools) never die: moving them out of the collector's
    # generations keeps full collections short, which is what shows up in p99.
    gc.collect()
    gc.freeze()
    if banner:
        print(banner, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if RELOADER in app:
        reload_on_sighup(app[RELOADER])
    try:
        await stop.wait()
        app[LIFECYCLE].draining = True
        structlog.get_logger("gateway").info("draining", delay_s=settings.drain_delay_s)
        await asyncio.sleep(settings.drain_delay_s)
    finally:
        await listeners.close()


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _hash_key(new: bool) -> int:
    """The key comes from stdin (never argv, which other users can read in the process list)."""
    from gateway.api.auth import key_id, new_api_key, sha256_hex

    if new:
        key = new_api_key()
        print(
            f"key:            {key}\nkey id (loggable): {key_id(key)}\napi_key_sha256: {sha256_hex(key)}"
        )
        return 0
    key = sys.stdin.readline().strip()
    if not key:
        print("give the key on standard input, or --new to make one", file=sys.stderr)
        return 2
    print(sha256_hex(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
