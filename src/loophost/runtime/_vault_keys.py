"""The vault key ring: secrets are encrypted at rest with AES-256-GCM, under a key that never enters the database.

Where the keys come from, first match wins:
1. `RuntimeConfig.vault_key` (tests, embedding applications);
2. the `LOOPHOST_VAULT_KEY` environment variable;
3. a key file (`RuntimeConfig.vault_key_file`; `Runtime.from_url` puts it beside a database file,
   `<database>.vault-key`), generated with mode 0600 on first start;
4. none of these (an in-memory runtime): a random key that lives as long as the process.

Each source holds one or more keys (base64url of 32 bytes), separated by commas or newlines. The first one
encrypts; every one decrypts, picked by the key id written in front of each ciphertext. That is what makes
rotation possible without downtime (docs/vaults.md): put the new key first, keep the old one behind it until
every credential was re-encrypted (`Vaults.reencrypt`), then drop it.

A ciphertext is `version (1 byte) | key id (8 bytes) | nonce (12 bytes) | AES-GCM(secret JSON)`, with the
credential's id as associated data: a ciphertext copied onto another credential's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
ENV_VAR = "LOOPHOST_VAULT_KEY"


class VaultKeyError(Exception):
    """A key that cannot be read, or a ciphertext that no key of the ring opens (the message holds no secret)."""


def new_vault_key() -> str:
    """A fresh key in the form the ring reads (base64url, 32 random bytes)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VaultKeyError("a vault key is not valid base64url") from exc
    if len(raw) != 32:
        raise VaultKeyError(f"a vault key must be 32 bytes (base64url), got {len(raw)}")
    return raw


def _parse(text: str) -> list[bytes]:
    keys = [_decode_key(part.strip()) for part in text.replace("\n", ",").split(",") if part.strip()]
    if not keys:
        raise VaultKeyError("no vault key found")
    return keys


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"loophost-vault-key-id" + key).digest()[:_KEY_ID_BYTES]


def read_or_create_key_file(path: Path) -> str:
    """The key file's text; created with one new key (mode 0600, exclusively: two processes starting at once
    agree on one key) when it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as file:
        file.write(new_vault_key() + "\n")
    return path.read_text()


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a ring's keys came from, for logs and docs (never the key itself)."""

    kind: str  # "config" | "environment" | "file" | "ephemeral"
    path: Path | None = None


class VaultKeyRing:
    """Encrypts a credential's secrets (a JSON object of strings) and decrypts them with whichever key sealed them."""

    def __init__(self, keys: list[bytes], source: KeySource) -> None:
        if not keys:
            raise VaultKeyError("a key ring needs at least one key")
        self._keys = {_key_id(key): AESGCM(key) for key in keys}
        self._primary = _key_id(keys[0])
        self.source = source

    @classmethod
    def load(cls, *, configured: str | None = None, key_file: Path | None = None) -> VaultKeyRing:
        """The ring from the first source that has keys (see the module docstring)."""
        if configured:
            return cls(_parse(configured), KeySource("config"))
        from_env = os.environ.get(ENV_VAR, "").strip()
        if from_env:
            return cls(_parse(from_env), KeySource("environment"))
        if key_file is not None:
            return cls(_parse(read_or_create_key_file(key_file)), KeySource("file", key_file))
        return cls([AESGCM.generate_key(bit_length=256)], KeySource("ephemeral"))

    def encrypt(self, secrets: dict[str, str], *, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(nonce, json.dumps(secrets).encode(), bound_to.encode())
        return _VERSION + self._primary + nonce + sealed

    def decrypt(self, blob: bytes, *, bound_to: str) -> dict[str, str]:
        if blob[:1] != _VERSION:
            raise VaultKeyError("unknown vault ciphertext version")
        key_id = blob[1 : 1 + _KEY_ID_BYTES]
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise VaultKeyError("the key that encrypted this credential is not in the vault key ring")
        start = 1 + _KEY_ID_BYTES
        nonce, sealed = blob[start : start + _NONCE_BYTES], blob[start + _NONCE_BYTES :]
        try:
            plain = cipher.decrypt(nonce, sealed, bound_to.encode())
        except InvalidTag as exc:
            raise VaultKeyError("a credential's secret failed authentication (wrong key or altered data)") from exc
        data = json.loads(plain)
        return {str(k): str(v) for k, v in data.items()}

    def is_current(self, blob: bytes) -> bool:
        """Whether the primary key sealed this ciphertext (else `reencrypt` rewrites it)."""
        return blob[1 : 1 + _KEY_ID_BYTES] == self._primary
