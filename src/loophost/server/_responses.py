"""Responses are produced only through `loophost.wire` models, serialized once, as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from .. import wire

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorEnvelope, "description": description}
    for status, description in (
        (400, "Invalid request"),
        (401, "Missing or invalid API key"),
        (404, "Not found (also: another workspace's id)"),
        (409, "Conflict with the resource's state"),
        (413, "Body over the limit"),
    )
}


def json_response(model: BaseModel, *, status_code: int = 200, exclude_unset: bool = False) -> Response:
    return Response(
        content=model.model_dump_json(by_alias=True, exclude_unset=exclude_unset),
        status_code=status_code,
        media_type="application/json",
    )
