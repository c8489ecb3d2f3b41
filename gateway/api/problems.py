"""RFC 9457 problem documents: the only error shape the gateway answers with."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import CallerError, GatewayError

PROBLEM_TYPE_PREFIX = "urn:auth-gateway:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_document(error: GatewayError, request_id: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "provider": error.provider,
        "retryable": error.retryable,
        "upstream": error.upstream.as_dict() if error.upstream else None,
        "request_id": request_id,
    }
    document.update(error.extensions)
    return document


def problem_response(error: GatewayError, request_id: str | None) -> web.Response:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, error.retry_after_s))
    return web.Response(
        status=error.status,
        body=orjson.dumps(problem_document(error, request_id)),
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
