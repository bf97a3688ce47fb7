"""Refreshing `mcp_oauth` credentials: one refresh-token exchange for every session and node that finds the same
access token refused, the new token written back with compare-and-set, a failure recorded on the credential.

Why a claim. Two sessions (or two nodes sharing a database) that get a 401 with the same token at the same time
must not both spend the refresh token: many issuers rotate it, and the second exchange would then fail (or
revoke the first). So a refresh first *claims* the credential: a compare-and-set write of the revision it read,
with a claim (id and deadline) in the sealed secrets. Whoever loses that write, or finds a live claim, waits
until the credential changes and uses the token that was written. A claim whose holder died expires after
`CLAIM_TTL` seconds and may be taken over. In one process a lock per credential keeps the others from even
reading until the first is done.

The claim lives in the encrypted secrets (keys starting with `_` are runtime state, never secrets a caller
wrote), so the store needs no column for it and the wire document never shows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from .. import wire
from ._clock import now, rfc3339
from ._oauth import Refreshed, refresh_grant
from ._vault_keys import VaultKeyRing
from ._webhook_events import outbox_event
from .store import CredentialRow, OutboxEvent, Store

log = logging.getLogger("loophost.runtime.vaults")

CLAIM = "_refresh_claim"
CLAIM_TTL = 45.0
"""Seconds a claim holds: the token endpoint's timeout (15 s) and the writes around it, with room to spare."""
_POLL = 0.05
_EARLY = timedelta(seconds=30)
"""A token this close to its `expires_at` is refreshed before it is used."""


@dataclass(frozen=True, slots=True)
class McpCredential:
    """What an MCP connection authenticates with: the bearer token of a matched credential, and enough to find
    the credential again (to refresh it and write the new token back with compare-and-set)."""

    workspace: str
    vault_id: str
    credential_id: str
    type: str
    token: str
    revision: int
    refreshable: bool = False
    expires_at: datetime | None = None
    refresh_failed: bool = False
    """The last refresh was refused (a 4xx from the token endpoint): not tried again until the credential is
    updated, so a revoked refresh token does not cost the issuer a request per turn."""

    @property
    def expired(self) -> bool:
        """Known to be expired (or about to be): refresh before using it."""
        return self.refreshable and self.expires_at is not None and self.expires_at <= now() + _EARLY

    def __repr__(self) -> str:  # a credential in a log line or a traceback shows no token
        return f"McpCredential({self.vault_id}/{self.credential_id}, {self.type})"


RefreshStatus = Literal["succeeded", "failed", "connect_error", "no_refresh_token", "shared", "gone"]


@dataclass(frozen=True, slots=True)
class RefreshAttempt:
    """How a refresh went. `credential`: the token to use now, None when there is no new one. `status`:
    `succeeded` (this call exchanged the refresh token), `shared` (another session or node did, or the credential
    was updated meanwhile), `failed` / `connect_error` (the exchange did not work: recorded on the credential),
    `no_refresh_token` (not refreshable), `gone` (archived or deleted)."""

    credential: McpCredential | None
    status: RefreshStatus
    response: wire.ProbeHttpResponse | None = None


AuthChange = Callable[[dict[str, Any], dict[str, str]], tuple[dict[str, Any], dict[str, str]]]
"""(shown auth, secrets) -> (shown auth, secrets): what a settled refresh writes."""


def public(secrets: dict[str, str]) -> dict[str, str]:
    """The secrets a caller wrote, without the runtime's state (the claim)."""
    return {k: v for k, v in secrets.items() if not k.startswith("_")}


class Refresher:
    """Reads MCP credentials out of rows and refreshes them (see the module docstring)."""

    def __init__(self, store: Store, keys: VaultKeyRing, *, on_outbox: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._keys = keys
        self._locks: dict[str, asyncio.Lock] = {}
        self._on_outbox = on_outbox
        """Called after a write that committed webhook outbox rows (`vault_credential.refresh_failed`)."""

    def credential_of(self, row: CredentialRow) -> McpCredential | None:
        """The MCP credential a row holds (None: archived, not an MCP credential, or no token)."""
        if row.secret is None:
            return None
        auth = json.loads(row.body)["auth"]
        secrets = self._keys.decrypt(row.secret, bound_to=row.id)
        if auth["type"] == "mcp_oauth":
            token = secrets.get("access_token")
            failure = auth.get("refresh_failed") or {}
            response = failure.get("http_response") or {}
            refused = failure.get("status") == "failed" and 400 <= int(response.get("status_code") or 0) < 500
            refreshable = bool(auth.get("refresh")) and bool(secrets.get("refresh_token")) and not refused
            expires = auth.get("expires_at")
            expires_at = datetime.fromisoformat(expires) if expires else None
            if not token:
                return None
            return McpCredential(
                row.workspace, row.vault_id, row.id, "mcp_oauth", token, row.revision, refreshable, expires_at, refused
            )
        if auth["type"] == "static_bearer" and secrets.get("token"):
            return McpCredential(row.workspace, row.vault_id, row.id, "static_bearer", secrets["token"], row.revision)
        return None

    async def refresh(self, stale: McpCredential) -> RefreshAttempt:
        """A new token for `stale`, which the MCP server refused (or which expired). One exchange per credential
        across sessions and nodes; the others get the token it wrote."""
        lock = self._locks.setdefault(stale.credential_id, asyncio.Lock())
        async with lock:
            give_up = time.monotonic() + CLAIM_TTL + 5.0
            while True:
                row = await self._store.get_credential(stale.workspace, stale.vault_id, stale.credential_id)
                if row is None or row.archived_at is not None or row.secret is None:
                    return RefreshAttempt(None, "gone")
                secrets = self._keys.decrypt(row.secret, bound_to=row.id)
                if _live_claim(secrets):
                    if time.monotonic() > give_up:
                        return RefreshAttempt(None, "failed")
                    await asyncio.sleep(_POLL)
                    continue
                if row.revision != stale.revision:  # refreshed, tried, or updated since `stale` was read
                    current = self.credential_of(row)
                    if current is None:
                        return RefreshAttempt(None, "gone")
                    if current.token != stale.token:
                        return RefreshAttempt(current, "shared")
                    if json.loads(row.body)["auth"].get("refresh_failed"):
                        return RefreshAttempt(None, "failed")  # a concurrent refresh just failed: not again now
                    # the same token, no failure: another field changed; refresh this revision
                attempt = await self._exchange(row, secrets)
                if attempt is not None:
                    return attempt
                # the claim was lost to a concurrent write: read again

    async def _exchange(self, row: CredentialRow, secrets: dict[str, str]) -> RefreshAttempt | None:
        """Claim the credential, exchange the refresh token, settle. None when the claim was lost."""
        body = json.loads(row.body)
        refresh = body["auth"].get("refresh")
        if body["auth"]["type"] != "mcp_oauth" or not refresh or not secrets.get("refresh_token"):
            return RefreshAttempt(None, "no_refresh_token")
        claim_id = uuid.uuid4().hex
        claimed = replace(
            row,
            revision=row.revision + 1,
            secret=self._seal(row, {**public(secrets), CLAIM: f"{claim_id} {time.time() + CLAIM_TTL}"}),
        )
        if not await self._store.update_credential(claimed, expected_revision=row.revision):
            return None
        try:
            result = await refresh_grant(refresh, public(secrets))
        except BaseException:
            await asyncio.shield(self._settle(claimed, claim_id, lambda auth, s: (auth, s)))
            raise
        if result.status == "succeeded" and result.access_token is not None:
            written = await self._settle(claimed, claim_id, _succeeded(result))
            fresh = self.credential_of(written) if written is not None else None
            return RefreshAttempt(fresh, "succeeded" if fresh is not None else "gone")
        log.warning("refreshing credential %s of vault %s failed (%s)", row.id, row.vault_id, result.status)
        response = result.response.model_dump(mode="json") if result.response is not None else None
        failure: dict[str, Any] = {"failed_at": rfc3339(now()), "status": result.status, "http_response": response}

        def failed(auth: dict[str, Any], s: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
            return {**auth, "refresh_failed": failure}, s

        hook = outbox_event("vault_credential.refresh_failed", row.id, row.workspace, vault_id=row.vault_id)
        if await self._settle(claimed, claim_id, failed, webhooks=(hook,)) is not None:
            self._on_outbox()
        status: Literal["failed", "connect_error"] = "connect_error" if result.status == "connect_error" else "failed"
        return RefreshAttempt(None, status, result.response)

    async def _settle(
        self, claimed: CredentialRow, claim_id: str, change: AuthChange, *, webhooks: tuple[OutboxEvent, ...] = ()
    ) -> CredentialRow | None:
        """Write the outcome over the claimed row and drop the claim, with the outbox rows of `webhooks` in the
        same write. If the row changed meanwhile (a caller's update of other fields, a key rotation) the outcome
        is written over the latest row as long as it still carries this claim; a caller who replaced the
        secrets wins (None, and no webhook events)."""
        row: CredentialRow | None = claimed
        while row is not None and row.secret is not None:
            secrets = self._keys.decrypt(row.secret, bound_to=row.id)
            if secrets.get(CLAIM, "").split(" ")[0] != claim_id:
                return None
            body = json.loads(row.body)
            auth, kept = change(body["auth"], public(secrets))
            document = wire.Credential.model_validate({**body, "auth": auth, "updated_at": rfc3339(now())})
            new = replace(
                row,
                revision=row.revision + 1,
                body=document.model_dump_json(by_alias=True),
                secret=self._seal(row, kept),
            )
            if await self._store.update_credential(new, expected_revision=row.revision, webhooks=webhooks):
                return new
            row = await self._store.get_credential(row.workspace, row.vault_id, row.id)
        return None

    def _seal(self, row: CredentialRow, secrets: dict[str, str]) -> bytes:
        return self._keys.encrypt(secrets, bound_to=row.id)


def _live_claim(secrets: dict[str, str]) -> bool:
    claim = secrets.get(CLAIM)
    if not claim:
        return False
    try:
        return float(claim.split(" ")[1]) > time.time()
    except (IndexError, ValueError):
        return False


def _succeeded(result: Refreshed) -> AuthChange:
    def apply(auth: dict[str, Any], secrets: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        assert result.access_token is not None
        secrets = {**secrets, "access_token": result.access_token}
        if result.refresh_token is not None:
            secrets["refresh_token"] = result.refresh_token
        expires = rfc3339(result.expires_at) if result.expires_at is not None else None
        return {**auth, "expires_at": expires, "refresh_failed": None}, secrets

    return apply
