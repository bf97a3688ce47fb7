"""Row builders shared by the store tests."""

from __future__ import annotations

from loophost.runtime.store import NewEvent, SessionRow


def session_row(session_id: str = "sesn_1", workspace: str = "ws", **over: object) -> SessionRow:
    fields: dict[str, object] = dict(
        workspace=workspace,
        id=session_id,
        agent_id="agent_1",
        agent_version=1,
        environment_id="env_1",
        status="idle",
        created_at="2026-01-01T00:00:00.000000Z",
        archived_at=None,
        revision=1,
        last_seq=0,
        body='{"id": "%s"}' % session_id,
    )
    fields.update(over)
    return SessionRow(**fields)  # type: ignore[arg-type]


def event(
    n: int | str, type_: str = "agent.message", processed_at: str | None = "2026-01-01T00:00:00.000000Z"
) -> NewEvent:
    event_id = f"sevt_{n}"
    body = '{"id": "%s", "type": "%s", "processed_at": %s}' % (
        event_id,
        type_,
        "null" if processed_at is None else '"%s"' % processed_at,
    )
    return NewEvent(event_id, type_, processed_at, body)
