"""Per-session workspace directories on the host, and the uid each session's sandbox runs as.

Layout under the toolset's root (the server's `--workspaces` directory):

    <root>/<session_id>/fs/workspace              -> /workspace            (writable)
    <root>/<session_id>/fs/mnt/session/uploads    -> /mnt/session/uploads  (read-only; file resources)
    <root>/<session_id>/fs/mnt/session/outputs    -> /mnt/session/outputs  (writable; become session files)
    <root>/<session_id>/fs/tmp                    -> /tmp                  (writable)
    <root>/<session_id>/fs/<mount_path>           -> file resources mounted elsewhere (read-only)
    <root>/<session_id>/private/                  runtime only: sandbox identity, egress socket, outputs index

Why a host directory per session and not a container image: the sandbox (bwrap, see `_sandbox.py`) binds these
directories at their sandbox paths, and the file tools reach the same files through `Confined` in the runtime
process, so both always agree on what the session's files are.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._confine import OUTPUTS, TMP, UPLOADS, WORKSPACE, Confined, ToolError

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SessionDirs:
    base: Path
    fs: Path
    private: Path
    owner: tuple[int, int] | None

    def host(self, sandbox_path: str) -> Path:
        return self.fs / sandbox_path.lstrip("/")

    def load_json(self, name: str) -> Any:
        try:
            return json.loads((self.private / name).read_text())
        except (OSError, ValueError):
            return None

    def save_json(self, name: str, value: Any) -> None:
        tmp = self.private / f".{name}.tmp"
        tmp.write_text(json.dumps(value))
        tmp.replace(self.private / name)


class Workspaces:
    """Creates, finds and removes session directories under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _base(self, session_id: str) -> Path:
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"not a session id: {session_id!r}")
        return self.root / session_id

    def exists(self, session_id: str) -> bool:
        return self._base(session_id).is_dir()

    def ensure(self, session_id: str) -> SessionDirs:
        """The session's directories, created on first use."""
        base = self._base(session_id)
        dirs = SessionDirs(base, base / "fs", base / "private", None)
        if (base / "private" / "ready").exists():
            return dirs
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        for path in (base, dirs.fs, dirs.fs / "mnt", dirs.fs / "mnt" / "session"):
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o755)
        dirs.private.mkdir(exist_ok=True)
        os.chmod(dirs.private, 0o700)
        for sandbox in (WORKSPACE, OUTPUTS, TMP):
            path = dirs.host(sandbox)
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o1777 if sandbox == TMP else 0o755)
        uploads = dirs.host(UPLOADS)
        uploads.mkdir(exist_ok=True)
        os.chmod(uploads, 0o755)
        (base / "private" / "ready").touch()
        return dirs

    def confined(self, dirs: SessionDirs, mounts: tuple[str, ...]) -> Confined:
        return Confined(dirs.fs, owner=dirs.owner, mounts=mounts)

    def remove(self, session_id: str) -> None:
        """Delete the session's directories (symlinks inside are removed, never followed)."""
        base = self._base(session_id)

        def retry(func: Callable[..., Any], path: str, _exc: Any) -> None:  # a directory the agent made read-only
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(path), stat.S_IRWXU)
                func(path)

        if base.exists():
            shutil.rmtree(base, onerror=retry)


def place_mount(dirs: SessionDirs, mount_path: str, content: bytes) -> None:
    """Materialize a file resource read-only at its mount path inside the session's tree.

    Resolved like every tool path (`openat2` in the session root), so a symlink the agent planted where the mount
    goes cannot redirect this privileged write to the host."""
    confined = Confined(dirs.fs)
    sandbox = confined.normalize(mount_path)
    parent, name = sandbox.rsplit("/", 1)
    try:
        current, _ = confined.make_dirs(parent, privileged=True)
    except ToolError as exc:
        raise ToolError(f"cannot mount a file at {mount_path}: {exc}") from None
    except OSError as exc:
        raise ToolError(f"cannot mount a file at {mount_path}: {exc.strerror}") from None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        dir_fd = os.open(f"/proc/self/fd/{current}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)  # whatever the agent put there, the mount wins
            fd = os.open(name, flags, 0o444, dir_fd=dir_fd)
        except IsADirectoryError:
            raise ToolError(f"cannot mount a file at {mount_path}: a directory is there") from None
        finally:
            os.close(dir_fd)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)
    finally:
        os.close(current)
