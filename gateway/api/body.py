"""Reading a request body as one JSON object, with the size and media-type rules of the contract."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import BodyTooLarge, InvalidBody, UnsupportedMediaType


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The body as a dict: 415 unless JSON, 413 past `max_bytes`, 400 when not one JSON object."""
    media_type = request.content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {media_type!r}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)  # bounded even when chunked
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidBody("the body must be a JSON object", code="invalid_json")
    return body
