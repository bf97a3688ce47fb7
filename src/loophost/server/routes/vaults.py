"""Routes: vaults and their credentials (spec §7; part 2 §2.4). Secrets are write-only: no answer carries one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ... import wire
from .._deps import Runtime_, Workspace
from .._responses import ERROR_RESPONSES, json_response

router = APIRouter(prefix="/v1", tags=["vaults"])

Limit = Annotated[int | None, Query(description="Page size, 1-100 (default 20); out of range is a 400")]
Page = Annotated[str | None, Query(description="Opaque cursor: a previous page's `next_page`")]
_CREDENTIAL = "/vaults/{vault_id}/credentials/{credential_id}"


@router.post("/vaults", response_model=wire.Vault, responses=ERROR_RESPONSES)
async def create_vault(params: wire.VaultCreateParams, ws: Workspace, rt: Runtime_) -> Response:
    """A vault holds credentials that sessions referencing it (`vault_ids`) use."""
    return json_response(await rt.vaults.create_vault(ws, params))


@router.get("/vaults", response_model=wire.CursorPage[wire.Vault], responses=ERROR_RESPONSES)
async def list_vaults(
    ws: Workspace, rt: Runtime_, include_archived: bool = False, limit: Limit = None, page: Page = None
) -> Response:
    """Oldest first; archived vaults only on request."""
    return json_response(await rt.vaults.list_vaults(ws, limit=limit, page=page, include_archived=include_archived))


@router.get("/vaults/{vault_id}", response_model=wire.Vault, responses=ERROR_RESPONSES)
async def get_vault(vault_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.vaults.get_vault(ws, vault_id))


@router.post("/vaults/{vault_id}", response_model=wire.Vault, responses=ERROR_RESPONSES)
async def update_vault(vault_id: str, params: wire.VaultUpdateParams, ws: Workspace, rt: Runtime_) -> Response:
    """Patch: `display_name`, and `metadata` key-wise (a null value deletes the key)."""
    return json_response(await rt.vaults.update_vault(ws, vault_id, params))


@router.post("/vaults/{vault_id}/archive", response_model=wire.Vault, responses=ERROR_RESPONSES)
async def archive_vault(vault_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Read-only from now on; its credentials are archived and their secrets purged."""
    return json_response(await rt.vaults.archive_vault(ws, vault_id))


@router.delete("/vaults/{vault_id}", response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_vault(vault_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """`{"id","type":"vault_deleted"}`; the vault's credentials go with it."""
    return json_response(await rt.vaults.delete_vault(ws, vault_id))


@router.post("/vaults/{vault_id}/credentials", response_model=wire.Credential, responses=ERROR_RESPONSES)
async def create_credential(
    vault_id: str, params: wire.CredentialCreateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """409 when an active credential of the vault has the same MCP server URL or secret name, or the vault holds
    20 active credentials already."""
    return json_response(await rt.vaults.create_credential(ws, vault_id, params))


@router.get(
    "/vaults/{vault_id}/credentials", response_model=wire.CursorPage[wire.Credential], responses=ERROR_RESPONSES
)
async def list_credentials(
    vault_id: str, ws: Workspace, rt: Runtime_, include_archived: bool = False, limit: Limit = None, page: Page = None
) -> Response:
    return json_response(
        await rt.vaults.list_credentials(ws, vault_id, limit=limit, page=page, include_archived=include_archived)
    )


@router.get(_CREDENTIAL, response_model=wire.Credential, responses=ERROR_RESPONSES)
async def get_credential(vault_id: str, credential_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.vaults.get_credential(ws, vault_id, credential_id))


@router.post(_CREDENTIAL, response_model=wire.Credential, responses=ERROR_RESPONSES)
async def update_credential(
    vault_id: str, credential_id: str, params: wire.CredentialUpdateParams, ws: Workspace, rt: Runtime_
) -> Response:
    """`auth.type` must be the stored one; URL, secret name, client id and token endpoint are immutable."""
    return json_response(await rt.vaults.update_credential(ws, vault_id, credential_id, params))


@router.post(_CREDENTIAL + "/archive", response_model=wire.Credential, responses=ERROR_RESPONSES)
async def archive_credential(vault_id: str, credential_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Purges the secret and frees the URL or name for a new credential."""
    return json_response(await rt.vaults.archive_credential(ws, vault_id, credential_id))


@router.delete(_CREDENTIAL, response_model=wire.Deleted, responses=ERROR_RESPONSES)
async def delete_credential(vault_id: str, credential_id: str, ws: Workspace, rt: Runtime_) -> Response:
    return json_response(await rt.vaults.delete_credential(ws, vault_id, credential_id))


@router.post(_CREDENTIAL + "/mcp_oauth_validate", response_model=wire.CredentialValidation, responses=ERROR_RESPONSES)
async def validate_credential(vault_id: str, credential_id: str, ws: Workspace, rt: Runtime_) -> Response:
    """Live-probes the MCP server with the credential (MCP `initialize`); a refresh is tried only on a 401."""
    return json_response(await rt.vaults.validate_credential(ws, vault_id, credential_id))
