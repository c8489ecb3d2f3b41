"""The component schemas and headers of the OpenAPI document: every member the server really sends.

These are identical for every deployment with the same installed kinds: `code` is an enum of the
error catalogue and `kind` an enum of the installed kinds, so a client generated from one
environment's document works against every other. Members the server always sends are required, and
nullable where they may be null, so generated types are not three-state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.catalogue import ERROR_CATALOGUE

SCHEMAS = "#/components/schemas/"
HEADERS = "#/components/headers/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _nullable(type_: str, **more: Any) -> dict[str, Any]:
    return {"type": [type_, "null"], **more}


def problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem document: the only error shape the gateway answers with.",
        "required": [
            "type",
            "title",
            "status",
            "detail",
            "code",
            "provider",
            "retryable",
            "upstream",
            "request_id",
        ],
        "properties": {
            "type": {"type": "string", "description": "`urn:auth-gateway:problem:<code>`"},
            "title": {"type": "string"},
            "status": {"type": "integer", "description": "the HTTP status, repeated"},
            "detail": {"type": "string", "description": "what went wrong (secrets redacted)"},
            "code": {
                "type": "string",
                "enum": [entry.code for entry in ERROR_CATALOGUE],
                "description": "stable snake_case problem code (docs: the error catalogue)",
            },
            "provider": _nullable("string", description="the provider, when the path named one"),
            "retryable": {"type": "boolean", "description": "whether the same call may succeed"},
            "upstream": {
                "oneOf": [ref("UpstreamDetail"), {"type": "null"}],
                "description": "what the vendor said, when it said something",
            },
            "request_id": _nullable("string", description="this request's X-Request-ID"),
            "instance": {"type": "string", "description": "this request's trace span, when traced"},
            "errors": {
                "type": "array",
                "description": "`invalid_input`: every field at fault",
                "items": ref("FieldError"),
            },
        },
        "additionalProperties": False,
    }


UPSTREAM_DETAIL = {
    "type": "object",
    "required": ["code", "sub_code", "message"],
    "properties": {
        "code": _nullable("string"),
        "sub_code": _nullable("string"),
        "message": _nullable("string", description="the vendor's words (secrets redacted)"),
    },
    "additionalProperties": False,
}
FIELD_ERROR = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {"type": "string", "description": "dotted path of the field, or `(body)`"},
        "message": {"type": "string"},
    },
    "additionalProperties": False,
}


LOGIN_RESULT = {
    "type": "object",
    "description": "The normalized credential, from the cache or fresh from the vendor.",
    "required": [
        "provider",
        "kind",
        "token",
        "expires_at",
        "cached",
        "data",
        "upstream_request_id",
    ],
    "properties": {
        "provider": {"type": "string"},
        "kind": ref("Kind"),
        "token": _nullable("string", description="the session id or token (null: none)"),
        "expires_at": _nullable("integer", description="Unix seconds (null: no expiry)"),
        "cached": {"type": "boolean", "description": "served from the cache"},
        "data": {"type": "object", "description": "the vendor's answer, normalized"},
        "upstream_request_id": _nullable("string"),
        "stale": {
            "type": "boolean",
            "description": "present (true) only when the vendor failed and an entry past its "
            "refresh time was served instead",
        },
    },
    "additionalProperties": False,
}


def kind_schema(kinds: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": list(kinds),
        "description": "the installed kinds (`python -m gateway kinds`)",
    }


PROVIDER_LIST = {
    "type": "object",
    "required": ["providers"],
    "properties": {
        "providers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["provider", "kind", "input_schema"],
                "properties": {
                    "provider": {"type": "string"},
                    "kind": ref("Kind"),
                    "input_schema": {
                        "type": "object",
                        "description": "the JSON Schema of the request body",
                    },
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}
HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
    "additionalProperties": False,
}
_UP_DOWN = {"type": "string", "enum": ["up", "down"]}
READINESS = {
    "type": "object",
    "required": ["status", "store", "store_state_for_s", "store_nodes", "invalidation"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "draining", "unready"]},
        "store": {"type": "string", "enum": ["up", "degraded", "down"]},
        "store_state_for_s": {"type": "number"},
        "store_nodes": {"type": "object", "additionalProperties": _UP_DOWN},
        "invalidation": {"type": "string", "enum": ["live", "down"]},
        "store_unserved_slots": {
            "type": "integer",
            "description": "Cluster hash slots no reachable primary serves (present when > 0)",
        },
    },
    "additionalProperties": False,
}

RESPONSE_HEADERS = {
    "X-Request-ID": {
        "description": "the caller's X-Request-ID when it is a safe token, else one the gateway made",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "seconds before the same call may succeed (quota, rate limits, an open "
        "circuit, a remembered vendor refusal)",
        "required": False,
        "schema": {"type": "integer", "minimum": 1},
    },
}


def components(kinds: Sequence[str], inputs: dict[str, Any]) -> dict[str, Any]:
    """Every schema the document refers to: the fixed shapes, and each installed kind's input."""
    return {
        "schemas": {
            "Problem": problem_schema(),
            "UpstreamDetail": UPSTREAM_DETAIL,
            "FieldError": FIELD_ERROR,
            "LoginResult": LOGIN_RESULT,
            "Kind": kind_schema(kinds),
            "ProviderList": PROVIDER_LIST,
            "Health": HEALTH,
            "Readiness": READINESS,
            **inputs,
        },
        "headers": dict(RESPONSE_HEADERS),
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a client's API key (`agw_<id>_<secret>`)",
            }
        },
    }
