"""`ManagedAgentRuntime`: the lifecycle interface the server and the `Local` client provider program against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from .. import wire
from ._bus import StreamItem
from ._events import EventPage
from ._files import FileContent
from ._resources import AttachedResource, Resource, ResourceParams
from ._sessions import SessionState
from ._stream import LogStream


class ManagedAgentRuntime(Protocol):
    # agents
    async def create_agent(self, workspace: str, params: wire.AgentCreateParams) -> wire.Agent: ...
    async def update_agent(self, workspace: str, agent_id: str, params: wire.AgentUpdateParams) -> wire.Agent: ...
    async def get_agent(self, workspace: str, agent_id: str, version: int | None = None) -> wire.Agent: ...
    async def list_agents(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
    ) -> wire.CursorPage[wire.Agent]: ...
    async def list_agent_versions(
        self, workspace: str, agent_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[wire.Agent]: ...
    async def archive_agent(self, workspace: str, agent_id: str) -> wire.Agent: ...

    # environments
    async def create_environment(self, workspace: str, params: wire.EnvironmentCreateParams) -> wire.Environment: ...
    async def update_environment(
        self, workspace: str, env_id: str, params: wire.EnvironmentUpdateParams
    ) -> wire.Environment: ...
    async def get_environment(self, workspace: str, env_id: str) -> wire.Environment: ...
    async def list_environments(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        include_archived: bool = False,
    ) -> wire.CursorPage[wire.Environment]: ...
    async def archive_environment(self, workspace: str, env_id: str) -> wire.Environment: ...
    async def delete_environment(self, workspace: str, env_id: str) -> wire.Deleted: ...

    # sessions
    async def start_session(self, workspace: str, params: wire.SessionCreateParams) -> wire.Session: ...
    async def get_session(self, workspace: str, session_id: str) -> wire.Session: ...
    async def list_sessions(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        order: str = "desc",
        include_archived: bool = False,
        agent_id: str | None = None,
        agent_version: int | None = None,
        statuses: list[str] | None = None,
        created_at_gt: str | None = None,
        created_at_gte: str | None = None,
        created_at_lt: str | None = None,
        created_at_lte: str | None = None,
    ) -> wire.BidirectionalPage[wire.Session]: ...
    async def update_session(
        self, workspace: str, session_id: str, params: wire.SessionUpdateParams
    ) -> wire.Session: ...
    async def archive_session(self, workspace: str, session_id: str) -> wire.Session: ...
    async def delete_session(self, workspace: str, session_id: str) -> wire.Deleted: ...
    async def pause(self, workspace: str, session_id: str) -> SessionState: ...
    async def resume(self, workspace: str, session_id: str) -> SessionState: ...
    async def status(self, workspace: str, session_id: str) -> SessionState: ...

    # events
    async def send_events(
        self,
        workspace: str,
        session_id: str,
        events: Sequence[wire.EventParams],
        *,
        idempotency_key: str | None = None,
    ) -> list[wire.SessionEvent]: ...
    async def interrupt(self, workspace: str, session_id: str) -> wire.SessionEvent: ...
    async def list_events(
        self,
        workspace: str,
        session_id: str,
        *,
        types: Sequence[str] | None = None,
        order: str = "asc",
        limit: int | None = None,
        page: str | None = None,
    ) -> EventPage: ...
    async def open_stream(
        self,
        workspace: str,
        session_id: str,
        *,
        after_seq: int | None = None,
        after_id: str | None = None,
        previews: bool = False,
    ) -> LogStream: ...
    def stream_events(
        self,
        workspace: str,
        session_id: str,
        *,
        after_seq: int | None = None,
        after_id: str | None = None,
        previews: bool = False,
    ) -> AsyncIterator[StreamItem]: ...

    # session resources
    async def add_session_resource(
        self, workspace: str, session_id: str, params: ResourceParams
    ) -> AttachedResource: ...
    async def list_session_resources(
        self, workspace: str, session_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[Resource]: ...
    async def get_session_resource(self, workspace: str, session_id: str, resource_id: str) -> Resource: ...
    async def update_session_resource(
        self, workspace: str, session_id: str, resource_id: str, params: wire.ResourceUpdateParams
    ) -> AttachedResource: ...
    async def delete_session_resource(self, workspace: str, session_id: str, resource_id: str) -> wire.Deleted: ...

    # files
    async def upload_file(
        self,
        workspace: str,
        filename: str | None,
        content: bytes,
        mime_type: str | None = None,
        expires_in_seconds: int | None = None,
    ) -> wire.FileMetadata: ...
    async def get_file(self, workspace: str, file_id: str) -> wire.FileMetadata: ...
    async def file_content(self, workspace: str, file_id: str) -> FileContent: ...
    async def list_files(
        self,
        workspace: str,
        *,
        limit: int | None = None,
        page: str | None = None,
        scope_id: str | None = None,
        ids: list[str] | None = None,
    ) -> wire.CursorPage[wire.FileMetadata]: ...
    async def delete_file(self, workspace: str, file_id: str) -> wire.Deleted: ...
