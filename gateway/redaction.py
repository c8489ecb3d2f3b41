"""One redaction mechanism for every text that leaves the gateway: log lines, problem documents, and the
failure records replayed from the store.

Two kinds of rule, applied in this order:

1. **Configured secrets** (a `Redactor` built from the settings: every provider's app secret, the
   encryption keys, the cache key secret), matched exactly — case-insensitively, and also in their
   URL-encoded and JSON-escaped forms. Values shorter than 6 characters are ignored: they would match
   ordinary words.
2. **Credential shapes**, whatever their source, so that a vendor echoing a signature, a session id or
   an access token is caught although the gateway never configured it (`SHAPE_RULES`):
   `Bearer <anything>`; `name=value` or `"name": "value"` where the name says credential (`sign`,
   `Signature`, `access_token`, `session`, `app_secret`, `password`, …); JWT-shaped `eyJ….….…`; runs of at
   least 24 characters of the base64/base64url alphabet that mix digits, upper- and lower-case letters;
   runs of at least 24 letters and digits that contain both (hex digests such as TOP's 32/64-character
   `sign`, base36 ids).

The shape rules spare ordinary vendor text: Chinese, codes such as `isv.invalid-parameter`,
`accesscontrol.limited-by-app-access-count` or `InvalidParameterValue.NickNameLengthInvalid` (dots
break runs; words carry no digits), lower-case UUIDs (dashes break them into short runs). A vendor
request id made of 24 or more random letters and digits *is* lost: it cannot be told from a token.
A random 24-character base64url token with no digit at all (about 2 % of them; fewer as they get
longer) escapes the shape rules — the exact rule still covers every configured secret.

Matches become `[redacted]` (a kept `name=` or `Bearer ` prefix stays, so the reader sees what was
there). `redact_text` adds the length cut applied to vendor words (`MAX_VENDOR_TEXT`). This module
imports nothing from the gateway, so every layer may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter configured values would match ordinary words
MAX_VENDOR_TEXT = 200  # vendor words quoted in a problem document or failure record are cut here
# A problem's `detail` is the gateway's own sentence around at most a vendor word or two.
MAX_DETAIL_TEXT = 2 * MAX_VENDOR_TEXT

_RUN = r"A-Za-z0-9+/_-"  # the base64 and base64url alphabets (hex is inside both)
_CREDENTIAL_NAMES = (
    r"app_?secret|client_?secret|secret|sign|signature|password|passwd|api_?key"
    r"|(?:access|refresh|id|session)_?token|token|session(?:_?(?:id|key))?"
)
# Each rule is (regex, whether group 1 is a prefix to keep). Lookbehinds use ASCII classes on purpose:
# `\b` and `\w` count Chinese characters as word characters, and vendors write Chinese right up to a value.
SHAPE_RULES: tuple[tuple[str, bool], ...] = (
    # An Authorization value: whatever follows the scheme is a credential. The separator may also be
    # an escaped CR, LF or tab, as in the repr of a folded header line that a parser error quotes.
    (r"((?<![A-Za-z0-9])(?i:bearer)(?:\s|\\[rnt])+)[^\s\"'\\,;()<>\[\]{}]+", True),
    # A value the text itself names as a credential (`sign=…`, `"accessToken":"…"`, `session=…`).
    (
        rf"((?<![A-Za-z0-9_])(?i:{_CREDENTIAL_NAMES})(?:\s*=\s*|\"\s*:\s*\"))[^\s\"'&,;()<>\[\]{{}}]+",
        True,
    ),
    # A JWT: base64url JSON header (`{"` is `eyJ`), payload and signature.
    (r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", False),
    # A long base64/base64url run mixing digits, upper and lower case: random, not a word or a code.
    (
        rf"(?<![{_RUN}])(?=[{_RUN}]*[0-9])(?=[{_RUN}]*[A-Z])(?=[{_RUN}]*[a-z])[{_RUN}]{{24,}}={{0,2}}",
        False,
    ),
    # A long run of letters and digits holding both: hex digests, base36 ids, unpunctuated tokens.
    (r"(?<![A-Za-z0-9])(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{24,}={0,2}", False),
)
_SHAPES = re.compile("|".join(f"(?:{rule})" for rule, _ in SHAPE_RULES))


def _keep_prefix(match: re.Match[str]) -> str:
    # Only the rules that keep a prefix have a group; at most one group is set per match.
    prefix = next((group for group in match.groups() if group is not None), "")
    return prefix + REDACTED


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as is, URL-encoded (both styles) and JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


class Redactor:
    """Replaces configured secrets and credential-shaped text with `[redacted]`.

    Built once from the settings (`Redactor(secret_values(settings))`) and shared; `Redactor()` knows no
    secrets and applies the shape rules only."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._secrets: re.Pattern[str] | None = None
        self.version = 0  # grows with each learn(): what a memo of redacted strings checks
        self.learn(secrets)

    def learn(self, secrets: Iterable[str]) -> None:
        """Redact these secrets too (a rotated secret: the old one stays, it may still be echoed)."""
        wanted = {form for s in secrets if len(s) >= MIN_SECRET_LENGTH for form in _forms(s)}
        if wanted <= self._known:
            return
        self._known |= wanted
        # One alternation, longest first (so a secret is replaced whole, not a shorter one inside it),
        # so each string is scanned once whatever the number of secrets.
        ordered = sorted(self._known, key=len, reverse=True)
        self._secrets = re.compile("(?i:" + "|".join(map(re.escape, ordered)) + ")")
        self.version += 1

    def redact(self, text: str) -> str:
        """`text` with every configured secret, then every credential shape, replaced."""
        # Secrets first, in a pass of their own: a shape match that began before a secret could
        # otherwise swallow its first half and leave the rest in the text.
        text = self.redact_secrets(text)
        return _SHAPES.sub(_keep_prefix, text) if _may_have_shape(text) else text

    def redact_secrets(self, text: str) -> str:
        """`text` with the configured secrets replaced, credential shapes left (for values that are
        the gateway's own identifiers, such as request ids, which look like tokens)."""
        return self._secrets.sub(REDACTED, text) if self._secrets is not None else text


_BEARER = re.compile(r"(?i:bearer)")


def _may_have_shape(text: str) -> bool:
    """A cheap test first (the shape alternation costs ~1 µs per string, and log lines are many): a
    shorter text can only hold a `Bearer` value or a named `name=value` / `"name":"value"`."""
    return len(text) >= 24 or "=" in text or '"' in text or _BEARER.search(text) is not None


SHAPES_ONLY = Redactor()


def redact_text(
    text: str, redactor: Redactor | None = None, *, limit: int = MAX_VENDOR_TEXT
) -> str:
    """`text` fit to show a caller or to store: redacted (configured secrets when `redactor` knows them,
    credential shapes always), then cut at `limit` characters.

    Redaction comes before the cut, so a secret straddling the limit is replaced rather than half shown;
    a `[redacted]` marker the cut would split is dropped whole."""
    redacted = (redactor or SHAPES_ONLY).redact(text)
    if len(redacted) <= limit:
        return redacted
    cut = redacted[:limit]
    split = redacted.find(REDACTED, max(0, limit - len(REDACTED) + 1))
    return redacted[:split] if -1 < split < limit else cut
