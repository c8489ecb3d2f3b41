"""Tests of what ships beside the package: the container image recipe and the Kubernetes manifests.

They need outside tools (hadolint, kubectl's kustomize, kubernetes-validate). A missing tool skips the
tests that need it, loudly, with the install line in the reason; with `GATEWAY_REQUIRE_DEPLOY_TOOLS=1`
(as CI should set) a missing tool is a failure instead, so a green CI run always means they ran.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRE_TOOLS_ENV = "GATEWAY_REQUIRE_DEPLOY_TOOLS"
# Every skip for a missing tool carries this marker, so it stands out in pytest's `-ra` summary.
MISSING_TOOL_MARKER = "DEPLOY TOOL MISSING"


def missing_tool(tool: str, install: str) -> NoReturn:
    """Skip (loudly) or, when CI demands the deploy tools, fail: `tool` is not installed."""
    message = f"{MISSING_TOOL_MARKER}: {tool} is not installed ({install})"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(
        f"{message}; these checks did NOT run (set {REQUIRE_TOOLS_ENV}=1 to make this a failure)"
    )


def find_executable(name: str) -> str | None:
    """`name` on PATH, or beside the running interpreter (a virtualenv's bin/, not always on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def promtool() -> str:
    """promtool (Debian package `prometheus`), or a loud skip / failure as for any deploy tool."""
    found = find_executable("promtool")
    if found is None:
        missing_tool("promtool", "apt-get install prometheus")
    return found
