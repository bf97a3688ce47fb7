from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from loophost.wire import FileMetadata, FileScope

from ._helpers import T0, T1, as_json, roundtrip


def test_session_output_file_round_trips() -> None:
    doc = {
        "type": "file",
        "id": "file_011",
        "filename": "report.md",
        "mime_type": "text/markdown",
        "size_bytes": 1234,
        "created_at": T0,
        "downloadable": True,
        "expires_at": T1,
        "scope": {"type": "session", "id": "sesn_1"},
    }
    meta = roundtrip(FileMetadata, doc)
    assert isinstance(meta, FileMetadata)
    assert meta.scope == FileScope(id="sesn_1")
    assert meta.created_at == datetime(2026, 4, 7, 4, 27, 43, 197000, tzinfo=UTC)


def test_upload_defaults() -> None:
    meta = FileMetadata(id="file_1", filename="a.txt", mime_type="text/plain", size_bytes=2, created_at=T0)
    assert as_json(meta) == {
        "type": "file",
        "id": "file_1",
        "filename": "a.txt",
        "mime_type": "text/plain",
        "size_bytes": 2,
        "created_at": T0,
        "downloadable": None,
        "expires_at": None,
        "scope": None,
    }


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValidationError):
        FileMetadata(id="f", filename="a", mime_type="x", size_bytes=-1, created_at=T0)
