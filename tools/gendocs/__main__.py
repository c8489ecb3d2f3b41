"""`python -m tools.gendocs` (what `make docs` runs): write the pages generated from the code.

`--check` writes nothing: it lists the files that are not what the code says they should be and
exits 1 (the test suite runs it), or exits 0 when everything is current.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[2]
GENERATED_DIRS = ("docs/reference", "docs/kinds")


def generated_files() -> dict[str, str]:
    """Repository-relative path -> content, for every generated file."""
    from tools.gendocs.api_ref import http_api_page, openapi_json, served_api
    from tools.gendocs.catalogue_ref import errors_page, metrics_page
    from tools.gendocs.kinds_ref import kind_pages
    from tools.gendocs.runbooks import files as runbook_files
    from tools.gendocs.settings_ref import configuration_page

    api = served_api()
    kinds = kind_pages(api.dev_providers)
    found = {
        "docs/reference/configuration.md": configuration_page(),
        "docs/reference/http-api.md": http_api_page(api),
        "docs/reference/openapi.json": openapi_json(api),
        "docs/reference/errors.md": errors_page(),
        "docs/reference/metrics.md": metrics_page(),
        **{f"docs/{path}": text for path, text in kinds.items()},
    }
    found.update(runbook_files(ROOT, list(kinds)))
    return found


def stale(expected: dict[str, str]) -> list[str]:
    """Generated files that differ, are missing, or are left over in a generated directory."""
    wrong = [
        path
        for path, text in expected.items()
        if not (ROOT / path).is_file() or (ROOT / path).read_text(encoding="utf-8") != text
    ]
    for directory in GENERATED_DIRS:
        for path in sorted((ROOT / directory).glob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in expected:
                wrong.append(f"{relative} (not generated any more: delete it)")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gendocs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    # The dev-mode gateway that serves /openapi.json logs its requests; they are not news here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    expected = generated_files()
    if args.check:
        wrong = stale(expected)
        for path in wrong:
            print(f"stale: {path}", file=sys.stderr)
        if wrong:
            print("run `make docs` and commit the result", file=sys.stderr)
        return 1 if wrong else 0
    for path, text in expected.items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for directory in GENERATED_DIRS:
        for leftover in (ROOT / directory).glob("*"):
            if leftover.relative_to(ROOT).as_posix() not in expected:
                leftover.unlink()
                print(f"removed {leftover.relative_to(ROOT).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
