"""The fields every log line of a request carries (request id, client, cache outcome, …).

One ContextVar holds one mapping, replaced on each bind and never changed in place: a task started
during a request sees what was bound so far, and what it binds itself stays its own — the semantics of
`structlog.contextvars`, which keeps one ContextVar per key and copies the whole context to merge them
(profiled: the binds and the merge were ~5 % of a cache hit; this costs a third of that).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar(
    "gateway_log_fields", default=MappingProxyType({})
)


def new_log_context(**fields: Any) -> None:
    """Start a request's fields afresh (whatever an earlier request on this task had bound)."""
    _FIELDS.set(fields)


def bind_log_context(**fields: Any) -> None:
    """Add fields to every later log line in this context (and in tasks started from it later)."""
    _FIELDS.set({**_FIELDS.get(), **fields})


def merge_log_context(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the context's fields first, the call's own keys winning."""
    fields = _FIELDS.get()
    return {**fields, **event} if fields else event
