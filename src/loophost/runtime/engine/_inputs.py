"""Input events as the model sees them: a queued `user.message` / `user.define_outcome` as a user prompt, a
`system.message` as extra instructions for its turn."""

from __future__ import annotations

import base64
from typing import Any

from pydantic_ai.messages import BinaryContent, ImageUrl, UserContent

from ._grader import revision_prompt


def text_of(blocks: Any) -> str:
    return "\n".join(b.get("text", "") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text")


def prompt_of(event: dict[str, Any]) -> str | list[UserContent]:
    """A queued input event as a pydantic-ai user prompt."""
    if event["type"] == "span.outcome_evaluation_end":  # the input of an outcome's revision turn
        return revision_prompt(event)
    if event["type"] == "user.define_outcome":
        rubric = event.get("rubric") or {}
        return f"{event.get('description', '')}\n\nRubric:\n{rubric.get('content', '')}".strip()
    parts: list[UserContent] = []
    for block in event.get("content") or []:
        kind = block.get("type")
        source = block.get("source") or {}
        if kind == "text":
            parts.append(block["text"])
        elif kind == "image" and source.get("type") == "base64":
            parts.append(BinaryContent(base64.b64decode(source["data"]), media_type=source["media_type"]))
        elif kind == "image" and source.get("type") == "url":
            parts.append(ImageUrl(url=source["url"]))
        elif kind == "document" and source.get("type") == "text":
            parts.append(source.get("data", ""))
    if all(isinstance(p, str) for p in parts):
        return "\n".join(p for p in parts if isinstance(p, str))
    return parts
