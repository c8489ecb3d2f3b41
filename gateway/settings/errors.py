"""`ConfigError`, and the rule for provider names."""

from __future__ import annotations

import re

PROVIDER_NAME = re.compile(r"^[a-z0-9-]+$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names each key at fault."""
