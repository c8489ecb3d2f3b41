"""AES-256-GCM sealing of cached values: the keys, their parsing, seal and open (pure functions).

The first key seals; any listed key opens (found by its id), so keys rotate without a flush: add the new
key first, keep the old one until the longest credential it sealed has expired, then drop it. The value's
store key — which carries the keyed hash of the identity — is the associated data, so a sealed value
copied under another identity's key does not open.

Sealed layout: b"\\x01" | len(kid) (1 byte) | kid | nonce (12 bytes) | ciphertext+tag. A value that is
not in this layout, names an unknown key id or fails authentication reads as absent: the gateway then
asks the vendor again, and never serves a value it cannot prove it wrote.

`cryptography` is imported only once keys are configured: it is ~7 MB of a gateway's ~76 MB resident
set, paid for nothing by a deployment without encryption at rest.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12


class EncryptionKeyError(ValueError):
    """An `encryption_keys` entry is not `<kid>:<base64 of 32 bytes>`."""


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    kid: str
    aead: AESGCM = field(repr=False)


def parse_encryption_keys(entries: Sequence[str]) -> list[EncryptionKey]:
    """`["<kid>:<base64 32-byte key>", …]` → keys; the message names the entry by position, never its key."""
    if not entries:
        return []
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # see the module docstring

    keys: list[EncryptionKey] = []
    for position, entry in enumerate(entries):
        kid, sep, encoded = entry.partition(":")
        if not sep or not kid or len(kid.encode()) > 255 or not kid.isprintable():
            raise EncryptionKeyError(f"encryption_keys[{position}]: expected '<kid>:<base64 key>'")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise EncryptionKeyError(
                f"encryption_keys[{position}] ({kid}): not valid base64"
            ) from None
        if len(raw) != 32:
            raise EncryptionKeyError(
                f"encryption_keys[{position}] ({kid}): AES-256 needs 32 bytes, got {len(raw)}"
            )
        if any(k.kid == kid for k in keys):
            raise EncryptionKeyError(f"encryption_keys[{position}]: key id {kid!r} is listed twice")
        keys.append(EncryptionKey(kid, AESGCM(raw)))
    return keys


def seal(key: EncryptionKey, store_key: str, plaintext: bytes) -> bytes:
    kid = key.kid.encode()
    nonce = os.urandom(
        NONCE_BYTES
    )  # random 96-bit nonces: safe far beyond any cache's write volume
    return (
        VERSION
        + bytes([len(kid)])
        + kid
        + nonce
        + key.aead.encrypt(nonce, plaintext, store_key.encode())
    )


def open_sealed(keys: Sequence[EncryptionKey], store_key: str, sealed: bytes) -> bytes | None:
    """The plaintext, or None when the value is not sealed by one of `keys` for this store key."""
    if len(sealed) < 2 or sealed[:1] != VERSION:
        return None
    kid_end = 2 + sealed[1]
    kid = sealed[2:kid_end].decode(errors="replace")
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        return None
    nonce, ciphertext = sealed[kid_end : kid_end + NONCE_BYTES], sealed[kid_end + NONCE_BYTES :]
    from cryptography.exceptions import InvalidTag  # loaded already: keys exist

    try:
        return key.aead.decrypt(nonce, ciphertext, store_key.encode())
    except (InvalidTag, ValueError):
        return None
