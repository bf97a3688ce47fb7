"""The turn engine: session workers driving durable turns on pydantic-ai's model layer, and the built-in tool seam.

Only light modules are imported here; the turn itself (pydantic-ai) is imported by the workers on first use.
"""

from ._config import AgentLoopConfig
from ._tools import BuiltinTool, ToolContext, ToolOutput
from ._workers import SessionWorkers

__all__ = ["AgentLoopConfig", "BuiltinTool", "SessionWorkers", "ToolContext", "ToolOutput"]
