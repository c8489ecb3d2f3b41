"""Vendor signature schemes as pure functions: standard library only, time and nonce passed in."""
