"""Auth aggregation gateway: one normalized /auth/<provider> API over four vendor login calls."""

from __future__ import annotations

__version__ = "0.1.0"
