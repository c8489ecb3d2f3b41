"""The error catalogue is complete: every problem code the code can raise is listed, documented on the
docs site's generated error page and published in the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.api.openapi import openapi_document
from gateway.catalogue import ERROR_CATALOGUE
from gateway.errors import GatewayError

ROOT = Path(__file__).parent.parent
CATALOGUE = {e.code: e for e in ERROR_CATALOGUE}


def raised_codes() -> set[str]:
    """Codes from every error class's default and every explicit `code="…"` outside the sandbox."""
    codes: set[str] = set()
    stack: list[type[GatewayError]] = [GatewayError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        codes.add(cls.default_code)
    for path in (ROOT / "gateway").rglob("*.py"):
        if "sandbox" not in path.parts:
            codes.update(re.findall(r'\bcode="([a-z_]+)"', path.read_text()))
    # abstract bases whose default is never answered as such
    return codes - {"bad_request", "vendor_configuration_error", "vendor_transport_error"}


def test_every_raised_code_is_in_the_catalogue() -> None:
    """No code can reach a caller without a catalogue entry."""
    assert raised_codes() - set(CATALOGUE) == set()


def test_catalogue_statuses_match_the_error_classes() -> None:
    """Each class's default code has the class's status and retryability in the catalogue."""
    stack: list[type[GatewayError]] = [GatewayError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        entry = CATALOGUE.get(cls.default_code)
        # vendor_error is shared by two classes; vendor_http_error is retryable per answer (5xx only)
        if entry is not None and cls.default_code not in ("vendor_error", "vendor_http_error"):
            assert (entry.status, entry.retryable) == (cls.status, cls.default_retryable), cls


def test_docs_document_every_code_with_its_status() -> None:
    """The committed error page of the docs (docs/reference/errors.md) has a row per code with its status."""
    page = (ROOT / "docs" / "reference" / "errors.md").read_text()
    for entry in ERROR_CATALOGUE:
        row = re.search(rf"^\| {entry.status} \| `{entry.code}`", page, re.MULTILINE)
        assert row, f"docs/reference/errors.md lacks a row for {entry.status} {entry.code}"


def test_openapi_publishes_the_catalogue() -> None:
    """/openapi.json carries the catalogue as x-error-catalogue."""
    published = openapi_document([])["x-error-catalogue"]
    assert [e["code"] for e in published] == list(CATALOGUE)


def test_a_code_the_catalogue_lacks_at_that_status_is_answered_as_the_nearest_default() -> None:
    """A plug-in's own code, or one of another status, cannot leave the catalogue (the OpenAPI enum):
    it becomes the nearest catalogued default up the error's class tree."""
    from gateway.errors import VendorConfigurationError, VendorError, VendorRejectedInput

    class AcmeRefused(VendorError):  # a plug-in's own class, with a default the catalogue lacks
        default_code = "acme_refused"

    assert VendorError("x", code="acme_special").code == "vendor_error"
    assert VendorRejectedInput("x", code="vendor_timeout").code == "vendor_rejected_input"
    assert VendorConfigurationError("x", code="nope").code == "vendor_error"
    assert VendorConfigurationError("x", code="vendor_clock_skew").code == "vendor_clock_skew"
    assert AcmeRefused("x", code="acme_other").code == "vendor_error"
    assert GatewayError("x", code="made_up").code == "internal_error"
