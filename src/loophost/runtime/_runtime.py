"""`Runtime`: the managed-agent runtime as a library: the services over one store, bus and session writer, and the
session workers that run turns."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from ._agents import AgentsMixin
from ._core import RuntimeConfig
from ._environments import EnvironmentsMixin
from ._events import EventsMixin
from ._files import FilesMixin
from ._resources import ResourcesMixin
from .engine import AgentLoopConfig, BuiltinTool, SessionWorkers
from .store import Store, open_store

if TYPE_CHECKING:
    from .models import ModelsConfig
    from .toolset import Toolset


class Runtime(AgentsMixin, EnvironmentsMixin, EventsMixin, ResourcesMixin, FilesMixin):
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
        store.add_commit_listener(self.bus.publish)
        self.toolset = toolset
        tools: dict[str, BuiltinTool] = {}
        if toolset is not None:
            toolset.bind(self)
            tools.update(toolset.tools())
        tools.update(builtin_tools or {})
        self.workers = SessionWorkers(
            self.writer, self.bus, store, builtin_tools=tools, models=models, config=agent_loop
        )

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
        """A runtime on a database URL (`sqlite:///file.db`, `sqlite:///:memory:`) or a SQLite file path."""
        return cls(
            open_store(os.fspath(database_url)),
            config=config,
            builtin_tools=builtin_tools,
            models=models,
            agent_loop=agent_loop,
            toolset=toolset,
        )

    async def open(self) -> Runtime:
        """Open the store and resume every session that was mid-work when the last process stopped."""
        if not self._opened:
            await self.store.open()
            self._opened = True
            await self.workers.recover()
        return self

    async def close(self) -> None:
        """Stop the workers (running sessions stay resumable from their checkpoints), then the store."""
        if self._opened:
            self._opened = False
            await self.workers.close()
            if self.toolset is not None:
                await self.toolset.close()
            await self.store.close()

    async def on_session_archived(self, session_id: str) -> None:
        if self.toolset is not None:
            await self.toolset.close_session(session_id)

    async def on_session_deleted(self, session_id: str) -> None:
        if self.toolset is not None:
            await self.toolset.remove_session(session_id)

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
