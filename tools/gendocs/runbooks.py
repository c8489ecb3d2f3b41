"""The alerts' runbook links and the site's navigation, kept in step with the docs.

Every alert's `runbook_url` is `<site_url>operations/#<alert name in lower case>`: the docs site's own
address (`site_url` in mkdocs.yml, the one place to change it) and the alert's runbook section on the
Operations page. `make docs` writes that URL into deploy/prometheus/alerts.yaml, rules.yaml and the
expectations of alerts_test.yaml; the tests check each anchor exists in the built site.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RUNBOOK_PAGE = "operations/"
ALERT_NAME = re.compile(r"^\s*(?:- )?(?:alert|alertname): (\w+)\s*$")
RUNBOOK_LINE = re.compile(r"^(\s*runbook_url: )\S+\s*$")
ALERT_FILES = ("deploy/prometheus/alerts.yaml", "deploy/prometheus/rules.yaml")
RUNBOOK_FILES = (*ALERT_FILES, "deploy/prometheus/alerts_test.yaml")
NAV_BEGIN = "    # BEGIN generated: the kind pages (tools/gendocs writes this list)"
NAV_END = "    # END generated"


def site_url(mkdocs_yml: str) -> str:
    """mkdocs.yml's `site_url`, ending in a slash."""
    loaded = yaml.load(mkdocs_yml, Loader=MkDocsLoader)  # noqa: S506 - the loader only skips !tags
    url = str(loaded["site_url"])
    return url if url.endswith("/") else url + "/"


class MkDocsLoader(yaml.SafeLoader):
    """A safe loader that reads mkdocs.yml's `!!python/name:` tags as plain strings."""


MkDocsLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/", lambda loader, suffix, node: loader.construct_scalar(node)
)


def runbook_url(base: str, alert: str) -> str:
    return f"{base}{RUNBOOK_PAGE}#{alert.lower()}"


def with_runbook_base(text: str, base: str) -> str:
    """A rule or rule-test file whose every runbook_url is the runbook of the alert it belongs to
    (the nearest `alert:` or `alertname:` above it) under `base`."""
    lines, alert = [], None
    for line in text.splitlines(keepends=True):
        if named := ALERT_NAME.match(line):
            alert = named.group(1)
        elif (url := RUNBOOK_LINE.match(line)) and alert is not None:
            line = f"{url.group(1)}{runbook_url(base, alert)}\n"
        lines.append(line)
    return "".join(lines)


def with_kind_nav(mkdocs_yml: str, kind_pages: list[str]) -> str:
    """mkdocs.yml with the generated block of its nav listing `kind_pages` (docs-relative paths)."""
    begin, end = mkdocs_yml.index(NAV_BEGIN), mkdocs_yml.index(NAV_END)
    entries = "".join(f"    - {path}\n" for path in kind_pages)
    return mkdocs_yml[: begin + len(NAV_BEGIN)] + "\n" + entries + mkdocs_yml[end:]


def files(root: Path, kind_pages: list[str]) -> dict[str, str]:
    """Repository-relative path -> the content it should have."""
    mkdocs = (root / "mkdocs.yml").read_text(encoding="utf-8")
    base = site_url(mkdocs)
    found = {"mkdocs.yml": with_kind_nav(mkdocs, kind_pages)}
    for path in RUNBOOK_FILES:
        found[path] = with_runbook_base((root / path).read_text(encoding="utf-8"), base)
    return found
