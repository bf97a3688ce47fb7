"""Models for the agent core: the built-in scripted model, model-id routing and model-error classification.

`import loophost.runtime.models` loads pydantic-ai's core only; the Anthropic and OpenAI model modules are
imported by `resolve_model` when a model id needs them.
"""

from ._errors import (
    ModelConfigurationError,
    ModelErrorType,
    ModelRoutingError,
    UnknownModelError,
    is_transient_model_error,
    model_error_type,
)
from ._routing import ENDPOINTS_ENV, ModelsConfig, OpenAICompatibleEndpoint, resolve_model, scripted_model
from ._script import Script, ScriptedCall, parse_script
from ._scripted import SCRIPTED_MODEL_NAME, SCRIPTED_SYSTEM, ScriptedModel, ScriptedStreamedResponse

__all__ = [
    "ENDPOINTS_ENV",
    "SCRIPTED_MODEL_NAME",
    "SCRIPTED_SYSTEM",
    "ModelConfigurationError",
    "ModelErrorType",
    "ModelRoutingError",
    "ModelsConfig",
    "OpenAICompatibleEndpoint",
    "Script",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedStreamedResponse",
    "UnknownModelError",
    "is_transient_model_error",
    "model_error_type",
    "parse_script",
    "resolve_model",
    "scripted_model",
]
