from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from loophost.wire import (
    AgentMessageContent,
    ContentBlock,
    DocumentBlock,
    FileImageSource,
    ImageBlock,
    PlainTextDocumentSource,
    RedactedBlock,
    SearchResultBlock,
    TextBlock,
    ToolResultContent,
    UserMessageContent,
)

from ._helpers import as_json

BLOCKS: list[tuple[dict[str, Any], type]] = [
    ({"type": "text", "text": "hello"}, TextBlock),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}, ImageBlock),
    ({"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}, ImageBlock),
    ({"type": "image", "source": {"type": "file", "file_id": "file_1"}}, ImageBlock),
    (
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        DocumentBlock,
    ),
    (
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain"},
            "title": "T",
            "context": "C",
        },
        DocumentBlock,
    ),
    ({"type": "document", "source": {"type": "url", "url": "https://x/d.pdf"}}, DocumentBlock),
    ({"type": "document", "source": {"type": "file", "file_id": "file_2"}, "title": None}, DocumentBlock),
    ({"type": "redacted"}, RedactedBlock),
    (
        {
            "type": "search_result",
            "source": "https://example.com",
            "title": "Example",
            "content": [{"type": "text", "text": "snippet"}],
            "citations": {"enabled": True},
        },
        SearchResultBlock,
    ),
]


@pytest.mark.parametrize(("doc", "cls"), BLOCKS)
def test_every_block_shape_round_trips(doc: dict[str, Any], cls: type) -> None:
    block = TypeAdapter(ContentBlock).validate_python(doc)
    assert type(block) is cls
    assert as_json(block) == doc


def test_image_sources_are_discriminated() -> None:
    block = ImageBlock.model_validate({"type": "image", "source": {"type": "file", "file_id": "file_1"}})
    assert isinstance(block.source, FileImageSource)
    doc = DocumentBlock.model_validate(
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    )
    assert isinstance(doc.source, PlainTextDocumentSource)


def test_block_unions_are_scoped_by_where_they_appear() -> None:
    search = BLOCKS[-1][0]
    with pytest.raises(ValidationError):
        TypeAdapter(UserMessageContent).validate_python(search)
    assert isinstance(TypeAdapter(ToolResultContent).validate_python(search), SearchResultBlock)
    with pytest.raises(ValidationError):
        TypeAdapter(AgentMessageContent).validate_python({"type": "image", "source": {"type": "url", "url": "u"}})
    assert isinstance(TypeAdapter(AgentMessageContent).validate_python({"type": "redacted"}), RedactedBlock)


def test_unknown_block_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(ContentBlock).validate_python({"type": "audio", "data": "x"})


def test_plain_text_document_requires_text_plain() -> None:
    with pytest.raises(ValidationError):
        PlainTextDocumentSource.model_validate({"type": "text", "media_type": "text/html", "data": "x"})
