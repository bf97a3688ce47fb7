"""The Claude Managed Agents docs' Python flow, as a user would copy it, run against loophost.

Unchanged but for two things: `base_url` points at the loophost server, and the agent's model is `scripted`
(the deterministic built-in model, so no key and no network) whose prompt asks for the custom tool.
"""

from __future__ import annotations

import anthropic

from .conftest import KEY_A, ServerProcess


def test_quickstart_and_custom_tool_flow(server: ServerProcess) -> None:
    client = anthropic.Anthropic(base_url=server.url, api_key=KEY_A)

    # Create an environment
    environment = client.beta.environments.create(
        name="docs-quickstart-env",
        config={"type": "cloud", "networking": {"type": "unrestricted"}},
    )

    # Create an agent, with the agent toolset and a custom tool the client runs
    agent = client.beta.agents.create(
        name="Weather Assistant",
        model="scripted",
        system="You are a helpful assistant.",
        tools=[
            {"type": "agent_toolset_20260401"},
            {
                "type": "custom",
                "name": "get_weather",
                "description": "Get the current weather for a location.",
                "input_schema": {
                    "type": "object",
                    "properties": {"location": {"type": "string", "description": "City name"}},
                    "required": ["location"],
                },
            },
        ],
    )

    # Start a session
    session = client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        title="Weather session",
    )

    def get_weather(location: str) -> str:
        return f"Sunny, 22°C in {location}"

    # Stream-first: open the stream, then send the message; answer custom tools as they come
    transcript: list[str] = []
    with client.beta.sessions.events.stream(session.id) as stream:
        client.beta.sessions.events.send(
            session.id,
            events=[
                {
                    "type": "user.message",
                    "content": [{"type": "text", "text": 'call get_weather {"location": "Paris"}'}],
                }
            ],
        )
        for event in stream:
            if event.type == "agent.message":
                transcript.extend(block.text for block in event.content if block.type == "text")
            elif event.type == "agent.custom_tool_use":
                result = get_weather(**event.input)
                client.beta.sessions.events.send(
                    session.id,
                    events=[
                        {
                            "type": "user.custom_tool_result",
                            "custom_tool_use_id": event.id,
                            "content": [{"type": "text", "text": result}],
                        }
                    ],
                )
            elif event.type == "session.status_idle":
                if event.stop_reason.type == "requires_action":
                    continue  # the results just sent resume the session
                break
            elif event.type == "session.status_terminated":
                break
    assert transcript == ["get_weather: Sunny, 22°C in Paris"]

    # Poll the history instead of streaming
    events = list(client.beta.sessions.events.list(session.id))
    assert [e.type for e in events][:2] == ["user.message", "session.status_running"]
    assert events[-1].type == "session.status_idle"

    # Usage accumulates on the session
    session = client.beta.sessions.retrieve(session.id)
    assert session.status == "idle"
    assert session.usage.input_tokens and session.usage.output_tokens

    # Session management
    listed = [s.id for s in client.beta.sessions.list()]
    assert session.id in listed
    archived = client.beta.sessions.archive(session.id)
    assert archived.archived_at is not None
    deleted = client.beta.sessions.delete(session.id)
    assert deleted.type == "session_deleted"
    client.beta.agents.archive(agent.id)
    client.beta.environments.delete(environment.id)
