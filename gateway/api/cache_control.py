"""The request's `Cache-Control` header, read as RFC 9111 directives (§5.2.1), not as a substring.

Directives are comma-separated, case-insensitive, each with an optional `=value` (a token or a quoted
string); whitespace around them is ignored, and so are directives the gateway does not act on.
A fresh vendor call is forced by:

- `no-cache`: "do not answer from a cache without checking with the origin" — here the origin is the
  vendor, and checking means calling it;
- `max-age=0`: the caller accepts no stored answer older than zero seconds, i.e. none (what a browser
  sends on reload). A larger `max-age` is ignored: the gateway does not serve by the age of an entry.

Anything else — `no-cachex`, `no-store`, `max-age=abc`, `only-if-cached` — leaves the cache in use.
"""

from __future__ import annotations

from collections.abc import Iterable


def directives(values: Iterable[str]) -> dict[str, str | None]:
    """Every directive in the header's values (it may be sent more than once), name lower-cased, value
    unquoted (None when there is none); a repeated directive keeps its first value."""
    found: dict[str, str | None] = {}
    for value in values:
        for part in value.split(","):
            name, equals, argument = part.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            argument = argument.strip()
            if len(argument) >= 2 and argument[0] == argument[-1] == '"':
                argument = argument[1:-1]
            found.setdefault(name, argument if equals else None)
    return found


def wants_fresh(values: Iterable[str]) -> bool:
    """Whether the caller's Cache-Control forces a fresh vendor call (see the module docstring)."""
    found = directives(values)
    if "no-cache" in found:
        return True
    max_age = found.get("max-age")
    return max_age is not None and max_age.isascii() and max_age.isdigit() and int(max_age) == 0
