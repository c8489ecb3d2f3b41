"""The committed client is what `make client` makes from the committed document (which tests/docs/
holds to the code): regenerated here in a temporary directory, it must match file for file, and the
generator must not warn about the document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CLIENT = ROOT / "clients" / "python"
COMMITTED = CLIENT / "src" / "auth_gateway_client" / "generated"


def files(tree: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(tree)): path.read_bytes()
        for path in sorted(tree.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_committed_client_is_generated_from_the_committed_document(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent  # the generator's post hooks run this venv's ruff
    out = tmp_path / "generated"
    document, config = ROOT / "docs" / "reference" / "openapi.json", CLIENT / "generator.yaml"
    command = f"generate --meta none --path {document} --config {config} --output-path {out}"
    run = subprocess.run(
        [str(bin_dir / "openapi-python-client"), *command.split()],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    fresh, committed = files(out), files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run `make client`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"run `make client`: {stale}"
