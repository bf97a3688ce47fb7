"""The agent loop: session workers driving pydantic-ai turns, and the built-in tool seam."""

from ._tools import BuiltinTool, ToolContext, ToolOutput
from ._worker import AgentLoopConfig, SessionWorkers

__all__ = ["AgentLoopConfig", "BuiltinTool", "SessionWorkers", "ToolContext", "ToolOutput"]
