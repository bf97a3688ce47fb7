"""Everything heavy the session workers use (pydantic-ai, the model layer, the turn engine), in one module.

`_worker.py` imports it on first use, so `import loophost.runtime` (and `loophost serve` getting ready) does not
wait for pydantic-ai; `Runtime.open()` warms it up on a thread, and workers wait for that before their first step.
"""

from pydantic_ai import Agent
from pydantic_ai.exceptions import ToolFailed, UsageLimitExceeded
from pydantic_ai.messages import BinaryContent, ImageUrl
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolDenied

from ..models import is_transient_model_error, model_error_type, resolve_model
from ..models._errors import ModelRoutingError
from ._history import History, close_open_calls, open_calls
from ._turn import Turn, input_hash

__all__ = [
    "Agent",
    "BinaryContent",
    "DeferredToolRequests",
    "DeferredToolResults",
    "History",
    "ImageUrl",
    "ModelRoutingError",
    "ToolDenied",
    "ToolFailed",
    "Turn",
    "UsageLimitExceeded",
    "close_open_calls",
    "input_hash",
    "is_transient_model_error",
    "model_error_type",
    "open_calls",
    "resolve_model",
]
