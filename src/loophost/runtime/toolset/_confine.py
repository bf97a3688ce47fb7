"""A session's sandbox filesystem as the runtime process sees it: sandbox paths resolved inside one host directory.

Why this exists: the file tools (read, write, edit, glob, grep) run in the runtime process, not in the sandbox, so
they must never be talked into touching a host file. Every path is resolved with `openat2(RESOLVE_IN_ROOT)` against
the session's root directory: `..`, absolute symlinks and relative symlinks are all resolved as if that directory
were `/`, atomically in the kernel, so a symlink planted by the agent (or swapped in by a concurrent bash call)
cannot point outside. What was actually opened is then checked against the session's policy (which sandbox
directories are readable, which writable) by the path the kernel reports for the open file descriptor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat
from collections.abc import Iterable
from pathlib import Path

_SYS_OPENAT2 = 437  # the same number on every architecture with the generic syscall table (x86_64, aarch64, ...)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

WORKSPACE = "/workspace"
UPLOADS = "/mnt/session/uploads"
OUTPUTS = "/mnt/session/outputs"
TMP = "/tmp"
WRITABLE_ROOTS = (WORKSPACE, OUTPUTS, TMP)
READABLE_ROOTS = (*WRITABLE_ROOTS, UPLOADS)


class ToolError(Exception):
    """A refusal or failure that becomes an error tool result (never a crash of the session)."""


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = RESOLVE_IN_ROOT) -> int:
    """`openat2(2)`; raises OSError like `os.open`. Needs Linux >= 5.6."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
    encoded = os.fsencode(path)
    for _ in range(16):  # EAGAIN: a concurrent rename raced the resolution; retry
        fd = _libc.syscall(
            _SYS_OPENAT2,
            ctypes.c_int(dirfd),
            ctypes.c_char_p(encoded),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Confined:
    """Sandbox paths of one session, resolved inside `root` (the host directory that holds /workspace, ...).

    `mounts` are the read-only session file resources (sandbox paths); `owner` is the (uid, gid) new files and
    directories are given, so the sandbox (which runs as that uid) can change what the file tools wrote.
    """

    def __init__(
        self,
        root: Path,
        *,
        owner: tuple[int, int] | None = None,
        mounts: Iterable[str] = (),
        readable: Iterable[str] = (),
        writable: Iterable[str] = (),
    ) -> None:
        """`readable`/`writable`: more sandbox directories than the standard ones (memory store mounts)."""
        self.root = root
        self._real_root = os.path.realpath(root)
        self.owner = owner
        self.mounts = frozenset(posixpath.normpath(m) for m in mounts)
        self._writable = (*WRITABLE_ROOTS, *writable)
        self._readable = (*READABLE_ROOTS, *readable, *writable)

    # paths -----------------------------------------------------------------------------------------------
    def normalize(self, path: object) -> str:
        """An absolute, normalized sandbox path. Relative paths are relative to /workspace; a host path of the
        session directory (what `pwd` prints in the fallback sandbox) is translated back to its sandbox path."""
        if not isinstance(path, str) or not path:
            raise ToolError("a path is required (a non-empty string)")
        if "\x00" in path:
            raise ToolError("the path contains a NUL character")
        if under(path, self._real_root) or under(path, str(self.root)):
            base = self._real_root if under(path, self._real_root) else str(self.root)
            path = "/" + path[len(base) :].lstrip("/")
        if not path.startswith("/"):
            path = f"{WORKSPACE}/{path}"
        normalized = posixpath.normpath(path)
        return "/" + normalized.lstrip("/")  # normpath keeps a leading '//'

    def readable(self, path: str) -> bool:
        return any(under(path, r) for r in self._readable) or path in self.mounts

    def writable(self, path: str) -> bool:
        return any(under(path, r) for r in self._writable) and path not in self.mounts

    def path_of(self, fd: int) -> str:
        """The sandbox path of an open file descriptor, from the kernel's own record of what was opened."""
        real = os.readlink(f"/proc/self/fd/{fd}")
        if not under(real, self._real_root):
            raise ToolError("the path resolves outside the session's sandbox")
        return "/" + real[len(self._real_root) :].lstrip("/")

    # opening ---------------------------------------------------------------------------------------------
    def _root_fd(self) -> int:
        return os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open_path(self, path: str) -> tuple[int, str]:
        """An O_PATH descriptor of what `path` resolves to inside the sandbox, and its real sandbox path."""
        sandbox = self.normalize(path)
        root = self._root_fd()
        try:
            fd = openat2(root, sandbox.lstrip("/") or ".", os.O_PATH)
        except FileNotFoundError:
            raise ToolError(f"{sandbox}: no such file or directory") from None
        except NotADirectoryError:
            raise ToolError(f"{sandbox}: a component of the path is not a directory") from None
        except OSError as exc:
            raise ToolError(f"{sandbox}: {exc.strerror}") from None
        finally:
            os.close(root)
        try:
            real = self.path_of(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, real

    def open_read(self, path: str, *, directory: bool = False) -> tuple[int, str, os.stat_result]:
        """A readable descriptor (regular file, or directory when `directory`), refusing what policy forbids."""
        fd, real = self.open_path(path)
        try:
            if not self.readable(real):
                raise ToolError(f"{real}: outside the readable sandbox directories ({', '.join(self._readable)})")
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                if not directory:
                    raise ToolError(f"{real} is a directory")
                return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), real, st
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"{real} is not a regular file")
            return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC), real, st
        finally:
            os.close(fd)

    def write_bytes(self, path: str, data: bytes) -> str:
        """Create or replace a file (creating missing parent directories); returns its sandbox path."""
        sandbox = self.normalize(path)
        parent, name = posixpath.split(sandbox)
        if not name or name in (".", ".."):
            raise ToolError(f"{sandbox} is not a file path")
        dir_fd, dir_real = self.make_dirs(parent)
        try:
            target = posixpath.join(dir_real, name)
            if not self.writable(target):
                raise ToolError(f"{target}: not writable (writable: {', '.join(self._writable)}; mounts are read-only)")
            try:
                fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
            except FileNotFoundError:
                create = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, create, 0o644, dir_fd=dir_fd)
                self._chown(fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a symlink: write where it points, if that is allowed
                    os.close(dir_fd)
                    dir_fd = -1
                    return self._write_through(sandbox, data)
                raise ToolError(f"{target}: {exc.strerror}") from None
            try:
                self._write_fd(fd, target, data)
            finally:
                os.close(fd)
            return target
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)

    def _write_through(self, path: str, data: bytes) -> str:
        fd, real = self.open_path(path)
        try:
            if not self.writable(real):
                raise ToolError(f"{real}: not writable (writable: {', '.join(self._writable)}; mounts are read-only)")
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"{real} is not a regular file")
            wfd = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)
        finally:
            os.close(fd)
        try:
            self._write_fd(wfd, real, data)
        finally:
            os.close(wfd)
        return real

    def _write_fd(self, fd: int, where: str, data: bytes) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{where} is not a regular file")
        if st.st_nlink > 1:
            raise ToolError(f"{where} has other hard links; it is not written through them")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def make_dirs(self, directory: str, *, privileged: bool = False) -> tuple[int, str]:
        """Open `directory`, creating the missing components inside the sandbox (each resolved in the root).

        Tools may only create directories where the agent may write; the runtime itself (`privileged`, placing
        a file resource) may create them anywhere in the session's tree."""
        root = self._root_fd()
        try:
            current = os.open(f"/proc/self/fd/{root}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(root)
        try:
            prefix = ""
            for part in [p for p in directory.split("/") if p]:
                prefix = f"{prefix}/{part}"
                root = self._root_fd()
                try:
                    nxt = openat2(root, prefix.lstrip("/"), os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    parent = self.path_of(current)
                    if not privileged and not self.writable(posixpath.join(parent, part)):
                        raise ToolError(f"{posixpath.join(parent, part)}: cannot create a directory here") from None
                    try:
                        os.mkdir(part, 0o755, dir_fd=current)
                    except FileExistsError:  # a concurrent call made it meanwhile: open it as if it had been there
                        nxt = openat2(root, prefix.lstrip("/"), os.O_PATH | os.O_DIRECTORY)
                    else:
                        nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
                        if self.owner is not None:
                            os.chown(part, *self.owner, dir_fd=current, follow_symlinks=False)
                except NotADirectoryError:
                    raise ToolError(f"{prefix} is not a directory") from None
                finally:
                    os.close(root)
                os.close(current)
                current = nxt
            return current, self.path_of(current)
        except BaseException:
            os.close(current)
            raise

    def _chown(self, fd: int) -> None:
        if self.owner is not None:
            os.fchown(fd, *self.owner)

    def read_bytes(self, path: str, limit: int) -> tuple[bytes, str, int]:
        """Up to `limit` bytes of a file, its sandbox path and its full size."""
        fd, real, st = self.open_read(path)
        try:
            chunks: list[bytes] = []
            left = limit
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks), real, st.st_size
        finally:
            os.close(fd)
