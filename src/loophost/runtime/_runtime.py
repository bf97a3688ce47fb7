"""`Runtime`: the default `ManagedAgentRuntime`, composed of a store and an event bus."""

from __future__ import annotations

import os
from types import TracebackType

from ._agents import AgentsMixin
from ._core import RuntimeConfig
from ._environments import EnvironmentsMixin
from ._events import EventsMixin
from .store import Store, open_store


class Runtime(AgentsMixin, EnvironmentsMixin, EventsMixin):
    """The managed-agent runtime as a library. Open it, use it, close it (or `async with`).

    Every call is scoped by a workspace: ids of another workspace are not found.
    """

    def __init__(self, store: Store, *, config: RuntimeConfig | None = None) -> None:
        super().__init__(store, config=config)
        self._opened = False
        store.add_commit_listener(self.bus.publish)

    @classmethod
    def from_url(cls, database_url: str | os.PathLike[str], *, config: RuntimeConfig | None = None) -> Runtime:
        """A runtime on a database URL (`sqlite:///file.db`, `sqlite:///:memory:`) or a SQLite file path."""
        return cls(open_store(os.fspath(database_url)), config=config)

    async def open(self) -> Runtime:
        if not self._opened:
            await self.store.open()
            self._opened = True
        return self

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.store.close()

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
