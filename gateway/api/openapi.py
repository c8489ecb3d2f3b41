"""The OpenAPI 3.1 document: generated from the installed kinds, the error catalogue and the shapes in
`openapi_schemas`, so that it declares every status, header and member the server sends, and nothing
it cannot send.

The document is stable: the generic `POST/DELETE /auth/{provider}` operations (body: `oneOf` the
installed kinds' inputs) and every component are the same for every deployment with the same installed
kinds, so a client generated from one environment's document works against every other. Beside them,
a caller that presents a valid key also sees one typed operation per provider that key may use; an
anonymous reader sees no provider names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from gateway import __version__
from gateway.api.openapi_schemas import HEADERS, components, ref
from gateway.api.problems import PROBLEM_CONTENT_TYPE
from gateway.catalogue import ERROR_CATALOGUE
from gateway.service import Kind, Provider, installed_kinds

JSON = "application/json"
# The problem codes each operation can answer with (its statuses follow from them): 405 is what a
# path answers to a method it does not take (declared on the path's operations so that typed clients
# parse it), 500 a bug, and 400 `malformed_request` a request the HTTP parser refused.
_ANY = ("malformed_request", "method_not_allowed", "internal_error")
_CALLER = ("missing_api_key", "invalid_api_key")
_BODY = (
    "invalid_body", "invalid_json", "invalid_input", "provider_forbidden", "unknown_provider",
    "request_timeout", "body_too_large", "unsupported_media_type", "client_rate_limited",
)  # fmt: skip
_SERVICE_ONLY = {"not_found", "cache_unavailable"}  # no route at all; DELETE alone
LOGIN_CODES = frozenset(e.code for e in ERROR_CATALOGUE) - _SERVICE_ONLY
FORGET_CODES = frozenset((*_ANY, *_CALLER, *_BODY, "cache_unavailable"))
LIST_CODES = frozenset((*_ANY, *_CALLER))
PLAIN_CODES = frozenset(_ANY)
# Answers that carry Retry-After: quota and rate limits, an open circuit, and a remembered vendor
# refusal replayed without calling the vendor (any 422).
RETRY_AFTER_CODES = frozenset(
    {"vendor_quota_exceeded", "client_rate_limited", "polls_limited", "outbound_limited"}
    | {"vendor_circuit_open"}
    | {e.code for e in ERROR_CATALOGUE if e.status == 422}
)
_PROVIDER_PARAMETER = {
    "name": "provider",
    "in": "path",
    "required": True,
    "description": "a configured provider's name (`GET /auth` lists the caller's)",
    "schema": {"type": "string", "pattern": "^[a-z0-9-]+$"},
}
_REQUEST_HEADERS = [
    {
        "name": "Cache-Control",
        "in": "header",
        "required": False,
        "description": "`no-cache` or `max-age=0` forces a fresh vendor call",
        "schema": {"type": "string"},
    },
    {
        "name": "X-Request-ID",
        "in": "header",
        "required": False,
        "description": "echoed when it is 1-128 of `A-Za-z0-9._:-`, else replaced by a new id",
        "schema": {"type": "string"},
    },
]
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _headers(retry_after: bool = False) -> dict[str, Any]:
    names = ("X-Request-ID", "Retry-After") if retry_after else ("X-Request-ID",)
    return {name: {"$ref": HEADERS + name} for name in names}


def _response(description: str, media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _headers(),
        "content": {media_type: {"schema": schema}},
    }


def _problems(codes: frozenset[str]) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for entry in ERROR_CATALOGUE:
        if entry.code in codes:
            by_status.setdefault(entry.status, []).append(entry.code)
    return {
        str(status): {
            "description": "a problem: " + ", ".join(f"`{code}`" for code in found),
            "headers": _headers(retry_after=bool(RETRY_AFTER_CODES.intersection(found))),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": ref("Problem")}},
        }
        for status, found in sorted(by_status.items())
    }


def _auth_operations(
    ids: tuple[str, str], body: dict[str, Any], examples: dict[str, Any], tag: str, about: str
) -> dict[str, Any]:
    request_body = {
        "required": True,
        "content": {JSON: {"schema": body, "examples": examples}},
    }
    login, forget = ids
    return {
        "post": {
            "summary": f"Log in {about}",
            "description": "The cached credential while it is fresh, else one vendor call "
            "(concurrent identical calls on every replica share it).",
            "operationId": login,
            "tags": [tag],
            "security": _SECURITY,
            "parameters": _REQUEST_HEADERS,
            "requestBody": request_body,
            "responses": {
                "200": _response("the credential", JSON, ref("LoginResult")),
                **_problems(LOGIN_CODES),
            },
        },
        "delete": {
            "summary": f"Forget the cached credential {about}",
            "operationId": forget,
            "tags": [tag],
            "security": _SECURITY,
            "parameters": _REQUEST_HEADERS[1:],
            "requestBody": request_body,
            "responses": {
                "204": {"description": "forgotten (or nothing was cached)", "headers": _headers()},
                **_problems(FORGET_CODES),
            },
        },
    }


def _input_schemas(kinds: Sequence[Kind]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each kind's input schema under its model's name (qualified should two plug-ins share one),
    with the kind's example inputs; and which name each kind's input has."""
    schemas: dict[str, Any] = {}
    names: dict[str, str] = {}
    for kind in kinds:
        model = kind.input_model
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        name = model.__name__
        if name in schemas:
            name = f"{name}_{example_name(kind)}"
        schema["examples"] = [dict(kind.example_inputs)]
        schemas[name] = schema
        names[kind.kind] = name
    return schemas, names


def example_name(kind: Kind) -> str:
    """A name for `kind` that is a valid component key (and names no configured provider)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", kind.kind)


def _examples(kinds: Iterable[Kind]) -> dict[str, Any]:
    return {
        example_name(kind): {"summary": kind.kind, "value": dict(kind.example_inputs)}
        for kind in kinds
    }


def _plain_get(
    operation_id: str, summary: str, success: dict[str, Any], codes: frozenset[str], **more: Any
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": operation_id,
            "tags": ["operations"],
            "responses": {"200": success, **_problems(codes)},
            **more,
        }
    }


def _operations_paths() -> dict[str, Any]:
    readiness = _response("ready", JSON, ref("Readiness"))
    draining = _response("draining, or the store down too long", JSON, ref("Readiness"))
    return {
        "/auth": {
            "get": {
                "summary": "The providers this caller may use, with their input schemas",
                "operationId": "list_providers",
                "tags": ["auth"],
                "security": _SECURITY,
                "responses": {
                    "200": _response("the providers", JSON, ref("ProviderList")),
                    **_problems(LIST_CODES),
                },
            }
        },
        "/healthz": _plain_get(
            "healthz", "Liveness", _response("alive", JSON, ref("Health")), PLAIN_CODES
        ),
        "/readyz": {
            "get": {
                **_plain_get("readyz", "Readiness", readiness, PLAIN_CODES)["get"],
                "responses": {"200": readiness, "503": draining, **_problems(PLAIN_CODES)},
            }
        },
        "/metrics": _plain_get(
            "metrics",
            "Prometheus metrics",
            _response("text exposition format", "text/plain", {"type": "string"}),
            PLAIN_CODES,
        ),
        "/openapi.json": _plain_get(
            "openapi",
            "This document (with a valid key: also one operation per provider the key may use)",
            _response("OpenAPI 3.1", JSON, {"type": "object"}),
            PLAIN_CODES,
        ),
    }


def sorted_kinds() -> list[Kind]:
    """The installed kinds in name order: the document does not depend on the order of installation."""
    return [installed_kinds()[name].kind for name in sorted(installed_kinds())]


def openapi_document(
    providers: Iterable[Provider] = (), kinds: Sequence[Kind] | None = None
) -> dict[str, Any]:
    """The document for the installed kinds (or `kinds`), with a typed operation for each of
    `providers`."""
    kinds = sorted_kinds() if kinds is None else kinds
    inputs, input_names = _input_schemas(kinds)
    paths: dict[str, Any] = {
        "/auth/{provider}": {
            "parameters": [_PROVIDER_PARAMETER],
            **_auth_operations(
                ("login", "forget"),
                {"oneOf": [ref(input_names[kind.kind]) for kind in kinds]},
                _examples(kinds),
                "auth",
                "through any provider (the body is that provider's kind's input)",
            ),
        },
    }
    for provider in providers:
        suffix = provider.name.replace("-", "_")
        paths[f"/auth/{provider.name}"] = _auth_operations(
            (f"login_{suffix}", f"forget_{suffix}"),
            ref(input_names[provider.kind]),
            _examples([provider.operation]),
            "providers",
            f"through {provider.name} ({provider.kind})",
        )
    paths.update(_operations_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Auth aggregation gateway",
            "version": __version__,
            "description": "One API in front of the vendors' login calls: signed, normalized, "
            "cached. Errors are RFC 9457 problem documents whose `code` is stable.",
        },
        "servers": [{"url": "/", "description": "the gateway this document was read from"}],
        "tags": [
            {"name": "auth", "description": "log in and forget, for any provider"},
            {"name": "providers", "description": "the same, typed for one provider"},
            {"name": "operations", "description": "health, readiness, metrics, this document"},
        ],
        "x-error-catalogue": [
            {"code": e.code, "status": e.status, "retryable": e.retryable, "when": e.when}
            for e in ERROR_CATALOGUE
        ],
        "paths": paths,
        "components": components([kind.kind for kind in kinds], inputs),
    }
