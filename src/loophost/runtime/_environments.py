"""Environments: where a session's tools run (cloud sandbox config, or self-hosted)."""

from __future__ import annotations

from datetime import datetime

from .. import wire
from ._clock import now, rfc3339
from ._core import RuntimeCore
from ._cursors import check_limit, cut_page, decode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._webhook_events import outbox_event
from .store import EnvironmentRow, ListQuery


def _row(workspace: str, env: wire.Environment) -> EnvironmentRow:
    return EnvironmentRow(
        workspace=workspace,
        id=env.id,
        name=env.name,
        created_at=_ts(env.created_at),
        archived_at=_ts(env.archived_at) if env.archived_at is not None else None,
        body=env.model_dump_json(by_alias=True),
    )


def _ts(value: object) -> str:
    return rfc3339(value) if isinstance(value, datetime) else str(value)


class EnvironmentsMixin(RuntimeCore):
    async def create_environment(self, workspace: str, params: wire.EnvironmentCreateParams) -> wire.Environment:
        ts = rfc3339(now())
        try:
            config = wire.resolve_environment_config(params.config)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid_config") from exc
        env = wire.Environment.model_validate(
            {
                "id": new_id("env"),
                "type": "environment",
                "name": params.name,
                "description": params.description,
                "metadata": params.metadata or {},
                "scope": params.scope,
                "config": config.model_dump(mode="json", by_alias=True),
                "created_at": ts,
                "updated_at": ts,
                "archived_at": None,
            }
        )
        await self.store.insert_environment(
            _row(workspace, env), webhooks=[outbox_event("environment.created", env.id, workspace)]
        )
        self.writer.on_outbox()  # the deliverer sends it now, not at its next poll
        return env

    async def get_environment(self, workspace: str, env_id: str) -> wire.Environment:
        row = await self.store.get_environment(workspace, env_id)
        if row is None:
            raise NotFound(f"environment {env_id!r} not found", resource="environment")
        return wire.Environment.model_validate_json(row.body)

    async def update_environment(
        self, workspace: str, env_id: str, params: wire.EnvironmentUpdateParams
    ) -> wire.Environment:
        current = await self.get_environment(workspace, env_id)
        if current.archived_at is not None:
            raise Conflict(f"environment {env_id!r} is archived and read-only", code="archived")
        try:
            changes = wire.apply_environment_update(current, params)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid_config") from exc
        candidate = current.model_copy(update=changes)
        if candidate == current:
            return current
        updated = wire.Environment.model_validate(
            {**candidate.model_dump(mode="json", by_alias=True), "updated_at": rfc3339(now())}
        )
        await self.store.update_environment(
            _row(workspace, updated), webhooks=[outbox_event("environment.updated", env_id, workspace)]
        )
        self.writer.on_outbox()
        return updated

    async def list_environments(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
    ) -> wire.CursorPage[wire.Environment]:
        size = check_limit(limit, default=self.config.default_page_size, maximum=self.config.max_page_size)
        cursor = decode(page, descending=False)
        rows = await self.store.list_environments(
            workspace,
            ListQuery(
                limit=size + 1,
                after=keyset(cursor),
                include_archived=include_archived,
            ),
        )
        rows, next_page = cut_page(rows, size, descending=False)
        return wire.CursorPage[wire.Environment](
            data=[wire.Environment.model_validate_json(r.body) for r in rows], next_page=next_page
        )

    async def archive_environment(self, workspace: str, env_id: str) -> wire.Environment:
        current = await self.get_environment(workspace, env_id)
        if current.archived_at is not None:
            raise Conflict(f"environment {env_id!r} is already archived", code="archived")
        ts = rfc3339(now())
        archived = wire.Environment.model_validate(
            {**current.model_dump(mode="json", by_alias=True), "archived_at": ts, "updated_at": ts}
        )
        await self.store.update_environment(
            _row(workspace, archived), webhooks=[outbox_event("environment.archived", env_id, workspace, at=ts)]
        )
        self.writer.on_outbox()
        return archived

    async def delete_environment(self, workspace: str, env_id: str) -> wire.Deleted:
        deleted = [outbox_event("environment.deleted", env_id, workspace)]
        if not await self.store.delete_environment(workspace, env_id, webhooks=deleted):
            raise NotFound(f"environment {env_id!r} not found", resource="environment")
        self.writer.on_outbox()
        return wire.Deleted(id=env_id, type="environment_deleted")
