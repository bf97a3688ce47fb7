"""API keys: which workspace a key belongs to. Only hashes are kept; a key is never stored or logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_WORKSPACE = "default"
KEY_PREFIX = "lh-"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """Key hash -> workspace."""

    by_hash: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """`LOOPHOST_API_KEYS`: comma-separated `KEY` or `KEY:WORKSPACE`; a bare key belongs to `default`."""
        found: dict[str, str] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            key, _, workspace = item.partition(":")
            key, workspace = key.strip(), workspace.strip() or DEFAULT_WORKSPACE
            if not key:
                raise ValueError("an empty API key in LOOPHOST_API_KEYS")
            found[key_hash(key)] = workspace
        return cls(found)

    def workspace_for(self, key: str) -> str | None:
        digest = key_hash(key)
        for known, workspace in self.by_hash.items():
            if hmac.compare_digest(known, digest):
                return workspace
        return None

    def with_key(self, hashed: str, workspace: str) -> ApiKeys:
        return ApiKeys({**self.by_hash, hashed: workspace})

    def __len__(self) -> int:
        return len(self.by_hash)
