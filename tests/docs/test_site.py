"""The docs site: its generated pages are what the code says, it builds with `mkdocs build --strict`
(a broken link or anchor, or a page left out of the nav, fails), every alert's runbook_url lands on
that alert's runbook section, and the README stays one screen long."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.gendocs.runbooks import ALERT_FILES, runbook_url, site_url
from tools.gendocs.settings_ref import undocumented

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")
README_MAX_LINES = 150


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `config` into `site`, as `make docs` runs it."""
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from the committed docs (once for this module)."""
    target = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return target


def alerts() -> list[tuple[str, str, str]]:
    """(file, alert, runbook_url) for every alert of the PrometheusRule and the plain rule file."""
    found = []
    for path in ALERT_FILES:
        loaded = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
        groups = loaded["spec"]["groups"] if "spec" in loaded else loaded["groups"]
        for group in groups:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append((path, rule["alert"], rule["annotations"]["runbook_url"]))
    return found


def test_generated_pages_are_current() -> None:
    """`python -m tools.gendocs --check` (what `make docs` writes) finds every generated file current."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.gendocs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + "\n(run `make docs` and commit the result)"


def test_every_setting_has_a_description() -> None:
    """Each field of the settings models, nested ones included, carries a description (its docstring)."""
    assert undocumented() == []


def test_site_builds_strictly(site: Path) -> None:
    """The committed docs build with --strict into a site with every page of the nav."""
    for page in ("index.html", "operations/index.html", "reference/configuration/index.html"):
        assert (site / page).is_file(), page
    assert (site / "reference" / "openapi.json").is_file()


def test_strict_build_fails_on_a_broken_link_and_on_a_page_outside_the_nav(tmp_path: Path) -> None:
    """A copy of the docs with a link to a missing anchor and a page no nav entry names fails to build."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n", encoding="utf-8")
    index = tmp_path / "docs" / "index.md"
    index.write_text(
        index.read_text(encoding="utf-8") + "\n[gone](operations.md#no-such-runbook)\n",
        encoding="utf-8",
    )
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "orphan.md" in result.stderr and "no-such-runbook" in result.stderr, result.stderr


def test_every_runbook_url_is_its_alerts_section_under_the_site_url() -> None:
    """Each alert's runbook_url is <site_url of mkdocs.yml>operations/#<alert in lower case>."""
    base = site_url((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    found = alerts()
    assert len({alert for _, alert, _ in found}) >= 11
    wrong = [
        f"{path}: {alert}: {url}" for path, alert, url in found if url != runbook_url(base, alert)
    ]
    assert wrong == [], "run `make docs`, which rewrites the runbook URLs"


def test_every_runbook_anchor_exists_in_the_built_site(site: Path) -> None:
    """The anchor of each runbook_url is a heading id on the built Operations page."""
    page = (site / "operations" / "index.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    missing = sorted({url.rpartition("#")[2] for _, _, url in alerts()} - ids)
    assert missing == []


def test_operations_has_one_runbook_section_per_alert() -> None:
    """The Runbooks part of docs/operations.md has exactly one section per shipped alert."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    runbooks = text.partition("\n## Runbooks\n")[2]
    sections = re.findall(r"^### (\S+)\s*$", runbooks, flags=re.MULTILINE)
    assert len(sections) == len(set(sections))
    assert sorted(sections) == sorted({alert for _, alert, _ in alerts()})


def test_readme_fits_one_screen_and_links_into_the_docs() -> None:
    """README.md is at most 150 lines and every relative link in it names a file that exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in relative)
    assert [link for link in relative if not (ROOT / link).exists()] == []
