"""`provision` / `teardown`: the host-side agent for a spec, created once and reused.

Handles are content-addressed: the cache key is the host (`Provider.cache_scope()`) plus the spec's digest,
which leaves the name out, so renaming an agent does not create another. The cache lives in the process and,
optionally, in a JSON file (written atomically; one writer assumed). A cache failure is logged, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from ._errors import ClientError, ProvisionError
from ._provider import Provider
from ._specs import AgentHandle, AgentSpec

__all__ = ("ProvisionCache", "provision", "teardown")

log = logging.getLogger("loophost.client")


class ProvisionCache:
    """Handles by key, in memory, mirrored to `path` when given."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded or self.path is None:
            self._loaded = True
            return
        self._loaded = True
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                self._entries.update({str(k): v for k, v in data.items() if isinstance(v, dict)})
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("provision cache %s unreadable (%s); starting empty", self.path, exc)

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".provision-", suffix=".json")
            with os.fdopen(fd, "w") as out:
                json.dump(self._entries, out, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write the provision cache %s: %s", self.path, exc)

    def get(self, key: str) -> AgentHandle | None:
        with self._lock:
            self._load()
            entry = self._entries.get(key)
        try:
            return AgentHandle.from_json(entry) if entry is not None else None
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, handle: AgentHandle) -> None:
        with self._lock:
            self._load()
            self._entries[key] = handle.to_json()
            self._save()

    def evict(self, handle: AgentHandle) -> None:
        """Drop every entry holding this handle (teardown has the handle, not the key)."""
        with self._lock:
            self._load()
            for key in [k for k, v in self._entries.items() if v.get("agent_id") == handle.agent_id]:
                del self._entries[key]
            self._save()


_default_cache = ProvisionCache()
_caches: dict[Path, ProvisionCache] = {}


def _cache_for(cache_file: str | os.PathLike[str] | None) -> ProvisionCache:
    if cache_file is None:
        return _default_cache
    path = Path(cache_file).resolve()
    return _caches.setdefault(path, ProvisionCache(path))


def cache_key(provider: Provider, spec: AgentSpec) -> str:
    return f"provision:{provider.cache_scope()}:{spec.digest()}"


async def provision(
    provider: Provider, spec: AgentSpec, *, cache_file: str | os.PathLike[str] | None = None
) -> AgentHandle:
    """The host-side agent (and environment) for `spec`: from the cache, or created now and cached."""
    if not isinstance(spec, AgentSpec) or not spec.name:
        raise ProvisionError("provision needs an AgentSpec with a name")
    cache = _cache_for(cache_file)
    key = cache_key(provider, spec)
    cached = cache.get(key)
    if cached is not None:
        return cached
    async with provider:
        try:
            handle = await provider.provision(spec)
        except ClientError as exc:
            if isinstance(exc, ProvisionError):
                raise
            raise ProvisionError(f"provisioning {spec.name!r} failed: {exc}") from exc
    cache.put(key, handle)
    return handle


async def teardown(
    provider: Provider, handle: AgentHandle, *, cache_file: str | os.PathLike[str] | None = None
) -> None:
    """Remove the host-side agent (and environment); the cache forgets it only when that succeeded."""
    async with provider:
        await provider.teardown(handle)
    _cache_for(cache_file).evict(handle)
    if cache_file is not None:
        _default_cache.evict(handle)
