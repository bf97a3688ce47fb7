"""Files API metadata (spec §8): uploads, and agent outputs scoped to the session that wrote them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import Timestamp, WireModel


class FileScope(WireModel):
    """`{type:"session", id}`: the file was written by that session (listed with `scope_id=<id>`)."""

    type: Literal["session"] = "session"
    id: str


class FileMetadata(WireModel):
    """A stored file. Session outputs are `downloadable: true`; uploads usually are not (inferred)."""

    type: Literal["file"] = "file"
    id: str
    filename: str
    mime_type: str
    size_bytes: Annotated[int, Field(ge=0)]
    created_at: Timestamp
    downloadable: bool | None = None
    expires_at: Timestamp | None = None
    scope: FileScope | None = None
