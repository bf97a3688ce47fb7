"""The session agent's skills unpacked into `<session>/fs/mnt/skills/<name>/`, which the sandbox binds read-only at
`/mnt/skills` (and the file tools may read but not write). Unpacked when the session's sandbox is set up; each
archive's members are checked (no absolute paths, no `..`, no links), since a skill may come from anyone."""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import zipfile
from collections.abc import Sequence

from ._workspace import SessionDirs

SKILLS_ROOT = "/mnt/skills"


def unpack_skills(dirs: SessionDirs, skills: Sequence[tuple[str, bytes]]) -> list[str]:
    """Unpack (skill name, zip whose top folder is the name) pairs; the names unpacked. Runs in a thread."""
    root = dirs.host(SKILLS_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    for name, archive in skills:
        if not name or "/" in name or name in (".", ".."):
            continue
        target = root / name
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            for member in zipped.infolist():
                path = posixpath.normpath(member.filename)
                if member.is_dir() or path.startswith(("/", "..")) or not path.startswith(name + "/"):
                    continue
                destination = root / path
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(destination, 0o755 if path.endswith((".sh", ".py")) else 0o644)
        done.append(name)
    return done
