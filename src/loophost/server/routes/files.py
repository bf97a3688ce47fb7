"""Routes: files (spec §8) and session resources (spec §4.1-4.2), the things a session mounts.

`files.*` sends no beta header by default, so none is required here. Uploads are multipart (`file`, optional
`expires_in_seconds`); a download answers the raw bytes with the stored mime type, everything else is JSON.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from ... import wire
from ...runtime._files import MAX_EXPIRES_IN_SECONDS, MAX_LIST_IDS, MIN_EXPIRES_IN_SECONDS
from .._deps import Runtime_, Workspace, list_param
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["files"])

Limit = Annotated[int | None, Query(description="Page size; out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor (prefixed `page_`): a previous page's `next_page`")]
Upload = Annotated[UploadFile, File(description="The file; only the last path component of its name is kept")]
ExpiresIn = Annotated[
    int | None,
    Form(description=f"Seconds until the bytes expire, {MIN_EXPIRES_IN_SECONDS}-{MAX_EXPIRES_IN_SECONDS}"),
]


# files -------------------------------------------------------------------------------------------------------
@router.post("/files", response_model=wire.FileMetadata, responses=ERROR_RESPONSES)
async def upload_file(ws: Workspace, rt: Runtime_, file: Upload, expires_in_seconds: ExpiresIn = None) -> Response:
    """Store an upload (`downloadable: false`, as the Files API reports uploads; loophost still serves its
    bytes). The body size is bounded by the server's multipart limit before this runs; the runtime's file limit
    is a 413 too."""
    content = await file.read()
    return json_response(
        await rt.upload_file(ws, file.filename, content, file.content_type, expires_in_seconds=expires_in_seconds)
    )


_IDS_PARAM = {
    "name": "ids[]",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": True,
    "schema": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST_IDS},
    "description": "Only these files (at most 100; not with `limit` or `page`); unknown ids are left out",
}


@router.get(
    "/files",
    response_model=wire.CursorPage[wire.FileMetadata],
    responses=ERROR_RESPONSES,
    openapi_extra={"parameters": [_IDS_PARAM]},
)
async def list_files(
    request: Request,
    ws: Workspace,
    rt: Runtime_,
    limit: Annotated[int | None, Query(description="Page size, 1-1000 (default 20)")] = None,
    page: Page = None,
    scope_id: Annotated[str | None, Query(description="Only files a session wrote (its id)")] = None,
) -> Response:
    """Newest first. `ids[]` (at most 100, not with `limit`/`page`) answers one page of those that exist."""
    ids = list_param(request, "ids")
    return json_response(await rt.list_files(ws, limit=limit, page=page, scope_id=scope_id, ids=ids))


@router.get("/files/{file_id}", response_model=wire.FileMetadata, responses=ERROR_RESPONSES)
async def get_file(file_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Metadata of one file of the caller's workspace (another workspace's id is a 404)."""
    return json_response(await rt.get_file(ws, file_id))


@router.get(
    "/files/{file_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"*/*": {}}, "description": "The file's bytes, with its stored mime type"},
        **ERROR_RESPONSES,
    },
)
async def download_file(file_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """The raw bytes with the stored mime type, exactly (no charset added): the SDK hands them over as they are.
    The SDK sends `Accept: application/binary`, which is not negotiated."""
    found = await rt.file_content(ws, file_id)
    ascii_name = found.metadata.filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(found.metadata.filename)}"
    return Response(
        content=found.content,
        headers={"content-type": found.metadata.mime_type, "content-disposition": disposition},
    )


@router.delete("/files/{file_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_file(file_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"file_deleted"}`. Sessions that mounted it keep their resource entry."""
    return json_response(await rt.delete_file(ws, file_id))


# session resources -------------------------------------------------------------------------------------------
@router.post("/sessions/{session_id}/resources", response_model=wire.SessionResource, responses=ERROR_RESPONSES)
async def add_session_resource(
    session_id: str, params: wire.SessionResourceParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Attach a file (the SDK's only form; default mount `/mnt/session/uploads/<file_id>`) or a repository."""
    return json_response(await rt.add_session_resource(ws, session_id, params))


@router.get(
    "/sessions/{session_id}/resources",
    response_model=wire.CursorPage[wire.SessionResource],
    responses=ERROR_RESPONSES,
)
async def list_session_resources(
    session_id: str,
    ws: Workspace,
    rt: Runtime_,
    limit: Annotated[int | None, Query(description="Page size, 1-1000 (all when omitted)")] = None,
    page: Page = None,
) -> Response:
    """In attachment order. A repository's token is never part of a resource."""
    return json_response(await rt.list_session_resources(ws, session_id, limit=limit, page=page))


@router.get(
    "/sessions/{session_id}/resources/{resource_id}", response_model=wire.SessionResource, responses=ERROR_RESPONSES
)
async def get_session_resource(session_id: str, resource_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """One resource; a resource of another session is a 404."""
    return json_response(await rt.get_session_resource(ws, session_id, resource_id))


@router.post(
    "/sessions/{session_id}/resources/{resource_id}", response_model=wire.SessionResource, responses=ERROR_RESPONSES
)
async def update_session_resource(
    session_id: str, resource_id: str, params: wire.ResourceUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """Rotate a github_repository's `authorization_token` (other types: 400). The token is not echoed."""
    return json_response(await rt.update_session_resource(ws, session_id, resource_id, params))


@router.delete("/sessions/{session_id}/resources/{resource_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_session_resource(session_id: str, resource_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"session_resource_deleted"}`; a detached file stays in the Files API."""
    return json_response(await rt.delete_session_resource(ws, session_id, resource_id))
