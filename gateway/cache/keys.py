"""Where everything the gateway keeps lives in the store: every key name, in one place.

    <prefix>:v1:{<hash>}:cred     one identity's credential (a CacheEntry)
    <prefix>:v1:{<hash>}:lock     the lease of the replica calling the vendor for it
    <prefix>:v1:{<hash>}:fail     its remembered vendor rejection (the cooldown record)
    <prefix>:v1:ban:<provider>    the provider's quota ban
    <prefix>:v1:rate:<provider>   the provider's outbound GCRA bucket
    <prefix>:v1:invalidate        the channel the replicas announce writes and deletes on

<hash> is an HMAC-SHA256 of the provider's name and the identity fields (so Redis holds no plain
identifier), keyed with `cache_key_secret`, else with a key derived from the provider's app secret — a
secret every replica already shares. The braces make it a Redis Cluster hash tag, so an identity's
three keys share one slot and each store call about it is one script on one node.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson


class KeySpace:
    def __init__(self, prefix: str, hash_secrets: Mapping[str, bytes]) -> None:
        """`hash_secrets`: the HMAC key of each provider's identity hashes, by provider name."""
        self._prefix = f"{prefix}:v1"
        self._secrets = dict(hash_secrets)
        self.channel = f"{self._prefix}:invalidate"

    def credential(self, provider: str, identity: Mapping[str, Any]) -> str:
        """The identity's credential key; its lease and failure record derive from it."""
        material = provider.encode() + b"\n" + orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)
        digest = hmac.new(self._secrets[provider], material, hashlib.sha256).hexdigest()
        return f"{self._prefix}:{{{digest[:40]}}}:cred"

    @staticmethod
    def lease(credential: str) -> str:
        return credential.removesuffix(":cred") + ":lock"

    @staticmethod
    def failure(credential: str) -> str:
        return credential.removesuffix(":cred") + ":fail"

    def ban(self, provider: str) -> str:
        return f"{self._prefix}:ban:{provider}"

    def rate(self, provider: str) -> str:
        return f"{self._prefix}:rate:{provider}"


def derived_hash_secret(app_secret: str) -> bytes:
    """The identity-hash key a provider gets when no `cache_key_secret` is configured."""
    return (
        hmac.new(app_secret.encode(), b"gateway cache key v1", hashlib.sha256).hexdigest().encode()
    )
