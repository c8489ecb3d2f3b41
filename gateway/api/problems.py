"""RFC 9457 problem documents: the only error shape the gateway answers with."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import CallerError, GatewayError
from gateway.redaction import MAX_DETAIL_TEXT, Redactor, redact_text

PROBLEM_TYPE_PREFIX = "urn:auth-gateway:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_document(
    error: GatewayError,
    request_id: str | None,
    redactor: Redactor | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The problem for `error`. `detail` and every `upstream` string are redacted (configured secrets
    when `redactor` knows them, credential shapes always) and cut, whatever raised the error: vendor
    words may reach here from a fresh answer or from a failure record kept in the store."""
    upstream = (
        error.upstream.map(lambda text: redact_text(text, redactor)) if error.upstream else None
    )
    document: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + error.code,
        "title": error.title,
        "status": error.status,
        "detail": redact_text(error.detail, redactor, limit=MAX_DETAIL_TEXT),
        "code": error.code,
        "provider": error.provider,
        "retryable": error.retryable,
        "upstream": upstream.as_dict() if upstream else None,
        "request_id": request_id,
    }
    if instance is not None:
        document["instance"] = instance  # this request's span (gateway.tracing)
    document.update(error.extensions)
    return document


def problem_response(
    error: GatewayError,
    request_id: str | None,
    redactor: Redactor | None = None,
    instance: str | None = None,
) -> web.Response:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, error.retry_after_s))
    return web.Response(
        status=error.status,
        body=orjson.dumps(problem_document(error, request_id, redactor, instance)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


class RouteNotFound(CallerError):
    status = 404
    default_code = "not_found"
    title = "Not found"


class MethodNotAllowed(CallerError):
    status = 405
    default_code = "method_not_allowed"
    title = "Method not allowed"
