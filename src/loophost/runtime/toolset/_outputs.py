"""Files an agent writes under `/mnt/session/outputs/` become Files API files scoped to the session.

Synced after every call of a tool that can write (bash, write, edit), so by the time the session goes idle its
outputs are listed by `files.list(scope_id=<session>)`: no indexing lag. A changed file replaces its earlier
version (the old file id is deleted, so the list shows what the directory holds). The index (relative path ->
size, mtime, file id) lives in the session's private directory, so a restart does not upload everything again.
Deleting the session deletes its workspace but not these files (spec section 8).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from typing import Any

from ._confine import OUTPUTS
from ._workspace import SessionDirs

log = logging.getLogger("loophost.toolset")

MAX_OUTPUT_FILES = 1000
INDEX = "outputs.json"

Save = Callable[[str, bytes], Awaitable[str]]
"""(filename, content) -> new file id."""
Delete = Callable[[str], Awaitable[None]]


def scan(dirs: SessionDirs, max_bytes: int) -> dict[str, tuple[int, int]]:
    """Regular files below the outputs directory: relative path -> (size, mtime_ns). Symlinks are ignored."""
    found: dict[str, tuple[int, int]] = {}
    top = os.open(dirs.host(OUTPUTS), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for dirpath, _dirs, files, dirfd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in files:
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = os.path.normpath(os.path.join(dirpath, name))
                if st.st_size > max_bytes:
                    log.warning("output %s of %d bytes exceeds the file limit; not saved", rel, st.st_size)
                    continue
                found[rel] = (st.st_size, st.st_mtime_ns)
                if len(found) >= MAX_OUTPUT_FILES:
                    return found
    finally:
        os.close(top)
    return found


def read_output(dirs: SessionDirs, rel: str, max_bytes: int) -> bytes | None:
    """The file's bytes, opened without following any symlink on the way (the agent controls this tree)."""
    fd = os.open(dirs.host(OUTPUTS), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in rel.split("/")[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        ffd = os.open(rel.split("/")[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        if not stat.S_ISREG(os.fstat(ffd).st_mode):
            return None
        with os.fdopen(os.dup(ffd), "rb") as f:
            return f.read(max_bytes + 1)[: max_bytes + 1]
    finally:
        os.close(ffd)


async def sync_outputs(dirs: SessionDirs, save: Save, delete: Delete, max_bytes: int) -> list[str]:
    """Upload new and changed outputs; returns the relative paths saved."""
    import asyncio

    index: dict[str, Any] = dirs.load_json(INDEX) or {}
    current = await asyncio.to_thread(scan, dirs, max_bytes)
    saved: list[str] = []
    for rel, (size, mtime) in sorted(current.items()):
        known = index.get(rel)
        if known is not None and known[0] == size and known[1] == mtime:
            continue
        content = await asyncio.to_thread(read_output, dirs, rel, max_bytes)
        if content is None or len(content) > max_bytes:
            continue
        file_id = await save(rel, content)
        if known is not None:
            with contextlib.suppress(Exception):  # already deleted by the client
                await delete(known[2])
        index[rel] = [size, mtime, file_id]
        saved.append(rel)
    if saved:
        dirs.save_json(INDEX, index)
    return saved
