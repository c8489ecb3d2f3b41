"""Bodies already validated, by provider and exact bytes; and the 400 that names every bad field.

Most calls an app makes repeat a body it sent before (the hit path). The same bytes always decode and
validate to the same inputs, so a repeat skips JSON decoding, model validation and the cache-key
HMAC. Only successful validations are kept; the memo is bounded in entries and body size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gateway.api.body import decode_json_object
from gateway.errors import InvalidBody
from gateway.service import AuthService, Inputs, Provider

MAX_ENTRIES = 4096
MAX_BODY_BYTES = 1024  # larger bodies are validated every time; 4096 x 1 KiB bounds the memo


def parse_inputs(provider: Provider, raw: Mapping[str, Any]) -> Inputs:
    """The kind's validated inputs, or a 400 naming every field at fault (the vendor is not called)."""
    try:
        return provider.parse_inputs(raw)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        names = ", ".join(f["field"] for f in fields)
        raise InvalidBody(
            f"invalid input for {provider.kind}: {names}",
            provider=provider.name,
            extensions={"errors": fields},
        ) from None


class ParsedBodies:
    def __init__(self, service: AuthService) -> None:
        self._service = service
        self._memo: dict[tuple[str, bytes], tuple[Inputs, str]] = {}

    def inputs_and_key(self, provider: Provider, raw: bytes) -> tuple[Inputs, str]:
        """The validated inputs and their cache key; 400 problems exactly as without the memo."""
        memo_key = (provider.name, raw)
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        inputs = parse_inputs(provider, decode_json_object(raw))
        result = (inputs, self._service.cache_key(provider, inputs))
        if len(raw) <= MAX_BODY_BYTES:
            if len(self._memo) >= MAX_ENTRIES:
                self._memo.clear()  # simpler than LRU, and a full memo refills within seconds
            self._memo[memo_key] = result
        return result
