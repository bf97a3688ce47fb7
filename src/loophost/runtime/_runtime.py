"""`Runtime`: the managed-agent runtime as a library: the services over one store, bus and session writer, and the
session workers that run turns."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .. import wire
from ._agents import AgentsMixin
from ._core import RuntimeConfig
from ._deployment_runs import DeploymentScheduler
from ._deployments import Deployments
from ._environments import EnvironmentsMixin
from ._errors import Conflict, InvalidRequest, NotFound
from ._events import EventsMixin
from ._files import FilesMixin
from ._memory import MemoryStores
from ._relay import NoticeRelay
from ._resources import ResourcesMixin
from ._skills import Skills
from ._threads import ThreadsMixin, forward_recorded_answers, mirror_status
from ._vault_keys import VaultKeyRing
from ._vaults import Vaults
from ._webhook_delivery import WebhookDeliverer
from ._webhooks import Webhooks
from ._work import WorkQueue
from ._writer import Change, LoadedSession
from .engine import AgentLoopConfig, BuiltinTool, SessionWorkers
from .store import SQLiteStore, Store, open_store

if TYPE_CHECKING:
    from .models import ModelsConfig
    from .toolset import Toolset


class Runtime(AgentsMixin, EnvironmentsMixin, EventsMixin, ResourcesMixin, FilesMixin, ThreadsMixin):
    """The managed-agent runtime as a library. Open it, use it, close it (or `async with`).

    Every call is scoped by a workspace: ids of another workspace are not found.
    """

    def __init__(
        self,
        store: Store,
        *,
        config: RuntimeConfig | None = None,
        builtin_tools: Mapping[str, BuiltinTool] | None = None,
        models: ModelsConfig | None = None,
        agent_loop: AgentLoopConfig | None = None,
        toolset: Toolset | None = None,
    ) -> None:
        """`toolset`: the sandboxed built-in tools (`loophost.runtime.toolset.Toolset`); `builtin_tools` entries
        take precedence over its tools of the same name."""
        super().__init__(store, config=config)
        self._opened = False
        key_file = self.config.vault_key_file
        keys = VaultKeyRing.load(configured=self.config.vault_key, key_file=Path(key_file) if key_file else None)
        self.vaults = Vaults(store, self.config, keys)
        self.webhooks = Webhooks(
            store,
            keys,
            allow_private=self.config.webhooks_allow_private,
            default_page_size=self.config.default_page_size,
        )
        """Webhook endpoints (`_webhooks.py`); `webhook_delivery` sends the outbox (`_webhook_delivery.py`)."""
        self.webhook_delivery = WebhookDeliverer(store, self.webhooks)
        self.webhooks.on_change = self.webhook_delivery.wake
        self.writer.webhook_audience = self.webhooks.may_hear
        self.writer.on_outbox = self.webhook_delivery.wake
        self.writer.on_status = partial(mirror_status, self.writer)  # a child thread's status, on its coordinator's
        self.deployments = Deployments(
            store, start_session=self._deployment_session, default_page_size=self.config.default_page_size
        )
        """Deployments and their runs (`_deployments.py`); `deployment_scheduler` fires schedules."""
        self.deployment_scheduler = DeploymentScheduler(store, self.deployments)
        self.deployments.on_change = self.deployment_scheduler.wake
        self.deployments.on_outbox = self.webhook_delivery.wake
        self.vaults.on_outbox = self.webhook_delivery.wake
        self.deployments.read_session = self._session_or_none
        self.memory = MemoryStores(store, self.config)
        """Memory stores, memories and their versions (`_memory.py`)."""
        self.memory.on_outbox = self.webhook_delivery.wake
        self.skills = Skills(store, self.config)
        """Skills and their versions (`_skills.py`)."""
        store.add_commit_listener(self.bus.publish)
        self.relay: NoticeRelay | None = None
        self.toolset = toolset
        tools: dict[str, BuiltinTool] = {}
        if toolset is not None:
            toolset.bind(self)
            tools.update(toolset.tools())
        tools.update(builtin_tools or {})
        self.workers = SessionWorkers(
            self.writer,
            self.bus,
            store,
            builtin_tools=tools,
            models=models,
            config=agent_loop,
            mcp_credentials=self.vaults,
        )
        self.work = WorkQueue(store, self.config, self)
        """The work queues of self-hosted environments, and their keys (`_work.py`)."""
        self.workers.on_settled = self._settled
        if store.cluster is not None:  # several nodes may share the database: hear what the others write
            self.relay = NoticeRelay(store.cluster, store, self.bus, self.workers.wake)
            store.add_commit_listener(self.relay.published)

    @classmethod
    def from_url(
        cls,
        database_url: str | os.PathLike[str],
        *,
        config: RuntimeConfig | None = None,
        builtin_tools: Mapping[str, BuiltinTool] | None = None,
        models: ModelsConfig | None = None,
        agent_loop: AgentLoopConfig | None = None,
        toolset: Toolset | None = None,
    ) -> Runtime:
        """A runtime on a database URL (`sqlite:///file.db`, `sqlite:///:memory:`, `postgresql://host/db`, see
        `store.open_store`) or a SQLite file path; the vault key file defaults to `<database file>.vault-key`."""
        url = os.fspath(database_url)
        config = config or RuntimeConfig()
        store = open_store(url, lease_ttl=config.lease_ttl)
        if config.vault_key_file is None and isinstance(store, SQLiteStore) and not url.endswith(":memory:"):
            config = replace(config, vault_key_file=f"{store.path}.vault-key")
        return cls(
            store,
            config=config,
            builtin_tools=builtin_tools,
            models=models,
            agent_loop=agent_loop,
            toolset=toolset,
        )

    async def open(self) -> Runtime:
        """Open the store and resume every session that was mid-work when the last process stopped (with a cluster:
        that no live node owns)."""
        if not self._opened:
            await self.store.open()
            self._opened = True
            await self.webhooks.open()
            if self.relay is not None:
                await self.relay.start()
            await self._sync_memory_after_restart()
            await self.workers.recover()
            self.work.open()
            self.webhook_delivery.start()
            self.deployment_scheduler.start()
        return self

    async def _sync_memory_after_restart(self) -> None:
        """Memory writes a crash left unsynced (a tool call that wrote to a memory mount but whose result was
        never committed), for every session that mounted a store here, before any session resumes."""
        if self.toolset is None:
            return
        for session_id in await asyncio.to_thread(self.toolset.memory_sessions):
            try:
                loaded = await self.load_session(None, session_id)
            except NotFound:
                continue  # deleted meanwhile (its directory goes with the toolset's cleanup)
            await self.toolset.sync_memory_after_restart(loaded.row.workspace, loaded.session)

    async def close(self) -> None:
        """Stop the workers (running sessions stay resumable from their checkpoints), then the store."""
        if self._opened:
            self._opened = False
            await self.deployment_scheduler.close()
            await self.webhook_delivery.close()
            await self.work.close()
            await self.workers.close()  # with a cluster, their leases are released: other nodes may go on at once
            if self.relay is not None:
                await self.relay.close()
            if self.toolset is not None:
                await self.toolset.close()
            await self.store.close()

    # self-hosted sessions: a work item whenever one may be needed (see `_work.py`) ---------------------------------
    async def start_session(self, workspace: str, params: wire.SessionCreateParams) -> wire.Session:
        session = await super().start_session(workspace, params)
        if (await self.read_session(workspace, session.id)).internal.self_hosted:
            await self.work.enqueue(workspace, session.environment_id, session.id, dict(session.metadata))
        return session

    async def send_events(
        self,
        workspace: str,
        session_id: str,
        events: Sequence[wire.EventParams],
        *,
        idempotency_key: str | None = None,
    ) -> list[wire.SessionEvent]:
        echoes = await super().send_events(workspace, session_id, events, idempotency_key=idempotency_key)
        loaded = await self.read_session(workspace, session_id)
        if loaded.internal.self_hosted:  # new input reached the session: a worker may be needed again
            await self.work.enqueue(workspace, loaded.row.environment_id, session_id, dict(loaded.session.metadata))
        return echoes

    async def _settled(self, loaded: LoadedSession) -> None:
        """A session's worker has nothing left to do (idle, or parked)."""
        if self.toolset is not None:  # what background processes wrote to memory mounts since the last call
            await self.toolset.sync_memory_quietly(loaded.id)
        await self._worker_needed(loaded)
        if loaded.internal.threads:  # a coordinator: answers recorded but not forwarded before a crash
            await forward_recorded_answers(self, loaded)

    async def _worker_needed(self, loaded: LoadedSession) -> None:
        """A self-hosted session parked on worker calls gets a work item if it has none. Session creation and new
        input queue one after their commit; a process that died between that commit and the enqueue left the
        session without one, and its resumed turn parks here."""
        if not loaded.internal.self_hosted or loaded.status == "terminated":
            return
        if any(p.kind == "tool_result" and p.answer is None for p in loaded.internal.pending.values()):
            metadata = dict(loaded.session.metadata)
            await self.work.enqueue(loaded.row.workspace, loaded.row.environment_id, loaded.id, metadata)

    async def open_worker_calls(self, workspace: str, session_id: str) -> list[str]:
        try:
            loaded = await self.read_session(workspace, session_id)
        except NotFound:
            return []
        if loaded.status == "terminated":
            return []
        return [i for i, p in loaded.internal.pending.items() if p.kind == "tool_result" and p.answer is None]

    async def interrupt_worker_calls(self, workspace: str, session_id: str, message: str) -> None:
        """Answer the worker calls that a worker may have started (not those still waiting for a confirmation)."""
        try:
            loaded = await self.read_session(workspace, session_id)
        except NotFound:
            return
        started = [
            event_id
            for event_id, p in loaded.internal.pending.items()
            if p.kind == "tool_result" and p.answer is None and (not p.asks or p.confirmation is not None)
        ]
        for event_id in started:
            result = wire.UserToolResultParams(
                type="user.tool_result",
                tool_use_id=event_id,
                content=[wire.TextBlock(type="text", text=message)],
                is_error=True,
            )
            try:
                await super().send_events(workspace, session_id, [result])
            except (InvalidRequest, Conflict):
                continue  # answered meanwhile (the worker's own result arrived), or the session ended

    async def _deployment_session(
        self, workspace: str, params: wire.SessionCreateParams, deployment_id: str
    ) -> wire.Session:
        """A deployment run's session: started as any other, then marked with the deployment's id."""
        session = await self.start_session(workspace, params)

        def mark(loaded: LoadedSession) -> Change:
            return Change(document=loaded.document.model_copy(update={"deployment_id": deployment_id}))

        await self.writer.apply(session.id, mark)
        return session.model_copy(update={"deployment_id": deployment_id})

    async def _session_or_none(self, workspace: str, session_id: str) -> wire.Session | None:
        try:
            return await self.get_session(workspace, session_id)
        except NotFound:
            return None

    async def on_session_archived(self, session_id: str) -> None:
        await self.workers.mcp.close_session(session_id)
        if self.toolset is not None:
            await self.toolset.close_session(session_id)

    async def on_session_deleted(self, session_id: str) -> None:
        await self.workers.mcp.close_session(session_id)
        if self.toolset is not None:
            await self.toolset.remove_session(session_id)

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
