"""The file tools (`read`, `write`, `edit`, `glob`, `grep`), run in the runtime process on the session's sandbox
filesystem through `Confined` (every path resolved inside the session root, see `_confine.py`).

They run on a worker thread (`asyncio.to_thread`): file I/O must not stall the event loop that serves every
other session.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator
from typing import Any

from ..engine._tools import ToolContext, ToolOutput
from ._confine import WORKSPACE, Confined, ToolError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_READ_LINES = 2000
MAX_READ_CHARS = 100_000
MAX_LINE_CHARS = 2000
MAX_GLOB_RESULTS = 1000
MAX_GREP_MATCHES = 500
MAX_WALK_ENTRIES = 200_000


def _str(tool_input: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = tool_input.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ToolError(f"{key} is required and must be a string")
    return value


def _decode(data: bytes, where: str) -> str:
    if b"\x00" in data[:8192]:
        raise ToolError(f"{where} is a binary file ({len(data)} bytes read); inspect it with bash")
    return data.decode("utf-8", errors="replace")


# read ----------------------------------------------------------------------------------------------------------
def read_file(confined: Confined, tool_input: dict[str, Any]) -> str:
    path = _str(tool_input, "file_path")
    assert path is not None
    view = tool_input.get("view_range")
    start, end = 1, 0
    if view is not None:
        if (
            not isinstance(view, list)
            or len(view) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in view)
            or view[0] < 1
        ):
            raise ToolError("view_range must be [start, end]: 1-based line numbers, end <= 0 meaning the end")
        start, end = view
        if 0 < end < start:
            raise ToolError(f"view_range end ({end}) is before its start ({start})")
    fd, real, st = confined.open_read(path, directory=True)
    try:
        if stat.S_ISDIR(st.st_mode):
            entries = sorted(os.scandir(fd), key=lambda e: e.name)
            names = [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries]
            return f"{real} is a directory:\n" + "\n".join(names) if names else f"{real} is an empty directory"
    finally:
        os.close(fd)
    data, real, size = confined.read_bytes(path, MAX_FILE_BYTES)
    text = _decode(data, real)
    lines = text.splitlines()
    if not lines:
        return f"{real} is empty"
    last = len(lines) if end <= 0 else min(end, len(lines))
    if start > len(lines):
        raise ToolError(f"view_range starts at line {start} but {real} has {len(lines)} lines")
    out: list[str] = []
    chars = 0
    for number in range(start, last + 1):
        line = lines[number - 1]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " … [line truncated]"
        if len(out) >= MAX_READ_LINES or chars + len(line) > MAX_READ_CHARS:
            out.append(f"… [truncated at line {number - 1} of {len(lines)}; read on with view_range]")
            break
        out.append(f"{number:>6}\t{line}")
        chars += len(line) + 8
    if size > MAX_FILE_BYTES:
        out.append(f"… [the file has {size} bytes; only the first {MAX_FILE_BYTES} were read]")
    return "\n".join(out)


# write / edit --------------------------------------------------------------------------------------------------
def write_file(confined: Confined, tool_input: dict[str, Any]) -> str:
    path = _str(tool_input, "file_path")
    content = _str(tool_input, "content")
    assert path is not None and content is not None
    data = content.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"content of {len(data)} bytes exceeds the limit of {MAX_FILE_BYTES} bytes")
    real = confined.write_bytes(path, data)
    return f"Wrote {len(data)} bytes to {real}"


def edit_file(confined: Confined, tool_input: dict[str, Any]) -> str:
    path = _str(tool_input, "file_path")
    old = _str(tool_input, "old_string")
    new = _str(tool_input, "new_string")
    replace_all = tool_input.get("replace_all", False)
    assert path is not None and old is not None and new is not None
    if not isinstance(replace_all, bool):
        raise ToolError("replace_all must be a boolean")
    if not old:
        raise ToolError("old_string must not be empty (use write to create a file)")
    if old == new:
        raise ToolError("old_string and new_string are the same; nothing to change")
    data, real, size = confined.read_bytes(path, MAX_FILE_BYTES + 1)
    if size > MAX_FILE_BYTES:
        raise ToolError(f"{real} has {size} bytes; edit handles files up to {MAX_FILE_BYTES} bytes")
    text = _decode(data, real)
    count = text.count(old)
    if count == 0:
        raise ToolError(f"old_string was not found in {real}")
    if count > 1 and not replace_all:
        raise ToolError(
            f"old_string occurs {count} times in {real}; include more context to make it unique, "
            "or set replace_all: true"
        )
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    confined.write_bytes(real, updated.encode("utf-8"))
    return f"Edited {real}: replaced {count if replace_all else 1} occurrence{'s' if replace_all and count > 1 else ''}"


# glob / grep ---------------------------------------------------------------------------------------------------
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Doublestar glob to a regex over '/'-separated relative paths: `**` crosses directories, `*` and `?` do
    not, `[...]` classes, `{a,b}` alternatives."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 2 :]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1 : close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close
        elif c == "{" and "}" in pattern[i:]:
            close = pattern.index("}", i)
            alternatives = pattern[i + 1 : close].split(",")
            out.append("(?:" + "|".join(glob_regex(a).pattern.removesuffix(r"\Z") for a in alternatives) + ")")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _split_pattern(pattern: str, path: str | None) -> tuple[str, str]:
    """(directory to walk, pattern relative to it)."""
    if pattern.startswith("/"):
        parts = pattern.split("/")
        fixed = []
        for part in parts[1:]:
            if any(ch in part for ch in "*?[{"):
                break
            fixed.append(part)
        base = "/" + "/".join(fixed[:-1] if len(fixed) == len(parts) - 1 else fixed)
        return base, pattern[len(base) :].lstrip("/")
    return path or WORKSPACE, pattern


def _walk(confined: Confined, directory: str) -> Iterator[tuple[str, str, int]]:
    """(sandbox path, name, dir fd) of every non-directory entry below `directory`; symlinks never followed."""
    fd, real, st = confined.open_read(directory, directory=True)
    try:
        if not stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{real} is not a directory")
        seen = 0
        for dirpath, _dirs, files, dirfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            rel = dirpath[2:] if dirpath.startswith("./") else ""
            for name in sorted(files):
                seen += 1
                if seen > MAX_WALK_ENTRIES:
                    return
                yield posixpath.join(real, rel, name), name, dirfd
    finally:
        os.close(fd)


def glob_files(confined: Confined, tool_input: dict[str, Any]) -> str:
    pattern = _str(tool_input, "pattern")
    path = _str(tool_input, "path", required=False)
    assert pattern is not None
    if not pattern:
        raise ToolError("pattern must not be empty")
    base, relative = _split_pattern(pattern, path)
    base = confined.normalize(base)
    regex = glob_regex(relative)
    found = sorted(p for p, _, _ in _walk(confined, base) if regex.match(posixpath.relpath(p, base)))
    if not found:
        return f"No files match {pattern!r} under {base}"
    more = len(found) - MAX_GLOB_RESULTS
    lines = found[:MAX_GLOB_RESULTS]
    if more > 0:
        lines.append(f"… [{more} more files not shown; narrow the pattern]")
    return "\n".join(lines)


def _grep_lines(regex: re.Pattern[str], name: str, dirfd: int) -> Iterator[tuple[int, str]]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dirfd)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_FILE_BYTES)
    finally:
        os.close(fd)
    if b"\x00" in data[:8192]:
        return
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if regex.search(line):
            yield number, line if len(line) <= 500 else line[:500] + " …"


def grep_files(confined: Confined, tool_input: dict[str, Any]) -> str:
    pattern = _str(tool_input, "pattern")
    path = confined.normalize(_str(tool_input, "path", required=False) or WORKSPACE)
    assert pattern is not None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
    matches: list[str] = []
    total = 0
    fd, real, st = confined.open_read(path, directory=True)
    os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        files: Iterator[tuple[str, str, int]] = _walk(confined, real)
        for where, name, dirfd in files:
            for number, line in _grep_lines(regex, name, dirfd):
                total += 1
                if len(matches) < MAX_GREP_MATCHES:
                    matches.append(f"{where}:{number}:{line}")
    else:
        parent, name = posixpath.split(real)
        pfd, _, _ = confined.open_read(parent, directory=True)
        try:
            for number, line in _grep_lines(regex, name, pfd):
                total += 1
                if len(matches) < MAX_GREP_MATCHES:
                    matches.append(f"{real}:{number}:{line}")
        finally:
            os.close(pfd)
    if not matches:
        return f"No matches for {pattern!r} in {real}"
    if total > len(matches):
        matches.append(f"… [{total - len(matches)} more matches not shown]")
    return "\n".join(matches)


# the tools -----------------------------------------------------------------------------------------------------
def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_PATH = {"type": "string", "description": "Absolute sandbox path (relative paths are under /workspace)."}


class FileTool:
    """One file tool: validates nothing itself beyond what its function checks; errors become error results."""

    def __init__(
        self,
        toolset: Any,
        name: str,
        description: str,
        input_schema: dict[str, Any],
        func: Callable[[Confined, dict[str, Any]], str],
        *,
        writes: bool = False,
    ) -> None:
        self._toolset = toolset
        self.name = name
        self.description = description
        self.input_schema = input_schema
        self._func = func
        self._writes = writes

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        try:
            confined: Confined = await self._toolset.confined(ctx)
            text = await asyncio.to_thread(self._func, confined, tool_input)
        except ToolError as exc:
            return ToolOutput(str(exc), is_error=True)
        except OSError as exc:
            return ToolOutput(f"{self.name} failed: {exc.strerror or exc}", is_error=True)
        finally:
            if self._writes:
                await self._toolset.sync_outputs(ctx)
        return ToolOutput(text)


def file_tools(toolset: Any) -> list[FileTool]:
    return [
        FileTool(
            toolset,
            "read",
            "Read a text file of the sandbox with line numbers (or list a directory). `view_range: [start, end]` "
            "selects lines (1-based, inclusive; end <= 0 reads to the end).",
            _schema({"file_path": _PATH, "view_range": {"type": "array", "items": {"type": "integer"}}}, ["file_path"]),
            read_file,
        ),
        FileTool(
            toolset,
            "write",
            "Create or overwrite a file in the sandbox (parent directories are created). Writable: /workspace, "
            "/mnt/session/outputs (files there become the session's outputs), /tmp.",
            _schema({"file_path": _PATH, "content": {"type": "string"}}, ["file_path", "content"]),
            write_file,
            writes=True,
        ),
        FileTool(
            toolset,
            "edit",
            "Replace old_string with new_string in a file. old_string must occur exactly once unless "
            "replace_all is true.",
            _schema(
                {
                    "file_path": _PATH,
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"},
                },
                ["file_path", "old_string", "new_string"],
            ),
            edit_file,
            writes=True,
        ),
        FileTool(
            toolset,
            "glob",
            "List files matching a glob pattern (`**` matches any number of directories), under `path` "
            "(default /workspace) or an absolute pattern.",
            _schema({"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
            glob_files,
        ),
        FileTool(
            toolset,
            "grep",
            "Search file contents with a regular expression (Python syntax) under `path` (a file or directory, "
            "default /workspace); prints path:line:text.",
            _schema({"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
            grep_files,
        ),
    ]
