"""Reading a request body as one JSON object, with the size and media-type rules of the contract."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import BodyTooLarge, InvalidBody, UnsupportedMediaType


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The raw body: 415 unless JSON, 413 past `max_bytes`."""
    media_type = request.content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {media_type!r}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)  # bounded even when chunked
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
    return raw


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a dict, or 400 invalid_json."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidBody("the body must be a JSON object", code="invalid_json")
    return body
