from __future__ import annotations

from loophost.wire import (
    AgentMessageEvent,
    BidirectionalPage,
    CursorPage,
    Deleted,
    FileMetadata,
    SessionEvent,
    UnknownEvent,
)

from ._helpers import T0, as_json, roundtrip

FILE = {
    "type": "file",
    "id": "file_1",
    "filename": "a.txt",
    "mime_type": "text/plain",
    "size_bytes": 2,
    "created_at": T0,
    "downloadable": False,
    "expires_at": None,
    "scope": None,
}


def test_cursor_page_round_trips_with_typed_items() -> None:
    doc = {"data": [FILE], "next_page": "page_abc"}
    page = CursorPage[FileMetadata].model_validate(doc)
    assert isinstance(page.data[0], FileMetadata)
    assert page.next_page == "page_abc"
    assert as_json(page) == doc


def test_last_page_has_null_next_page() -> None:
    page = CursorPage[FileMetadata](data=[])
    assert as_json(page) == {"data": [], "next_page": None}


def test_bidirectional_page_adds_prev_page() -> None:
    page = BidirectionalPage[FileMetadata].model_validate({"data": [FILE], "next_page": None, "prev_page": "p"})
    assert page.prev_page == "p"
    assert as_json(page) == {"data": [FILE], "next_page": None, "prev_page": "p"}


def test_event_pages_keep_unknown_events() -> None:
    doc = {
        "data": [
            {
                "id": "sevt_1",
                "type": "agent.message",
                "processed_at": T0,
                "content": [{"type": "text", "text": "hi"}],
            },
            {"id": "sevt_2", "type": "workflow_run.created", "processed_at": T0, "workflow_run_id": "wr_1"},
        ],
        "next_page": None,
    }
    page = CursorPage[SessionEvent].model_validate(doc)
    assert isinstance(page.data[0], AgentMessageEvent)
    assert isinstance(page.data[1], UnknownEvent)
    assert as_json(page) == doc


def test_deleted_confirmations() -> None:
    for kind in ("environment_deleted", "session_deleted", "file_deleted", "session_resource_deleted"):
        deleted = roundtrip(Deleted, {"id": "x_1", "type": kind})
        assert isinstance(deleted, Deleted)
        assert deleted.type == kind
