"""Files (spec §8): uploads a session can mount, and agent outputs scoped to the session that wrote them.

`downloadable` semantics. The field reports what the Claude Files API would say: uploads are
`downloadable: false`, files a session writes (its outputs) are `downloadable: true`. loophost is self-hosted
and its caller owns the bytes it uploaded, so by default it serves the content of *every* file, uploads
included (checklist item 43 downloads an upload). A runtime that wants the Claude behaviour sets
`enforce_downloadable = True`: downloading a `downloadable: false` file is then a 400 `file_not_downloadable`
(which the SDK raises as `FileNotDownloadableError`).
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeCore
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import InvalidRequest, NotFound, PayloadTooLarge
from ._ids import new_id
from .store._records import FileQuery, FileRow

"""Largest file content the runtime stores (the server's multipart limit is the same, so it bounds the body)."""
MIN_EXPIRES_IN_SECONDS = 3600
MAX_EXPIRES_IN_SECONDS = 7_776_000
MAX_LIST_IDS = 100
"""`files.list(ids=...)` takes at most this many distinct ids (SDK docs)."""
DEFAULT_MIME_TYPE = "application/octet-stream"

_MIME = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;\s*[\w.+-]+=(\"[^\"\x00-\x1f]*\"|[\w.+-]+))*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class FileContent:
    """A file's bytes with the metadata a download response needs (content type, filename)."""

    metadata: wire.FileMetadata
    content: bytes


def clean_filename(filename: str | None, mime_type: str) -> str:
    """The last path component of the uploaded name (either separator), without control characters;
    an empty one becomes `unnamed` plus the extension of the mime type when known (as the Files API does)."""
    name = _CONTROL.sub("", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if name in ("", ".", ".."):
        return "unnamed" + (mimetypes.guess_extension(mime_type.split(";", 1)[0].strip()) or "")
    return name


def resolve_mime_type(mime_type: str | None, filename: str | None) -> str:
    """The part's content type as given, else a guess from the name; refuse what cannot be a header value."""
    if mime_type is None or not mime_type.strip():
        guessed, _ = mimetypes.guess_type(filename or "")
        return guessed or DEFAULT_MIME_TYPE
    mime_type = mime_type.strip()
    if len(mime_type) > 255 or not _MIME.match(mime_type):
        raise InvalidRequest(f"invalid mime type {mime_type!r}", code="invalid_mime_type")
    return mime_type


def _metadata(row: FileRow) -> wire.FileMetadata:
    return wire.FileMetadata.model_validate(
        {
            "type": "file",
            "id": row.id,
            "filename": row.filename,
            "mime_type": row.mime_type,
            "size_bytes": row.size_bytes,
            "created_at": row.created_at,
            "downloadable": row.downloadable,
            "expires_at": row.expires_at,
            "scope": {"type": row.scope_type, "id": row.scope_id} if row.scope_id is not None else None,
        }
    )


def _expired(row: FileRow, at: datetime) -> bool:
    return row.expires_at is not None and row.expires_at <= rfc3339(at)


class FilesMixin(RuntimeCore):
    """Limits and download policy come from `RuntimeConfig` (`max_file_bytes`, `enforce_downloadable`)."""

    async def upload_file(
        self,
        workspace: str,
        filename: str | None,
        content: bytes,
        mime_type: str | None = None,
        expires_in_seconds: int | None = None,
    ) -> wire.FileMetadata:
        """Store an upload: `downloadable: false` and unscoped, like a Files API upload."""
        return await self._store_file(workspace, filename, content, mime_type, expires_in_seconds=expires_in_seconds)

    async def save_output_file(
        self, workspace: str, session_id: str, filename: str, content: bytes, mime_type: str | None = None
    ) -> wire.FileMetadata:
        """Store a file a session wrote (its `/mnt/session/outputs/`): scoped to the session, downloadable.

        The seam for the sandbox; the session must exist in the workspace."""
        await self.read_session(workspace, session_id)
        return await self._store_file(
            workspace, filename, content, mime_type, scope_session_id=session_id, downloadable=True
        )

    async def _store_file(
        self,
        workspace: str,
        filename: str | None,
        content: bytes,
        mime_type: str | None,
        *,
        expires_in_seconds: int | None = None,
        scope_session_id: str | None = None,
        downloadable: bool = False,
    ) -> wire.FileMetadata:
        if len(content) > self.config.max_file_bytes:
            raise PayloadTooLarge(
                f"file of {len(content)} bytes exceeds the limit of {self.config.max_file_bytes} bytes",
                limit=self.config.max_file_bytes,
            )
        if expires_in_seconds is not None and not (
            MIN_EXPIRES_IN_SECONDS <= expires_in_seconds <= MAX_EXPIRES_IN_SECONDS
        ):
            raise InvalidRequest(
                f"expires_in_seconds must be between {MIN_EXPIRES_IN_SECONDS} and {MAX_EXPIRES_IN_SECONDS}",
                code="invalid_expires_in_seconds",
            )
        resolved = resolve_mime_type(mime_type, filename)
        ts = now()
        row = FileRow(
            workspace=workspace,
            id=new_id("file"),
            filename=clean_filename(filename, resolved),
            mime_type=resolved,
            size_bytes=len(content),
            created_at=rfc3339(ts),
            expires_at=(
                rfc3339(ts + timedelta(seconds=expires_in_seconds)) if expires_in_seconds is not None else None
            ),
            scope_type="session" if scope_session_id is not None else None,
            scope_id=scope_session_id,
            downloadable=downloadable,
        )
        await self.store.insert_file(row, content)
        return _metadata(row)

    async def _file_row(self, workspace: str, file_id: str) -> FileRow:
        row = await self.store.get_file(workspace, file_id)
        if row is None:
            raise NotFound(f"file {file_id!r} not found", resource="file")
        return row

    async def get_file(self, workspace: str, file_id: str) -> wire.FileMetadata:
        """Metadata stays readable after `expires_at`; only the bytes become unavailable."""
        return _metadata(await self._file_row(workspace, file_id))

    async def file_content(self, workspace: str, file_id: str) -> FileContent:
        """The bytes of a file: 404 `file_expired` after its `expires_at` (the SDK's `FileExpiredError`)."""
        row = await self._file_row(workspace, file_id)
        if _expired(row, now()):
            raise NotFound(f"file {file_id!r} expired at {row.expires_at}", code="file_expired")
        if self.config.enforce_downloadable and not row.downloadable:
            raise InvalidRequest(
                f"file {file_id!r} is not downloadable; only files a session wrote are",
                code="file_not_downloadable",
            )
        content = await self.store.get_file_content(workspace, file_id)
        if content is None:  # deleted between the two reads
            raise NotFound(f"file {file_id!r} not found", resource="file")
        return FileContent(_metadata(row), content)

    async def list_files(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        scope_id: str | None = None,
        ids: list[str] | None = None,
    ) -> wire.CursorPage[wire.FileMetadata]:
        """Newest first. `ids` gives one page of the visible ones among them (unknown ids are left out)."""
        if ids is not None:
            wanted = tuple(dict.fromkeys(ids))
            if len(wanted) > MAX_LIST_IDS:
                raise InvalidRequest(f"ids takes at most {MAX_LIST_IDS} distinct ids", code="too_many_ids")
            if limit is not None or page:
                raise InvalidRequest("ids cannot be combined with limit or page", code="ids_exclusive")
            rows = await self.store.list_files(
                workspace, FileQuery(limit=max(len(wanted), 1), scope_id=scope_id, ids=wanted)
            )
            return wire.CursorPage[wire.FileMetadata](data=[_metadata(r) for r in rows], next_page=None)
        size = check_limit(limit, default=self.config.default_page_size, maximum=self.config.max_page_size)
        before = keyset(decode(page, descending=True))
        rows = await self.store.list_files(workspace, FileQuery(limit=size + 1, before=before, scope_id=scope_id))
        rows, next_page = cut_page(rows, size, descending=True)
        return wire.CursorPage[wire.FileMetadata](data=[_metadata(r) for r in rows], next_page=next_page)

    async def delete_file(self, workspace: str, file_id: str) -> wire.Deleted:
        """Sessions that mounted the file keep their resource entry (the mount simply has nothing to show)."""
        if not await self.store.delete_file(workspace, file_id):
            raise NotFound(f"file {file_id!r} not found", resource="file")
        return wire.Deleted(id=file_id, type="file_deleted")
