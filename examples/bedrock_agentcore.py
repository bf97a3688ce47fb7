"""Run a prompt on an AWS Bedrock AgentCore harness; the `get_weather` tool runs here, on your machine.

Needs real AWS: credentials from the default chain (environment, ~/.aws, SSO, instance role) with
`bedrock-agentcore:InvokeHarness` and `bedrock-agentcore:InvokeAgentRuntime` on the harness, and
`pip install 'loophost[bedrock]'`.

    HARNESS_ARN=arn:aws:bedrock-agentcore:us-west-2:123456789012:harness/weather-AbCdE12345 \\
        python examples/bedrock_agentcore.py "What's the weather in Paris?"

Without HARNESS_ARN it provisions a harness first (EXECUTION_ROLE_ARN is then required; the caller also needs
`bedrock-agentcore:CreateHarness`/`GetHarness`/`ListHarnesses` and `iam:PassRole`), and REMOVE=1 deletes it after.
"""

from __future__ import annotations

import asyncio
import os
import sys

import loophost
from loophost.client import tools_of

REGION = os.environ.get("AWS_REGION", "us-west-2")
MODEL = os.environ.get("MODEL_ID", "us.anthropic.claude-haiku-4-5-20251001-v1:0")


@loophost.tool
def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    return f"Sunny and 21°C in {city}."


def harness_arn() -> tuple[str, loophost.AgentHandle | None]:
    """The harness to use: HARNESS_ARN, or one provisioned (and cached) for this spec."""
    if os.environ.get("HARNESS_ARN"):
        return os.environ["HARNESS_ARN"], None
    spec = loophost.AgentSpec(
        name="weather",
        model=MODEL,
        system="You answer weather questions. Use get_weather for current conditions.",
        tools=tuple(t.spec for t in tools_of([get_weather])),
        options={"execution_role_arn": os.environ["EXECUTION_ROLE_ARN"], "max_iterations": 10},
    )
    handle = asyncio.run(loophost.provision(loophost.BedrockAgentCore(region=REGION), spec))
    return handle.agent_id, handle


def main() -> None:
    prompt = " ".join(sys.argv[1:]) or "What's the weather in Paris?"
    arn, handle = harness_arn()
    provider = loophost.BedrockAgentCore(harness_arn=arn)
    result = loophost.run(provider, handler=[get_weather], prompt=prompt, on_event=_print_text)
    print()
    print(f"[{result.terminal}: {result.stop_reason}; {result.turns} invokes; {result.usage.total_tokens} tokens;")
    print(f" session {result.session_id}: pass it as session_id= to continue in the same microVM]")
    if handle is not None and os.environ.get("REMOVE"):
        asyncio.run(loophost.teardown(provider, handle))


def _print_text(event: object) -> None:
    delta = event.get("contentBlockDelta", {}).get("delta", {}) if isinstance(event, dict) else {}
    if isinstance(delta.get("text"), str):
        print(delta["text"], end="", flush=True)


if __name__ == "__main__":
    main()
