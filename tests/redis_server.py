"""Find a real Redis for the test session, or start throwaway Redis processes on free loopback ports.

Standalone: `GATEWAY_TEST_REDIS_URL` if set (it must answer), else the machine's Redis on 127.0.0.1:6379,
else a `redis-server` from PATH that this module starts without persistence and stops at the end.

Cluster and Sentinel are always private set-ups started here (`RedisClusterProcesses`,
`RedisSentinelProcesses`): three cluster masters made a cluster with `redis-cli --cluster create`, or a
master, its replica and three sentinels. Nothing is persisted; everything lives in one temporary directory.
"""

from __future__ import annotations

import os
import secrets
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


def no_redis_setup(reason: str) -> NoReturn:
    """`no_redis` for the private Cluster and Sentinel set-ups: skip loudly, or fail when
    GATEWAY_REQUIRE_REDIS=1. (GATEWAY_TEST_REDIS_URL names a standalone server; it says nothing
    about these.)"""
    if redis_required():
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
    the same CA); `unix_socket` adds a Unix socket listener. `password` sets `requirepass` (and
    `masterauth`, for a replica of a master with the same password). `sentinel` runs it in Sentinel mode
    with `config_file`, which Sentinel needs (and rewrites). `arguments` are appended as given.
    """

    port: int = field(default_factory=free_loopback_port)
    tls: TlsFiles | None = None
    tls_client_auth: bool = False
    unix_socket: Path | None = None
    password: str | None = None
    arguments: tuple[str, ...] = ()
    sentinel: bool = False
    config_file: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """URL of the TCP (or TLS) listener, database 0 (with the password, when one is set)."""
        scheme = "rediss" if self.tls else "redis"
        credentials = f":{self.password}@" if self.password else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.port}"

    @property
    def unix_url(self) -> str:
        """URL of the Unix socket listener; only when started with `unix_socket`."""
        if self.unix_socket is None:
            raise ValueError("this server was configured without a Unix socket")
        return f"unix://{self.unix_socket}?db=0"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and return once it answers PING; RedisNotAvailable if it cannot."""
        self.launch()
        self.wait_until_ready(timeout_s)

    def launch(self) -> None:
        """Start the process without waiting for it (start several, then wait for each)."""
        # A file, not a pipe: nobody reads the log while the server runs, and a full pipe would block it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop(), which closes it
        self._process = subprocess.Popen(
            self._command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once the launched server answers PING; stop it and raise RedisNotAvailable if not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            if answers_ping(self.url, tls=self.tls):
                return
            time.sleep(0.02)
        log = self.log_tail()
        self.stop()
        raise RedisNotAvailable(f"redis-server on port {self.port} did not answer PING:\n{log}")

    @property
    def running(self) -> bool:
        """True while the process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

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

    def kill(self) -> None:
        """End the server at once (SIGKILL), like a crashed host: no goodbye to clients or replicas."""
        process = self._running_process()
        process.kill()
        process.wait()

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

    def _command(self) -> list[str]:
        if self.sentinel:
            if self.config_file is None:
                raise ValueError("a sentinel needs a config file")
            # redis-sentinel is redis-server under another name; some packages ship only the latter.
            sentinel = shutil.which("redis-sentinel")
            if sentinel is not None:
                return [sentinel, str(self.config_file), *self._arguments()]
            server = _which_or_raise("redis-server")
            return [server, str(self.config_file), "--sentinel", *self._arguments()]
        config = [str(self.config_file)] if self.config_file is not None else []
        return [_which_or_raise("redis-server"), *config, *self._arguments()]

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
        if self.password is not None:
            arguments += ["--requirepass", self.password, "--masterauth", self.password]
        return arguments + list(self.arguments)

    def log_tail(self) -> str:
        """The last 2000 characters the server logged (for failure messages)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace")


def _which_or_raise(program: str) -> str:
    executable = shutil.which(program)
    if executable is None:
        raise RedisNotAvailable(f"{program} is not on PATH")
    return executable


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


def distinct_free_ports(count: int) -> list[int]:
    """`count` different ports nothing listens on right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_loopback_port()
        if port not in ports:
            ports.append(port)
    return ports


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _info_fields(reply: str | dict[str, object]) -> dict[str, str]:
    """An INFO-style reply (CLUSTER INFO) as text fields, whether redis-py parsed it or not."""
    if isinstance(reply, dict):
        return {name: str(value) for name, value in reply.items()}
    return dict(line.split(":", 1) for line in reply.splitlines() if ":" in line)


def _client(server: RedisServerProcess) -> redis.Redis:
    """A short-timeout client on `server` (over TLS, with the test CA and client certificate, if it
    listens for TLS)."""
    return redis.Redis(
        host="127.0.0.1",
        port=server.port,
        password=server.password,
        socket_timeout=PING_TIMEOUT_S,
        socket_connect_timeout=PING_TIMEOUT_S,
        decode_responses=True,
        **_tls_client_options(server.tls),
    )


def _tls_client_options(tls: TlsFiles | None) -> dict[str, Any]:
    if tls is None:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": str(tls.ca_cert),
        "ssl_certfile": str(tls.client_cert),
        "ssl_keyfile": str(tls.client_key),
    }


@dataclass
class RedisClusterProcesses:
    """A Redis Cluster of `size` masters, each with `replicas` replicas, on loopback, made with
    `redis-cli --cluster create`.

    Each node's cluster bus gets its own free port (`cluster-port`), so no node needs port + 10000 free.
    The nodes keep their cluster config in `directory`, so a stopped node started again rejoins as itself.
    With `tls` the nodes listen for TLS only, and speak it on the cluster bus too. With
    `full_coverage=False` (`cluster-require-full-coverage no`) the healthy slots keep serving while a
    master without a replica is down.
    """

    directory: Path
    size: int = 3
    password: str | None = None
    tls: TlsFiles | None = None
    # How long a node may not answer before the others mark it failed (and the cluster down).
    node_timeout_ms: int = 2000
    replicas: int = 0
    full_coverage: bool = True
    nodes: list[RedisServerProcess] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        """`redis[s]+cluster://[:password@]127.0.0.1:<p1>,127.0.0.1:<p2>,…`, every node a startup node."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        credentials = f":{self.password}@" if self.password else ""
        return f"{scheme}://{credentials}{','.join(node.address for node in self.nodes)}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the nodes, make them one cluster, and return once every node says cluster_state:ok."""
        redis_cli = _which_or_raise("redis-cli")
        _which_or_raise("redis-server")
        deadline = time.monotonic() + timeout_s
        ports = distinct_free_ports(2 * self.size * (1 + self.replicas))
        for port, bus_port in zip(ports[::2], ports[1::2], strict=True):
            arguments = (
                *("--cluster-enabled", "yes", "--cluster-port", str(bus_port)),
                *("--cluster-config-file", str(self.directory / f"nodes-{port}.conf")),
                *("--cluster-node-timeout", str(self.node_timeout_ms)),
                *("--cluster-require-full-coverage", "yes" if self.full_coverage else "no"),
                *("--dir", str(self.directory)),
                *(("--tls-cluster", "yes") if self.tls else ()),
                *(("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")),
            )
            self.nodes.append(
                RedisServerProcess(
                    port=port, password=self.password, tls=self.tls, arguments=arguments
                )
            )
        try:
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_until_ready(_remaining(deadline))
            self._create(redis_cli, deadline)
            self.wait_until_ok(_remaining(deadline))
        except BaseException:
            self.stop()
            raise

    def wait_until_ok(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once every node knows every other and reports cluster_state:ok."""
        deadline = time.monotonic() + timeout_s
        while not all(self._node_is_ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RedisNotAvailable(
                    f"the Redis Cluster did not reach cluster_state:ok in {timeout_s} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()

    def _create(self, redis_cli: str, deadline: float) -> None:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        tls = []
        if self.tls:
            tls = ["--tls", "--cacert", str(self.tls.ca_cert)]
            tls += ["--cert", str(self.tls.client_cert), "--key", str(self.tls.client_key)]
        try:
            created = subprocess.run(
                [
                    redis_cli,
                    *auth,
                    *tls,
                    *("--cluster", "create", *(node.address for node in self.nodes)),
                    *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
                ],
                capture_output=True,
                timeout=_remaining(deadline),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise RedisNotAvailable("redis-cli --cluster create did not finish in time") from error
        if created.returncode != 0:
            output = (created.stdout + created.stderr)[-2000:].decode(errors="replace")
            raise RedisNotAvailable(f"redis-cli --cluster create failed:\n{output}")

    def _node_is_ok(self, node: RedisServerProcess) -> bool:
        client = _client(node)
        try:
            info = _info_fields(client.execute_command("CLUSTER INFO"))
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_known_nodes") == str(len(self.nodes))
            and info.get("cluster_slots_ok") == "16384"
        )


SENTINEL_SERVICE = "mymaster"
SENTINEL_FAILOVER_TIMEOUT_MS = 3000


@dataclass
class RedisSentinelProcesses:
    """A master, one replica and three sentinels (quorum 2) on loopback, watching `service`.

    Each sentinel's config already names the replica and the other sentinels (with the run ids they are
    given), so they can agree on a failover as soon as they run instead of after discovering each other.
    `password` protects master and replica (the sentinels are told it); `sentinel_password` protects
    the sentinels themselves. With `tls` every process listens for TLS only and speaks it to the others.
    """

    directory: Path
    service: str = SENTINEL_SERVICE
    password: str | None = None
    sentinel_password: str | None = None
    tls: TlsFiles | None = None
    # How long the master may not answer before a failover starts (short for failover tests).
    down_after_ms: int = 1000
    master: RedisServerProcess = field(init=False)
    replica: RedisServerProcess = field(init=False)
    sentinels: list[RedisServerProcess] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        """`redis[s]+sentinel://[:password@]<s1>,<s2>,<s3>/<service>/0[?sentinel_password=…]`."""
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        credentials = f":{self.password}@" if self.password else ""
        hosts = ",".join(sentinel.address for sentinel in self.sentinels)
        query = f"?sentinel_password={self.sentinel_password}" if self.sentinel_password else ""
        return f"{scheme}://{credentials}{hosts}/{self.service}/0{query}"

    @property
    def servers(self) -> list[RedisServerProcess]:
        """Master and replica, in their original roles (a failover swaps them)."""
        return [self.master, self.replica]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start all five processes; return once the sentinels agree on master, replica and each other."""
        _which_or_raise("redis-server")
        deadline = time.monotonic() + timeout_s
        master_port, replica_port, *sentinel_ports = distinct_free_ports(5)
        # The master must not wait (5 s by default) for more replicas before a diskless sync starts.
        common = ("--repl-diskless-sync-delay", "0", *self._tls_replication())
        self.master = RedisServerProcess(
            port=master_port, password=self.password, tls=self.tls, arguments=common
        )
        self.replica = RedisServerProcess(
            port=replica_port,
            password=self.password,
            tls=self.tls,
            arguments=(*common, "--replicaof", "127.0.0.1", str(master_port)),
        )
        ids = [secrets.token_hex(20) for _ in sentinel_ports]
        for port, run_id in zip(sentinel_ports, ids, strict=True):
            config = self.directory / f"sentinel-{port}.conf"
            peers = [(p, i) for p, i in zip(sentinel_ports, ids, strict=True) if p != port]
            config.write_text(self._sentinel_config(run_id, peers))
            self.sentinels.append(
                RedisServerProcess(
                    port=port,
                    password=self.sentinel_password,
                    tls=self.tls,
                    sentinel=True,
                    config_file=config,
                    arguments=("--dir", str(self.directory), *self._tls_replication()),
                )
            )
        try:
            for process in [self.master, self.replica, *self.sentinels]:
                process.launch()
            for process in [self.master, self.replica, *self.sentinels]:
                process.wait_until_ready(_remaining(deadline))
            self.wait_until_ready(_remaining(deadline))
        except BaseException:
            self.stop()
            raise

    def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once every sentinel sees the current master up, with a live replica and both peers."""
        deadline = time.monotonic() + timeout_s
        while not all(self._sentinel_is_ready(sentinel) for sentinel in self.sentinels):
            if time.monotonic() > deadline:
                raise RedisNotAvailable(
                    f"the sentinels did not agree on {self.service} within {timeout_s} s"
                )
            time.sleep(0.05)

    def master_port(self) -> int:
        """The port of the master the sentinels currently name."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            client = self._sentinel_client(sentinel)
            try:
                address = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                )
            except (redis.RedisError, OSError):
                continue
            finally:
                client.close()
            if address:
                return int(address[1])
        raise RedisNotAvailable(f"no sentinel names a master for {self.service}")

    def server_on(self, port: int) -> RedisServerProcess:
        """The master or replica process listening on `port`."""
        return next(server for server in self.servers if server.port == port)

    def stop(self) -> None:
        """Stop the sentinels first (so they start no failover), then replica and master."""
        for process in [*self.sentinels, self.replica, self.master]:
            process.stop()

    def _tls_replication(self) -> tuple[str, ...]:
        # Replica to master and sentinel to anyone: TLS too, when the listeners speak nothing else.
        return ("--tls-replication", "yes") if self.tls else ()

    def _sentinel_config(self, run_id: str, peers: list[tuple[int, str]]) -> str:
        service = self.service
        lines = [
            f"sentinel myid {run_id}",
            f"sentinel monitor {service} 127.0.0.1 {self.master.port} 2",
            f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
            f"sentinel failover-timeout {service} {SENTINEL_FAILOVER_TIMEOUT_MS}",
            f"sentinel known-replica {service} 127.0.0.1 {self.replica.port}",
            *(f"sentinel known-sentinel {service} 127.0.0.1 {p} {i}" for p, i in peers),
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {service} {self.password}")
        if self.sentinel_password:
            lines.append(f"sentinel sentinel-pass {self.sentinel_password}")
        return "\n".join(lines) + "\n"

    def _sentinel_client(self, sentinel: RedisServerProcess) -> redis.Redis:
        return _client(sentinel)

    def _sentinel_is_ready(self, sentinel: RedisServerProcess) -> bool:
        client = self._sentinel_client(sentinel)
        try:
            master = client.execute_command("SENTINEL", "MASTER", self.service)
            replicas = client.execute_command("SENTINEL", "REPLICAS", self.service)
            peers = client.execute_command("SENTINEL", "SENTINELS", self.service)
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
        # Plain flags only: "disconnected" or "s_down" on a peer would cost a vote in a failover.
        return (
            _pairs(master).get("flags") == "master"
            and len(peers) == len(self.sentinels) - 1
            and all(_pairs(peer).get("flags") == "sentinel" for peer in peers)
            and any(
                _pairs(replica).get("flags") == "slave"
                and _pairs(replica).get("master-link-status") == "ok"
                for replica in replicas
            )
        )


def _pairs(reply: list[str] | dict[str, str]) -> dict[str, str]:
    """A SENTINEL MASTER/REPLICAS entry ([field, value, field, value, …] in RESP2) as a dict."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


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
