"""Routes: skills and their versions (spec part 2 §5.2). The SDK sends no beta header on these calls, and none is
required. Uploads are multipart: the files as `files[]` (or `files`), each named with its path inside the skill's
one top folder, and an optional `display_name`; a version's content downloads as a zip archive.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from starlette.datastructures import UploadFile

from ... import wire
from .._deps import Runtime_, Workspace
from .._errors import ApiError
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["skills"])

Limit = Annotated[int | None, Query(description="Page size, 1-1000 (default 20)")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files[]": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "display_name": {"type": "string"},
                    },
                    "required": ["files[]"],
                }
            }
        },
    }
}


async def _upload(request: Request) -> tuple[list[tuple[str, bytes]], str | None]:
    """The uploaded files (path inside the upload, bytes) and `display_name`; 400 for a body that is not one."""
    try:
        form = await request.form()
    except Exception as exc:  # malformed multipart
        raise ApiError(400, "the body must be multipart/form-data with the skill's files", code="invalid_body") from exc
    files: list[tuple[str, bytes]] = []
    for value in [*form.getlist("files[]"), *form.getlist("files")]:
        if not isinstance(value, UploadFile):
            raise ApiError(400, "each of `files[]` must be a file", code="invalid_body")
        files.append((value.filename or "", await value.read()))
    name = form.get("display_name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "display_name must be text", code="invalid_body")
    return files, name


@router.post("/skills", response_model=wire.SkillInfo, responses=ERROR_RESPONSES, openapi_extra=_UPLOAD)
async def create_skill(request: Request, ws: Workspace, rt: Runtime_) -> Response:
    """A new skill and its first version, from one top folder holding a `SKILL.md`."""
    files, display_name = await _upload(request)
    return json_response(await rt.skills.create_skill(ws, files, display_name))


@router.get("/skills", response_model=wire.CursorPage[wire.SkillInfo], responses=ERROR_RESPONSES)
async def list_skills(
    ws: Workspace,
    rt: Runtime_,
    limit: Limit = None,
    page: Page = None,
    source: Annotated[str | None, Query(description="`custom` (every loophost skill) or `anthropic` (none)")] = None,
) -> Response:
    """Oldest first."""
    return json_response(await rt.skills.list_skills(ws, limit=limit, page=page, source=source))


@router.get("/skills/{skill_id}", response_model=wire.SkillInfo, responses=ERROR_RESPONSES)
async def get_skill(skill_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.skills.get_skill(ws, skill_id))


@router.delete("/skills/{skill_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_skill(skill_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"skill_deleted"}`; its versions go with it."""
    return json_response(await rt.skills.delete_skill(ws, skill_id))


@router.post(
    "/skills/{skill_id}/versions", response_model=wire.SkillVersion, responses=ERROR_RESPONSES, openapi_extra=_UPLOAD
)
async def create_skill_version(skill_id: str, request: Request, ws: Workspace, rt: Runtime_) -> Response:
    """A new version (it becomes `latest`); its `SKILL.md` must give the skill's name."""
    await rt.skills.get_skill(ws, skill_id)  # another workspace's skill is a 404 whatever the body
    files, _ = await _upload(request)
    return json_response(await rt.skills.create_version(ws, skill_id, files))


@router.get("/skills/{skill_id}/versions", response_model=wire.CursorPage[wire.SkillVersion], responses=ERROR_RESPONSES)
async def list_skill_versions(
    skill_id: str, ws: Workspace, rt: Runtime_, limit: Limit = None, page: Page = None
) -> Response:
    """Newest first."""
    return json_response(await rt.skills.list_versions(ws, skill_id, limit=limit, page=page))


@router.get("/skills/{skill_id}/versions/{version}", response_model=wire.SkillVersion, responses=ERROR_RESPONSES)
async def get_skill_version(skill_id: str, version: str, ws: Workspace, rt: Runtime_) -> Response:
    """`version` is a version id or `latest`."""
    return json_response(await rt.skills.get_version(ws, skill_id, version))


@router.delete("/skills/{skill_id}/versions/{version}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_skill_version(skill_id: str, version: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"skill_version_deleted"}`; a skill's only version cannot be deleted (delete the skill)."""
    return json_response(await rt.skills.delete_version(ws, skill_id, version))


@router.get(
    "/skills/{skill_id}/versions/{version}/content",
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"content": {"application/zip": {}}, "description": "The version's files"}},
)
async def download_skill_version(skill_id: str, version: str, ws: Workspace, rt: Runtime_) -> Response:
    """The version's files as a zip whose top folder is the skill's name."""
    filename, archive = await rt.skills.content(ws, skill_id, version)
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return Response(archive, media_type="application/zip", headers={"content-disposition": disposition})
