"""The OpenAPI 3.1 document, generated from the providers' input models and the response shapes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway import __version__
from gateway.catalogue import ERROR_CATALOGUE
from gateway.service import Provider

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable snake_case problem code"},
        "provider": {"type": ["string", "null"]},
        "retryable": {"type": "boolean"},
        "upstream": {
            "type": ["object", "null"],
            "properties": {
                "code": {"type": ["string", "null"]},
                "sub_code": {"type": ["string", "null"]},
                "message": {"type": ["string", "null"]},
            },
        },
        "request_id": {"type": ["string", "null"]},
    },
}
_LOGIN_RESULT = {
    "type": "object",
    "required": ["provider", "kind", "token", "expires_at", "cached", "data"],
    "properties": {
        "provider": {"type": "string"},
        "kind": {"type": "string"},
        "token": {"type": ["string", "null"]},
        "expires_at": {"type": ["integer", "null"], "description": "Unix seconds"},
        "cached": {"type": "boolean"},
        "data": {"type": "object"},
        "upstream_request_id": {"type": ["string", "null"]},
    },
}
_PROBLEM_STATUSES = {
    "400": "malformed request or invalid body",
    "401": "missing or unknown API key",
    "403": "provider not allowed for this key (for a limited key, also an unknown one)",
    "404": "unknown provider",
    "408": "the body did not arrive within body_timeout_s",
    "413": "body too large",
    "415": "body is not JSON",
    "422": "the vendor rejected the input",
    "429": "vendor quota (see Retry-After)",
    "502": "vendor failure or unreadable answer",
    "503": "vendor circuit open or store unavailable",
    "504": "vendor timeout",
}


def _problems() -> dict[str, Any]:
    return {
        status: {
            "description": meaning,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for status, meaning in _PROBLEM_STATUSES.items()
    }


def _operations(provider: Provider, schema_ref: str) -> dict[str, Any]:
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}
    security: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "post": {
            "summary": f"Log in through {provider.kind}",
            "operationId": f"login_{provider.name.replace('-', '_')}",
            "security": security,
            "requestBody": body,
            "parameters": [
                {
                    "name": "Cache-Control",
                    "in": "header",
                    "required": False,
                    "description": "`no-cache` or `max-age=0` forces a fresh vendor call",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": "the credential",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/LoginResult"}}
                    },
                },
                **_problems(),
            },
        },
        "delete": {
            "summary": "Forget the cached credential for this identity",
            "operationId": f"forget_{provider.name.replace('-', '_')}",
            "security": security,
            "requestBody": body,
            "responses": {
                "204": {"description": "forgotten (or nothing was cached)"},
                **_problems(),
            },
        },
    }


def openapi_document(providers: Iterable[Provider]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _PROBLEM, "LoginResult": _LOGIN_RESULT}
    paths: dict[str, Any] = {}
    for provider in providers:
        model = provider.operation.input_model
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        paths[f"/auth/{provider.name}"] = _operations(
            provider, f"#/components/schemas/{model.__name__}"
        )
    simple = {"200": {"description": "ok"}}
    paths["/auth"] = {
        "get": {
            "summary": "Providers this caller may use",
            "security": [{"bearer": []}],
            "responses": {"200": {"description": "provider list"}, **_problems()},
        }
    }
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        paths[path] = {"get": {"summary": path.strip("/"), "responses": simple}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Auth aggregation gateway", "version": __version__},
        "x-error-catalogue": [
            {"code": e.code, "status": e.status, "retryable": e.retryable, "when": e.when}
            for e in ERROR_CATALOGUE
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
