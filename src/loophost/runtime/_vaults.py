"""Vaults and credentials: CRUD and archive, the credential a session's MCP server connects with, and validation.

Promise (reliability.md #7): a secret written here is never returned, logged, put in an event or an error, and
never stored in plain text. Secrets are encrypted by the key ring (`_vault_keys.py`) before the store sees them;
responses are built from the stored wire JSON, which is made from the shown fields only
(`wire.credential_auth_response`); no message raised here repeats a value the caller sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeConfig
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._oauth import probe_mcp
from ._vault_keys import VaultKeyError, VaultKeyRing
from ._vault_refresh import McpCredential, RefreshAttempt, Refresher, public
from ._webhook_events import outbox_event
from .store import CredentialRow, ListQuery, Store, VaultRow

log = logging.getLogger("loophost.runtime.vaults")

MCP_AUTH_TYPES = ("mcp_oauth", "static_bearer")
_MAX_LIST = 100


@dataclass(frozen=True, slots=True)
class EnvironmentSecret:
    """An `environment_variable` credential of a session's vaults, as the egress proxy substitutes it (the
    sandbox sees only a placeholder). `allowed_hosts` None: any host. Its repr shows no value."""

    name: str
    value: str
    allowed_hosts: tuple[str, ...] | None
    header: bool
    body: bool

    def __repr__(self) -> str:
        return f"EnvironmentSecret({self.name})"


def _match_key(auth: dict[str, Any]) -> str:
    if auth["type"] in MCP_AUTH_TYPES:
        return "mcp:" + wire.normalize_url(auth["mcp_server_url"])
    return "env:" + auth["secret_name"]


def _vault_row(workspace: str, vault: wire.Vault) -> VaultRow:
    return VaultRow(
        workspace=workspace,
        id=vault.id,
        created_at=rfc3339(vault.created_at),
        archived_at=rfc3339(vault.archived_at) if vault.archived_at is not None else None,
        body=vault.model_dump_json(by_alias=True),
    )


def _ts(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


class Vaults:
    """The vault service (`Runtime.vaults`). Every call takes the caller's workspace first."""

    def __init__(self, store: Store, config: RuntimeConfig, keys: VaultKeyRing) -> None:
        self._store = store
        self._config = config
        self.keys = keys
        self.on_outbox: Callable[[], None] = lambda: None
        """Called after a write that committed webhook outbox rows (the runtime wakes the deliverer)."""
        self._refresher = Refresher(store, keys, on_outbox=lambda: self.on_outbox())

    # vaults ------------------------------------------------------------------------------------------------
    async def create_vault(self, workspace: str, params: wire.VaultCreateParams) -> wire.Vault:
        ts = now()
        vault = wire.Vault(
            id=new_id("vlt"),
            display_name=params.display_name,
            metadata=dict(params.metadata or {}),
            created_at=ts,
            updated_at=ts,
        )
        hook = outbox_event("vault.created", vault.id, workspace, at=rfc3339(ts))
        await self._store.put_vault(_vault_row(workspace, vault), webhooks=(hook,))
        self.on_outbox()
        return vault

    async def get_vault(self, workspace: str, vault_id: str) -> wire.Vault:
        row = await self._store.get_vault(workspace, vault_id)
        if row is None:
            raise NotFound(f"vault {vault_id!r} not found", resource="vault")
        return wire.Vault.model_validate_json(row.body)

    async def update_vault(self, workspace: str, vault_id: str, params: wire.VaultUpdateParams) -> wire.Vault:
        current = await self.get_vault(workspace, vault_id)
        if current.archived_at is not None:
            raise Conflict(f"vault {vault_id!r} is archived and read-only", code="archived")
        given = params.model_fields_set
        update: dict[str, Any] = {}
        if "display_name" in given and params.display_name is not None:
            update["display_name"] = params.display_name
        if "metadata" in given:
            try:
                update["metadata"] = wire.patch_metadata(current.metadata, params.metadata)
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_metadata") from exc
        candidate = current.model_copy(update=update)
        if candidate == current:
            return current
        updated = candidate.model_copy(update={"updated_at": now()})
        await self._store.put_vault(_vault_row(workspace, updated))
        return updated

    async def list_vaults(
        self, workspace: str, *, limit: int | None = None, page: str | None = None, include_archived: bool = False
    ) -> wire.CursorPage[wire.Vault]:
        size = check_limit(limit, default=self._config.default_page_size, maximum=_MAX_LIST)
        query = ListQuery(
            limit=size + 1, after=keyset(decode(page, descending=False)), include_archived=include_archived
        )
        rows = await self._store.list_vaults(workspace, query)
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Vault](
            data=[wire.Vault.model_validate_json(r.body) for r in rows], next_page=next_page
        )

    async def archive_vault(self, workspace: str, vault_id: str) -> wire.Vault:
        """Read-only from now on; its credentials are archived too (their secrets purged)."""
        current = await self.get_vault(workspace, vault_id)
        if current.archived_at is not None:
            raise Conflict(f"vault {vault_id!r} is already archived", code="archived")
        for row in await self._all_credentials(workspace, vault_id):
            await self._archive_row(row)
        ts = now()
        archived = current.model_copy(update={"archived_at": ts, "updated_at": ts})
        hook = outbox_event("vault.archived", vault_id, workspace, at=rfc3339(ts))
        await self._store.put_vault(_vault_row(workspace, archived), webhooks=(hook,))
        self.on_outbox()
        return archived

    async def delete_vault(self, workspace: str, vault_id: str) -> wire.Deleted:
        """Its credentials go with it, announced by the one `vault.deleted` event."""
        hook = outbox_event("vault.deleted", vault_id, workspace)
        if not await self._store.delete_vault(workspace, vault_id, webhooks=(hook,)):
            raise NotFound(f"vault {vault_id!r} not found", resource="vault")
        self.on_outbox()
        return wire.Deleted(id=vault_id, type="vault_deleted")

    # credentials -------------------------------------------------------------------------------------------
    async def _active_vault(self, workspace: str, vault_id: str) -> wire.Vault:
        vault = await self.get_vault(workspace, vault_id)
        if vault.archived_at is not None:
            raise Conflict(f"vault {vault_id!r} is archived and read-only", code="archived")
        return vault

    async def create_credential(
        self, workspace: str, vault_id: str, params: wire.CredentialCreateParams
    ) -> wire.Credential:
        await self._active_vault(workspace, vault_id)
        auth = params.auth
        if isinstance(auth, wire.McpOAuthCreateParams) and auth.expires_at is not None and auth.expires_at <= now():
            raise InvalidRequest("expires_at must be in the future", code="invalid_expires_at")
        ts = now()
        credential = wire.Credential.model_validate(
            {
                "id": new_id("vcrd"),
                "vault_id": vault_id,
                "display_name": params.display_name,
                "metadata": dict(params.metadata or {}),
                "auth": wire.credential_auth_response(auth),
                "created_at": ts,
                "updated_at": ts,
            }
        )
        shown = credential.auth.model_dump(mode="json")
        row = CredentialRow(
            workspace=workspace,
            id=credential.id,
            vault_id=vault_id,
            created_at=rfc3339(ts),
            archived_at=None,
            match_key=_match_key(shown),
            revision=1,
            body=credential.model_dump_json(by_alias=True),
            secret=self.keys.encrypt(wire.credential_secrets(auth), bound_to=credential.id),
        )
        hook = outbox_event("vault_credential.created", credential.id, workspace, at=rfc3339(ts), vault_id=vault_id)
        await self._store.insert_credential(row, max_active=wire.MAX_CREDENTIALS_PER_VAULT, webhooks=(hook,))
        self.on_outbox()
        return credential

    async def _row(self, workspace: str, vault_id: str, credential_id: str) -> CredentialRow:
        await self.get_vault(workspace, vault_id)
        row = await self._store.get_credential(workspace, vault_id, credential_id)
        if row is None:
            raise NotFound(f"credential {credential_id!r} not found in vault {vault_id!r}", resource="credential")
        return row

    async def get_credential(self, workspace: str, vault_id: str, credential_id: str) -> wire.Credential:
        return wire.Credential.model_validate_json((await self._row(workspace, vault_id, credential_id)).body)

    async def update_credential(
        self, workspace: str, vault_id: str, credential_id: str, params: wire.CredentialUpdateParams
    ) -> wire.Credential:
        await self._active_vault(workspace, vault_id)
        row = await self._row(workspace, vault_id, credential_id)
        current = wire.Credential.model_validate_json(row.body)
        if current.archived_at is not None:
            raise Conflict(f"credential {credential_id!r} is archived and read-only", code="archived")
        given = params.model_fields_set
        update: dict[str, Any] = {}
        secrets: dict[str, str] | None = None
        if "display_name" in given and params.display_name is not None:
            update["display_name"] = params.display_name
        if "metadata" in given:
            try:
                update["metadata"] = wire.patch_metadata(current.metadata, params.metadata)
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_metadata") from exc
        if params.auth is not None:
            if params.auth.type != current.auth.type:
                raise InvalidRequest(
                    f"auth.type must stay {current.auth.type!r}: a credential's type cannot change",
                    code="auth_type_immutable",
                )
            expires = getattr(params.auth, "expires_at", None)
            if expires is not None and expires <= now():
                raise InvalidRequest("expires_at must be in the future", code="invalid_expires_at")
            stored = self._secrets(row)
            try:
                auth, secrets = wire.apply_credential_auth_update(
                    current.auth.model_dump(mode="json"), stored, params.auth
                )
            except ValueError as exc:
                raise InvalidRequest(str(exc), code="invalid_auth") from exc
            if secrets == stored:
                secrets = None
            elif auth.get("refresh_failed") is not None:  # new tokens: the recorded failure no longer holds
                auth["refresh_failed"] = None
            update["auth"] = auth
        candidate = wire.Credential.model_validate({**current.model_dump(mode="json"), **_jsonable(update)})
        if candidate == current and secrets is None:
            return current
        updated = candidate.model_copy(update={"updated_at": now()})
        await self._write(row, updated, secrets)
        return updated

    async def _write(self, row: CredentialRow, credential: wire.Credential, secrets: dict[str, str] | None) -> None:
        sealed = row.secret if secrets is None else self.keys.encrypt(secrets, bound_to=row.id)
        new = replace(row, revision=row.revision + 1, body=credential.model_dump_json(by_alias=True), secret=sealed)
        if not await self._store.update_credential(new, expected_revision=row.revision):
            raise Conflict(f"credential {row.id!r} was changed concurrently; retry", code="concurrent_update")

    async def list_credentials(
        self,
        workspace: str,
        vault_id: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
    ) -> wire.CursorPage[wire.Credential]:
        await self.get_vault(workspace, vault_id)
        size = check_limit(limit, default=self._config.default_page_size, maximum=_MAX_LIST)
        query = ListQuery(
            limit=size + 1, after=keyset(decode(page, descending=False)), include_archived=include_archived
        )
        rows = await self._store.list_credentials(workspace, vault_id, query)
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Credential](
            data=[wire.Credential.model_validate_json(r.body) for r in rows], next_page=next_page
        )

    async def archive_credential(self, workspace: str, vault_id: str, credential_id: str) -> wire.Credential:
        """Purges the secret and frees the URL or name for a new credential."""
        row = await self._row(workspace, vault_id, credential_id)
        if row.archived_at is not None:
            raise Conflict(f"credential {credential_id!r} is already archived", code="archived")
        return await self._archive_row(row)

    async def _archive_row(self, row: CredentialRow) -> wire.Credential:
        ts = now()
        current = wire.Credential.model_validate_json(row.body)
        archived = current.model_copy(update={"archived_at": ts, "updated_at": ts})
        new = CredentialRow(
            workspace=row.workspace,
            id=row.id,
            vault_id=row.vault_id,
            created_at=row.created_at,
            archived_at=rfc3339(ts),
            match_key=None,
            revision=row.revision + 1,
            body=archived.model_dump_json(by_alias=True),
            secret=None,
        )
        hook = outbox_event("vault_credential.archived", row.id, row.workspace, at=rfc3339(ts), vault_id=row.vault_id)
        if not await self._store.update_credential(new, expected_revision=row.revision, webhooks=(hook,)):
            raise Conflict(f"credential {row.id!r} was changed concurrently; retry", code="concurrent_update")
        self.on_outbox()
        return archived

    async def delete_credential(self, workspace: str, vault_id: str, credential_id: str) -> wire.Deleted:
        await self.get_vault(workspace, vault_id)
        hook = outbox_event("vault_credential.deleted", credential_id, workspace, vault_id=vault_id)
        if not await self._store.delete_credential(workspace, vault_id, credential_id, webhooks=(hook,)):
            raise NotFound(f"credential {credential_id!r} not found in vault {vault_id!r}", resource="credential")
        self.on_outbox()
        return wire.Deleted(id=credential_id, type="vault_credential_deleted")

    # secrets -----------------------------------------------------------------------------------------------
    def _secrets(self, row: CredentialRow) -> dict[str, str]:
        """The secrets a caller wrote (without the runtime's refresh state)."""
        if row.secret is None:
            return {}
        return public(self.keys.decrypt(row.secret, bound_to=row.id))

    async def _all_credentials(self, workspace: str, vault_id: str, *, archived: bool = False) -> list[CredentialRow]:
        rows: list[CredentialRow] = []
        after: tuple[str, str] | None = None
        while True:
            page = await self._store.list_credentials(
                workspace, vault_id, ListQuery(limit=_MAX_LIST, after=after, include_archived=archived)
            )
            rows += page
            if len(page) < _MAX_LIST:
                return rows
            after = (page[-1].created_at, page[-1].id)

    async def mcp_credential(self, workspace: str, vault_ids: Sequence[str], url: str) -> McpCredential | None:
        """The credential an MCP server at `url` connects with: the first active MCP credential, in `vault_ids`
        order, whose normalized server URL is the server's. None when no vault has one (connect without)."""
        key = "mcp:" + wire.normalize_url(url)
        for vault_id in vault_ids:
            row = next((r for r in await self._all_credentials(workspace, vault_id) if r.match_key == key), None)
            if row is None or row.secret is None:
                continue
            try:
                credential = self._refresher.credential_of(row)
            except VaultKeyError:
                log.error("credential %s of vault %s cannot be decrypted with the vault key ring", row.id, vault_id)
                raise
            if credential is not None:
                return credential
        return None

    async def environment_secrets(self, workspace: str, vault_ids: Sequence[str]) -> list[EnvironmentSecret]:
        """The active `environment_variable` credentials of the vaults, by name: the first vault in `vault_ids`
        order that has a name wins. A credential that cannot be decrypted is left out (and logged, by id)."""
        found: dict[str, EnvironmentSecret] = {}
        for vault_id in vault_ids:
            for row in await self._all_credentials(workspace, vault_id):
                if row.match_key is None or not row.match_key.startswith("env:") or row.secret is None:
                    continue
                auth = json.loads(row.body)["auth"]
                if auth["secret_name"] in found:
                    continue
                try:
                    value = self._secrets(row).get("secret_value")
                except VaultKeyError:
                    log.error("credential %s of vault %s cannot be decrypted with the vault key ring", row.id, vault_id)
                    continue
                if not value:
                    continue
                networking = auth["networking"]
                hosts = tuple(networking["allowed_hosts"]) if networking["type"] == "limited" else None
                location = auth["injection_location"]
                found[auth["secret_name"]] = EnvironmentSecret(
                    auth["secret_name"], value, hosts, bool(location["header"]), bool(location["body"])
                )
        return list(found.values())

    async def refresh_mcp_credential(self, stale: McpCredential) -> McpCredential | None:
        """A new token for a credential the MCP server refused (401/403) or that expired, or None when there is
        none to be had (see `_vault_refresh.py`: one exchange across sessions and nodes, compare-and-set, a
        failure recorded on the credential as `auth.refresh_failed`)."""
        return (await self._refresher.refresh(stale)).credential

    async def validate_credential(self, workspace: str, vault_id: str, credential_id: str) -> wire.CredentialValidation:
        """Probe the MCP server with the credential (`initialize`); on a 401, try the refresh exchange."""
        row = await self._row(workspace, vault_id, credential_id)
        current = wire.Credential.model_validate_json(row.body)
        auth = current.auth
        if isinstance(auth, wire.EnvironmentVariableAuth):
            raise InvalidRequest("only MCP credentials can be validated", code="not_an_mcp_credential")
        if row.archived_at is not None:
            raise Conflict(f"credential {credential_id!r} is archived", code="archived")
        secrets = self._secrets(row)
        has_refresh = bool(secrets.get("refresh_token"))
        result: dict[str, Any] = {
            "credential_id": credential_id,
            "vault_id": vault_id,
            "has_refresh_token": has_refresh,
            "validated_at": now(),
            "mcp_probe": None,
            "refresh": None,
        }
        credential = self._refresher.credential_of(row)
        if credential is None:
            return wire.CredentialValidation.model_validate({**result, "status": "unknown"})
        probe = await probe_mcp(auth.mcp_server_url, credential.token, secrets.values())
        if probe.status is not None and 200 <= probe.status < 300:
            return wire.CredentialValidation.model_validate({**result, "status": "valid"})
        result["mcp_probe"] = {"method": "initialize", "http_response": probe.response}
        if probe.status not in (401, 403):
            return wire.CredentialValidation.model_validate({**result, "status": "unknown"})
        if probe.status == 401:
            if not has_refresh:
                result["refresh"] = {"status": "no_refresh_token"}
            else:
                attempt: RefreshAttempt = await self._refresher.refresh(credential)
                fresh = attempt.credential
                if fresh is not None:
                    result["refresh"] = {"status": "succeeded"}
                else:
                    status = attempt.status if attempt.status in ("connect_error", "no_refresh_token") else "failed"
                    result["refresh"] = {"status": status, "http_response": attempt.response}
                if fresh is not None:
                    again = await probe_mcp(auth.mcp_server_url, fresh.token, [fresh.token, *secrets.values()])
                    if again.status is not None and 200 <= again.status < 300:
                        return wire.CredentialValidation.model_validate(
                            {**result, "status": "valid", "mcp_probe": None}
                        )
        return wire.CredentialValidation.model_validate({**result, "status": "invalid"})

    async def reencrypt(self, workspace: str) -> int:
        """Re-seal every active credential of the workspace under the ring's primary key (key rotation); returns
        how many were rewritten."""
        count = 0
        after: tuple[str, str] | None = None
        while True:
            vaults = await self._store.list_vaults(
                workspace, ListQuery(limit=_MAX_LIST, after=after, include_archived=True)
            )
            for vault in vaults:
                for row in await self._all_credentials(workspace, vault.id):
                    if row.secret is None or self.keys.is_current(row.secret):
                        continue
                    sealed = self.keys.encrypt(self.keys.decrypt(row.secret, bound_to=row.id), bound_to=row.id)
                    new = replace(row, revision=row.revision + 1, secret=sealed)
                    if await self._store.update_credential(new, expected_revision=row.revision):
                        count += 1
            if len(vaults) < _MAX_LIST:
                return count
            after = (vaults[-1].created_at, vaults[-1].id)


def _jsonable(update: dict[str, Any]) -> dict[str, Any]:
    """An update whose values may hold datetimes, as JSON values (for `model_validate` over a JSON dump)."""
    return json.loads(json.dumps(update, default=lambda v: rfc3339(v) if isinstance(v, datetime) else str(v)))
