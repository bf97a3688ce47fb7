"""Memory stores mounted in a session's sandbox at `/mnt/memory/<slug>`, and what the agent writes there synced
back to the store as memory versions.

Layout: `<session>/fs/mnt/memory/<slug>` holds the store's memories as files (memory `/a/b.md` is file `a/b.md`);
bwrap binds it at its sandbox path, read-only for a `read_only` attachment (`_sandbox.py`); the file tools may
write there only for `read_write` ones (`Confined`'s extra roots).

When: the store is copied in when the session's sandbox is first set up (and only then: the directory is the
session's view from then on); what changed is synced after every call of a tool that can write (bash, write,
edit) before its result is returned, so a result the model sees never announces a write the store lacks, and a
crash of the runtime cannot lose an acknowledged one; what an interrupted call wrote is synced when the session
settles (idle), every 15 s while it is in use, and when its shell is closed. The index
(`private/memory/<store id>.json`: path -> sha256 as last synced) is saved after the store has the change, so a
crash between the two makes the next sync apply it again, which adds no version (a write of the same content is
a no-op).

What is not synced (with a note in the tool result): files whose path is not a valid memory path, whose content
is not UTF-8 text or is over 100 kB, symlinks and other non-regular files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ... import wire
from ._workspace import SessionDirs

log = logging.getLogger("loophost.toolset")

MAX_MEMORY_FILES = 2000
MEMORY_ROOT = wire.MEMORY_MOUNT_ROOT

Write = Callable[[str, str], Awaitable[None]]
"""(memory path, content): create or modify the memory there."""
Remove = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MemoryMount:
    store_id: str
    sandbox_path: str
    read_only: bool


def memory_mounts(session: wire.Session) -> tuple[MemoryMount, ...]:
    return tuple(
        MemoryMount(r.memory_store_id, r.mount_path, r.access == "read_only")
        for r in session.resources
        if isinstance(r, wire.MemoryStoreResource) and r.mount_path and r.mount_path.startswith(MEMORY_ROOT + "/")
    )


def _index_path(dirs: SessionDirs, mount: MemoryMount) -> Path:
    return dirs.private / "memory" / f"{mount.store_id}.json"


def load_index(dirs: SessionDirs, mount: MemoryMount) -> dict[str, str] | None:
    try:
        found = json.loads(_index_path(dirs, mount).read_text())
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def save_index(dirs: SessionDirs, mount: MemoryMount, index: dict[str, str]) -> None:
    path = _index_path(dirs, mount)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, sort_keys=True))
    tmp.replace(path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def materialize(dirs: SessionDirs, mount: MemoryMount, memories: Sequence[tuple[str, str]]) -> None:
    """Create the mount's directory with the store's memories as files, once per session: a directory that has an
    index already is the session's own view and is left alone. Runs in a thread (file I/O)."""
    if load_index(dirs, mount) is not None:
        return
    root = dirs.host(mount.sandbox_path)
    root.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    for path, content in memories:
        target = root / path.lstrip("/")
        if not target.resolve().is_relative_to(root.resolve()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        with contextlib.suppress(OSError):  # a path that is a file and a directory at once cannot be both
            target.write_bytes(data)
            index[path] = _sha(data)
    if mount.read_only:  # the fallback sandbox cannot bind read-only: at least the modes say so
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o444)
    save_index(dirs, mount, index)


def scan(dirs: SessionDirs, mount: MemoryMount) -> tuple[dict[str, bytes], list[str]]:
    """The mount's regular files (memory path -> bytes) and notes about what cannot be synced. Nothing is
    followed: the agent controls this tree."""
    found: dict[str, bytes] = {}
    notes: list[str] = []
    try:
        top = os.open(dirs.host(mount.sandbox_path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return found, notes  # the agent removed the directory itself: everything was deleted
    try:
        for dirpath, _dirs, files, dirfd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in files:
                rel = os.path.normpath(os.path.join(dirpath, name))
                where = f"{mount.sandbox_path}/{rel}"
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
                except OSError:
                    notes.append(f"{where}: not a regular file; not saved to memory")
                    continue
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        notes.append(f"{where}: not a regular file; not saved to memory")
                        continue
                    if st.st_size > wire.MAX_CONTENT_BYTES:
                        notes.append(f"{where}: over {wire.MAX_CONTENT_BYTES} bytes; not saved to memory")
                        continue
                    data = os.read(fd, wire.MAX_CONTENT_BYTES + 1)
                finally:
                    os.close(fd)
                found["/" + rel] = data
                if len(found) >= MAX_MEMORY_FILES:
                    notes.append(f"{mount.sandbox_path}: more than {MAX_MEMORY_FILES} files; the rest not saved")
                    return found, notes
    finally:
        os.close(top)
    return found, notes


async def sync_mount(
    dirs: SessionDirs,
    mount: MemoryMount,
    write: Write,
    remove: Remove,
    scan_files: Callable[[], Awaitable[tuple[dict[str, bytes], list[str]]]],
) -> list[str]:
    """Write what changed in the mount since the last sync to the store; the notes about what was not saved."""
    index = load_index(dirs, mount)
    if index is None or mount.read_only:
        return []
    files, notes = await scan_files()
    changed = False
    try:
        for path, data in sorted(files.items()):
            digest = _sha(data)
            if index.get(path) == digest:
                continue
            where = f"{mount.sandbox_path}{path}"
            problem = wire.memory_path_problem(path)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                problem = problem or "not UTF-8 text"
            if problem is not None or len(data) > wire.MAX_CONTENT_BYTES:
                notes.append(f"{where}: {problem or 'too large'}; not saved to memory")
                continue
            await write(path, text)
            index[path] = digest
            changed = True
        for path in sorted(set(index) - set(files)):
            await remove(path)
            del index[path]
            changed = True
    finally:
        if changed:
            save_index(dirs, mount, index)
    return notes
