"""Reading a request body as one JSON object, with the size, time and media-type rules of the contract."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import StreamReader, web

from gateway.errors import BodyTooLarge, InvalidBody, RequestTimeout, UnsupportedMediaType

# What aiohttp decodes on every install (br and zstd need optional libraries; without them its parser
# refuses the request, with them it would decode): one documented set, whatever is installed.
CONTENT_CODINGS = frozenset({"identity", "gzip", "deflate"})


async def read_body(request: web.Request, max_bytes: int, timeout_s: float) -> bytes:
    """The raw (decoded) body: 415 unless JSON in a known coding, 413 past `max_bytes` (compressed or
    not), 408 when it has not all arrived within `timeout_s`, 400 when it cannot be read at all."""
    media_type = request.content_type
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {media_type!r}")
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in CONTENT_CODINGS:
        # Left alone, aiohttp passes an unknown coding through undecoded.
        raise UnsupportedMediaType(
            "send the body uncompressed, or with Content-Encoding gzip or deflate"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
    content = request.content
    try:
        if coding == "identity" and content.is_eof():
            # All of it arrived with the request (a small body does, in the same packet): take it
            # without arming a timer or awaiting — this runs on every request, the cache hits included.
            raw = content.read_nowait()
            if len(raw) > max_bytes:
                raise BodyTooLarge(f"the body may be at most {max_bytes} bytes")
            return raw
        async with asyncio.timeout(timeout_s):
            return await _read_at_most(content, max_bytes)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    except (web.RequestPayloadError, ConnectionError):
        # aiohttp's message may quote the bytes at fault: say what failed, never what was sent.
        what = f"is not valid {coding}" if coding != "identity" else "has broken framing"
        raise InvalidBody(f"the body {what} or was cut short", code="invalid_body") from None


async def _read_at_most(content: StreamReader, max_bytes: int) -> bytes:
    """Everything up to the body's end, or 413 as soon as more than `max_bytes` (decoded) arrived.

    `read(n)` returns whatever has arrived, not n bytes: a body in several segments needs the loop.
    Decoding is bounded too: aiohttp inflates only as far as the reader asks for, so a small gzip
    bomb stops at max_bytes + 1."""
    chunks: list[bytes] = []
    size = 0
    while not content.at_eof():
        chunk = await content.read(max_bytes + 1 - size)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"the body may be at most {max_bytes} bytes (decoded)")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a dict, or 400 invalid_json."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidBody("the body must be a JSON object", code="invalid_json")
    return body
