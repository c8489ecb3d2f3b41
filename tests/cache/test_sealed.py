"""Encryption at rest: AES-256-GCM with the store key as associated data, and key rotation."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from gateway.encryption import EncryptionKeyError, open_sealed, parse_encryption_keys, seal
from gateway.store import Write
from gateway.store.memory import MemoryStore
from gateway.store.sealed import SealedStore
from tests.store.ops import get


def new_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def test_seal_hides_the_plaintext_and_opens_again() -> None:
    """A sealed value does not contain the plaintext and opens to it with the same key."""
    [key] = parse_encryption_keys([new_key("k1")])
    sealed = seal(key, "gw:v1:{abc}:cred", b'{"token":"secret-token-value"}')
    assert b"secret-token-value" not in sealed
    assert open_sealed([key], "gw:v1:{abc}:cred", sealed) == b'{"token":"secret-token-value"}'


def test_a_value_moved_to_another_identity_does_not_open() -> None:
    """The store key is associated data: the same bytes under another key fail authentication."""
    [key] = parse_encryption_keys([new_key("k1")])
    sealed = seal(key, "gw:v1:{alice}:cred", b"x")
    assert open_sealed([key], "gw:v1:{mallory}:cred", sealed) is None


def test_tampered_unknown_or_plain_values_read_as_absent() -> None:
    """A flipped bit, an unknown key id, or a plaintext value opens to None."""
    keys = parse_encryption_keys([new_key("k1")])
    sealed = bytearray(seal(keys[0], "k", b"value"))
    sealed[-1] ^= 1
    assert open_sealed(keys, "k", bytes(sealed)) is None
    other = parse_encryption_keys([new_key("k2")])
    assert open_sealed(other, "k", seal(keys[0], "k", b"value")) is None
    assert open_sealed(keys, "k", b'{"token":"planted"}') is None
    assert open_sealed(keys, "k", b"") is None


async def test_rotation_new_key_seals_old_key_still_opens() -> None:
    """After adding a new first key, values sealed with the old one still read; new writes use the new one."""
    backend = MemoryStore()
    old_entry, new_entry = new_key("2025"), new_key("2026")
    before = SealedStore(backend, parse_encryption_keys([old_entry]))
    await before.write(Write("gw:v1:{a}:cred", b"old", 60))
    after = SealedStore(backend, parse_encryption_keys([new_entry, old_entry]))
    assert await get(after, "gw:v1:{a}:cred") == b"old"
    await after.write(Write("gw:v1:{b}:cred", b"new", 60))
    raw = await get(backend, "gw:v1:{b}:cred")
    assert raw is not None and raw[2 : 2 + 4] == b"2026"
    dropped_old = SealedStore(backend, parse_encryption_keys([new_entry]))
    assert await get(dropped_old, "gw:v1:{a}:cred") is None
    assert await get(dropped_old, "gw:v1:{b}:cred") == b"new"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["nokid"], "expected '<kid>:<base64 key>'"),
        ([":AAAA"], "expected '<kid>:<base64 key>'"),
        (["k:not base64!"], "not valid base64"),
        (["k:" + base64.b64encode(b"short").decode()], "needs 32 bytes, got 5"),
    ],
)
def test_bad_keys_are_named_by_position_without_the_key(entries: list[str], message: str) -> None:
    """Each malformed entry is refused with its position; the key material is never in the message."""
    with pytest.raises(EncryptionKeyError, match=message) as caught:
        parse_encryption_keys(entries)
    assert "encryption_keys[0]" in str(caught.value)
    assert "AAAA" not in str(caught.value) or message.startswith("expected")


def test_duplicate_key_ids_are_refused() -> None:
    """Two keys with one id would make opening ambiguous."""
    with pytest.raises(EncryptionKeyError, match="listed twice"):
        parse_encryption_keys([new_key("a"), new_key("a")])


def test_the_aes_library_is_loaded_only_once_keys_are_configured() -> None:
    """A gateway without encryption at rest does not carry cryptography's AEAD bindings (~7 MB of
    resident memory); parsing the first key loads them."""
    probe = (
        "import sys, base64, os\n"
        "import gateway.__main__, gateway.app\n"
        "from gateway.encryption import parse_encryption_keys\n"
        "loaded = lambda: any(m.startswith('cryptography.hazmat') for m in sys.modules)\n"
        "print(loaded())\n"
        "parse_encryption_keys([])\n"
        "print(loaded())\n"
        "parse_encryption_keys(['k1:' + base64.b64encode(os.urandom(32)).decode()])\n"
        "print(loaded())\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert answer.stdout.split() == ["False", "False", "True"]
