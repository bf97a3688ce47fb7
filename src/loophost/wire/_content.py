"""Content blocks of messages and tool results (spec §5.2); param and response shapes are identical."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import SparseWireModel, WireModel

# --- sources -------------------------------------------------------------------------------------------


class Base64ImageSource(WireModel):
    type: Literal["base64"] = "base64"
    media_type: str
    data: str


class UrlImageSource(WireModel):
    type: Literal["url"] = "url"
    url: str


class FileImageSource(WireModel):
    type: Literal["file"] = "file"
    file_id: str


ImageSource = Annotated[Base64ImageSource | UrlImageSource | FileImageSource, Field(discriminator="type")]


class Base64DocumentSource(WireModel):
    type: Literal["base64"] = "base64"
    media_type: str
    data: str


class PlainTextDocumentSource(WireModel):
    type: Literal["text"] = "text"
    media_type: Literal["text/plain"] = "text/plain"
    data: str


class UrlDocumentSource(WireModel):
    type: Literal["url"] = "url"
    url: str


class FileDocumentSource(WireModel):
    type: Literal["file"] = "file"
    file_id: str


DocumentSource = Annotated[
    Base64DocumentSource | PlainTextDocumentSource | UrlDocumentSource | FileDocumentSource,
    Field(discriminator="type"),
]

# --- blocks --------------------------------------------------------------------------------------------


class TextBlock(WireModel):
    """`{type:"text", text}`; also the only block a `system.message` may carry."""

    type: Literal["text"] = "text"
    text: str


class ImageBlock(WireModel):
    type: Literal["image"] = "image"
    source: ImageSource


class DocumentBlock(SparseWireModel):
    """`title`/`context` stay absent when not given, so the echo matches what the client sent."""

    type: Literal["document"] = "document"
    source: DocumentSource
    title: str | None = None
    context: str | None = None


class RedactedBlock(WireModel):
    """Placeholder for content withheld by model policy."""

    type: Literal["redacted"] = "redacted"


class SearchResultCitations(WireModel):
    enabled: bool


class SearchResultBlock(WireModel):
    type: Literal["search_result"] = "search_result"
    source: str
    title: str
    content: list[TextBlock]
    citations: SearchResultCitations


UserMessageContent = Annotated[TextBlock | ImageBlock | DocumentBlock | RedactedBlock, Field(discriminator="type")]
"""Blocks of a `user.message` and of agent-to-agent thread messages."""

ToolResultContent = Annotated[TextBlock | ImageBlock | DocumentBlock | SearchResultBlock, Field(discriminator="type")]
"""Blocks of tool results (`agent.tool_result`, `user.custom_tool_result`, ...)."""

AgentMessageContent = Annotated[TextBlock | RedactedBlock, Field(discriminator="type")]
"""Blocks of an `agent.message`."""

ContentBlock = Annotated[
    TextBlock | ImageBlock | DocumentBlock | RedactedBlock | SearchResultBlock, Field(discriminator="type")
]
"""Any content block."""
