"""Memory stores, memories and memory versions (spec part 2 §5.1; SDK `types/beta/*memory*`).

The path rules are checked once, here, at the edge: `memory_path_problem` says what is wrong with a path (or
None), and the params models run it, so the runtime only ever sees valid paths.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import Field, field_validator

from ._base import ParamsModel, Timestamp, WireModel
from ._metadata import check_metadata

MemoryView = Literal["basic", "full"]
MemoryOperation = Literal["created", "modified", "deleted"]

MAX_PATH_BYTES = 1024
MAX_PATH_SEGMENTS = 20
MAX_CONTENT_BYTES = 102_400
MAX_STORE_NAME = 255
MAX_STORE_DESCRIPTION = 1024
MAX_MEMORY_INSTRUCTIONS = 4096
MAX_MEMORY_STORES_PER_SESSION = 8
MEMORY_MOUNT_ROOT = "/mnt/memory"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _bad_character(text: str) -> str | None:
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return f"U+{ord(ch):04X}"
    return None


def memory_path_problem(path: str) -> str | None:
    """Why `path` is not a valid memory path, or None: starts with `/`; 1-20 segments, none empty, `.` or `..`; no
    control or format characters, U+2028 or U+2029; NFC; at most 1,024 bytes of UTF-8."""
    if not path.startswith("/"):
        return "a memory path must start with '/'"
    bad = _bad_character(path)
    if bad is not None:
        return f"a memory path cannot contain control, format or separator characters ({bad})"
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return f"a memory path is at most {MAX_PATH_BYTES} bytes of UTF-8"
    if not unicodedata.is_normalized("NFC", path):
        return "a memory path must be in Unicode Normalization Form C"
    segments = path[1:].split("/")
    if len(segments) > MAX_PATH_SEGMENTS:
        return f"a memory path has at most {MAX_PATH_SEGMENTS} segments"
    for segment in segments:
        if segment in ("", ".", ".."):
            return "a memory path segment cannot be empty, '.' or '..'"
    return None


def path_prefix_problem(prefix: str) -> str | None:
    """Why `prefix` is not a valid `path_prefix` (`/`, or a valid path followed by `/`), or None."""
    if not prefix.endswith("/"):
        return "path_prefix must end with '/'"
    if prefix == "/":
        return None
    return memory_path_problem(prefix[:-1])


def content_problem(content: str) -> str | None:
    if "\x00" in content:
        return "memory content cannot contain NUL characters"
    if len(content.encode("utf-8", errors="surrogatepass")) > MAX_CONTENT_BYTES:
        return f"memory content is at most {MAX_CONTENT_BYTES} bytes of UTF-8"
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        return "memory content must be valid UTF-8 text"
    return None


def check_path(path: str) -> str:
    if (problem := memory_path_problem(path)) is not None:
        raise ValueError(problem)
    return path


def check_content(content: str | None) -> str | None:
    if content is not None and (problem := content_problem(content)) is not None:
        raise ValueError(problem)
    return content


def check_sha256(value: str | None) -> str | None:
    if value is not None and not _SHA256.match(value):
        raise ValueError("content_sha256 must be 64 lowercase hexadecimal characters")
    return value


def check_store_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not 1 <= len(name) <= MAX_STORE_NAME:
        raise ValueError(f"name must be 1-{MAX_STORE_NAME} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValueError("name cannot contain control characters")
    return name


def mount_slug(name: str) -> str:
    """The directory of a store under /mnt/memory: the name lowercased, each run of characters other than ASCII
    letters and digits one hyphen (`memory` when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    return slug or "memory"


# actors --------------------------------------------------------------------------------------------------------
class SessionActor(WireModel):
    type: Literal["session_actor"] = "session_actor"
    session_id: str


class ApiActor(WireModel):
    type: Literal["api_actor"] = "api_actor"
    api_key_id: str


class UserActor(WireModel):
    type: Literal["user_actor"] = "user_actor"
    user_id: str


class ServiceAccountActor(WireModel):
    type: Literal["service_account_actor"] = "service_account_actor"
    service_account_id: str


Actor = Annotated[SessionActor | ApiActor | UserActor | ServiceAccountActor, Field(discriminator="type")]


# stores --------------------------------------------------------------------------------------------------------
class MemoryStore(WireModel):
    type: Literal["memory_store"] = "memory_store"
    id: str
    name: str
    description: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


class MemoryStoreCreateParams(ParamsModel):
    name: str
    description: Annotated[str, Field(max_length=MAX_STORE_DESCRIPTION)] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_store_name(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_metadata(value)
        return value


class MemoryStoreUpdateParams(ParamsModel):
    """Patch: omitted keeps; `description: ""` clears; `metadata` merges key-wise (a null value deletes the key)."""

    name: str | None = None
    description: Annotated[str, Field(max_length=MAX_STORE_DESCRIPTION)] | None = None
    metadata: dict[str, str | None] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return check_store_name(value)


# memories ------------------------------------------------------------------------------------------------------
class Memory(WireModel):
    type: Literal["memory"] = "memory"
    id: str
    memory_store_id: str
    memory_version_id: str
    path: str
    content_sha256: str
    content_size_bytes: int
    content: str | None = None
    created_at: Timestamp
    updated_at: Timestamp


class MemoryPrefix(WireModel):
    type: Literal["memory_prefix"] = "memory_prefix"
    path: str


MemoryListItem = Annotated[Memory | MemoryPrefix, Field(discriminator="type")]


class MemoryCreateParams(ParamsModel):
    path: str
    content: str | None

    _path = field_validator("path")(check_path)
    _content = field_validator("content")(check_content)


class MemoryPrecondition(ParamsModel):
    type: Literal["content_sha256"]
    content_sha256: str | None = None

    _sha = field_validator("content_sha256")(check_sha256)


class MemoryUpdateParams(ParamsModel):
    """Omitted `content`/`path` keep the current value (null too: there is no clearing either)."""

    content: str | None = None
    path: str | None = None
    precondition: MemoryPrecondition | None = None

    _content = field_validator("content")(check_content)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)


class MemoryVersion(WireModel):
    type: Literal["memory_version"] = "memory_version"
    id: str
    memory_id: str
    memory_store_id: str
    operation: MemoryOperation
    created_at: Timestamp
    path: str | None = None
    content: str | None = None
    content_sha256: str | None = None
    content_size_bytes: int | None = None
    created_by: Actor | None = None
    redacted_at: Timestamp | None = None
    redacted_by: Actor | None = None
