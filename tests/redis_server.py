"""Find a real Redis for the test session, or start a throwaway `redis-server` on a free loopback port.

Order: `GATEWAY_TEST_REDIS_URL` if set (it must answer), else the machine's Redis on 127.0.0.1:6379,
else a `redis-server` from PATH that this module starts without persistence and stops at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

import pytest
import redis

TEST_REDIS_URL_ENV = "GATEWAY_TEST_REDIS_URL"
REQUIRE_REDIS_ENV = "GATEWAY_REQUIRE_REDIS"
MACHINE_REDIS_URL = "redis://127.0.0.1:6379/0"
# Every skip for lack of Redis carries this marker, so the terminal summary can count them.
NO_REDIS_MARKER = "NO REAL REDIS"

PING_TIMEOUT_S = 0.3
START_TIMEOUT_S = 10.0


class RedisNotAvailable(Exception):
    """No real Redis could be found or started; the message says what was tried."""


def redis_required() -> bool:
    """True when the environment demands a real Redis (CI): tests fail instead of skipping."""
    return os.environ.get(REQUIRE_REDIS_ENV) == "1"


def no_redis(reason: str) -> NoReturn:
    """Fail when a real Redis is required (or was configured explicitly); otherwise skip, loudly."""
    if redis_required() or os.environ.get(TEST_REDIS_URL_ENV):
        pytest.fail(f"{NO_REDIS_MARKER}: {reason}", pytrace=False)
    pytest.skip(f"{NO_REDIS_MARKER}: {reason} (set {REQUIRE_REDIS_ENV}=1 to make this a failure)")


def free_loopback_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers_ping(url: str, *, tls: TlsFiles | None = None) -> bool:
    """True when a Redis at `url` answers PING within PING_TIMEOUT_S (over TLS with `tls`'s files)."""
    options: dict[str, Any] = {}
    if tls is not None:
        options.update(
            ssl_ca_certs=str(tls.ca_cert),
            ssl_certfile=str(tls.client_cert),
            ssl_keyfile=str(tls.client_key),
        )
    client = redis.Redis.from_url(
        url, socket_timeout=PING_TIMEOUT_S, socket_connect_timeout=PING_TIMEOUT_S, **options
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@dataclass
class RedisServerProcess:
    """One `redis-server` child on loopback, without persistence; start() and stop() may repeat.

    `tls` makes it listen for TLS only (`tls_client_auth`: clients must present a certificate signed by
    the same CA); `unix_socket` adds a Unix socket listener.
    """

    port: int = field(default_factory=free_loopback_port)
    tls: TlsFiles | None = None
    tls_client_auth: bool = False
    unix_socket: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """URL of the TCP (or TLS) listener, database 0."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """URL of the Unix socket listener; only when started with `unix_socket`."""
        if self.unix_socket is None:
            raise ValueError("this server was configured without a Unix socket")
        return f"unix://{self.unix_socket}?db=0"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and return once it answers PING; RedisNotAvailable if it cannot."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise RedisNotAvailable("redis-server is not on PATH")
        # A file, not a pipe: nobody reads the log while the server runs, and a full pipe would block it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop(), which closes it
        self._process = subprocess.Popen(
            [executable, *self._arguments()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready(timeout_s)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL if it lingers) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server would not act on SIGTERM
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers, like a hung host."""
        self._running_process().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo `pause` (SIGCONT)."""
        self._running_process().send_signal(signal.SIGCONT)

    def _running_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("redis-server is not running")
        return self._process

    def _arguments(self) -> list[str]:
        arguments = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""]
        if self.tls is None:
            arguments += ["--port", str(self.port)]
        else:
            # --port 0 turns the plain listener off, so only TLS clients get in.
            arguments += ["--port", "0", "--tls-port", str(self.port)]
            arguments += self.tls.server_arguments(require_client_cert=self.tls_client_auth)
        if self.unix_socket is not None:
            arguments += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        return arguments

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            if answers_ping(self.url, tls=self.tls):
                return
            time.sleep(0.02)
        log = self._log_tail()
        self.stop()
        raise RedisNotAvailable(f"redis-server on port {self.port} did not answer PING:\n{log}")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace")


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, and a server (127.0.0.1) and a client certificate it signed (made with `openssl`)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, directory: Path) -> TlsFiles:
        """Write the CA and both certificates into `directory`; RedisNotAvailable without openssl."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RedisNotAvailable("openssl is not on PATH (needed to make test certificates)")
        files = cls(
            ca_cert=directory / "ca.crt",
            server_cert=directory / "server.crt",
            server_key=directory / "server.key",
            client_cert=directory / "client.crt",
            client_key=directory / "client.key",
        )
        ca_key = directory / "ca.key"
        _openssl(
            openssl,
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=test CA", "-keyout", str(ca_key), "-out", str(files.ca_cert)),
        )
        # The client verifies the server's name; for an IP address that needs an IP subjectAltName.
        _issue(openssl, directory, "server", ca_key, files, "subjectAltName = IP:127.0.0.1\n")
        _issue(openssl, directory, "client", ca_key, files, "extendedKeyUsage = clientAuth\n")
        return files

    def server_arguments(self, *, require_client_cert: bool) -> list[str]:
        """redis-server options for a TLS listener, asking clients for a certificate or not."""
        return [
            *("--tls-cert-file", str(self.server_cert)),
            *("--tls-key-file", str(self.server_key)),
            *("--tls-ca-cert-file", str(self.ca_cert)),
            *("--tls-auth-clients", "yes" if require_client_cert else "no"),
        ]


def _openssl(openssl: str, *arguments: str) -> None:
    subprocess.run([openssl, *arguments], check=True, capture_output=True)


def _issue(
    openssl: str, directory: Path, name: str, ca_key: Path, files: TlsFiles, extensions: str
) -> None:
    """Make `<name>.key` and `<name>.crt` in `directory`, signed by the CA, with `extensions`."""
    extensions_file = directory / f"{name}.ext"
    extensions_file.write_text(extensions)
    request = directory / f"{name}.csr"
    _openssl(
        openssl,
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}"),
        *("-keyout", str(directory / f"{name}.key"), "-out", str(request)),
    )
    _openssl(
        openssl,
        *("x509", "-req", "-in", str(request), "-days", "1", "-CA", str(files.ca_cert)),
        *("-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(extensions_file)),
        *("-out", str(directory / f"{name}.crt")),
    )


class StartRedisServer(Protocol):
    """The `start_redis_server` fixture: a private redis-server on a free port, running, stopped at
    teardown (skips, or fails under GATEWAY_REQUIRE_REDIS=1, when redis-server cannot start)."""

    def __call__(
        self,
        *,
        tls: TlsFiles | None = None,
        tls_client_auth: bool = False,
        unix_socket: Path | None = None,
    ) -> RedisServerProcess: ...


def find_or_start_redis() -> tuple[str, RedisServerProcess | None]:
    """The URL of a real Redis, and the process to stop at the end when this function started one."""
    configured = os.environ.get(TEST_REDIS_URL_ENV)
    if configured:
        # An explicit choice that does not answer is a broken setup, not a reason to test elsewhere.
        if not answers_ping(configured):
            raise RedisNotAvailable(
                f"{TEST_REDIS_URL_ENV} is set but that Redis does not answer PING"
            )
        return configured, None
    if answers_ping(MACHINE_REDIS_URL):
        return MACHINE_REDIS_URL, None
    server = RedisServerProcess()
    try:
        server.start()
    except (RedisNotAvailable, OSError) as error:
        raise RedisNotAvailable(
            f"nothing answers on {MACHINE_REDIS_URL} and redis-server could not be started: {error}"
        ) from error
    return server.url, server
