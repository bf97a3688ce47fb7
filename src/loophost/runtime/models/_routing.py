"""Route an agent's `model` id to a pydantic-ai model.

`scripted` is the built-in deterministic model, `claude-*` the Anthropic Messages API, `openai:<name>`
OpenAI's chat completions, and `<endpoint>:<name>` any OpenAI-compatible server configured by name (vLLM,
Ollama, OpenRouter ...). The Anthropic and OpenAI model modules take seconds to import, so they are
imported here, on first use, never when `loophost.runtime.models` is imported.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_ai.exceptions import UserError
from pydantic_ai.settings import ModelSettings

from ._errors import ModelConfigurationError, UnknownModelError
from ._scripted import SCRIPTED_MODEL_NAME, ScriptedModel

if TYPE_CHECKING:
    from pydantic_ai.models import Model

__all__ = (
    "ENDPOINTS_ENV",
    "ModelsConfig",
    "OpenAICompatibleEndpoint",
    "resolve_model",
    "scripted_model",
)

ENDPOINTS_ENV = "LOOPHOST_OPENAI_ENDPOINTS"
"""Environment variable holding the named OpenAI-compatible endpoints as JSON."""

_RESERVED_ENDPOINT_NAMES = frozenset({"openai", "anthropic", SCRIPTED_MODEL_NAME})
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class OpenAICompatibleEndpoint(BaseModel):
    """A named server speaking OpenAI chat completions, e.g. vLLM, Ollama or OpenRouter.

    `api_key_env` names the environment variable holding its key; `None` for a server that needs none
    (a local vLLM or Ollama). The key itself never sits in configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    api_key_env: str | None = None


class ModelsConfig(BaseModel):
    """How model ids are routed: base-URL overrides, named OpenAI-compatible endpoints, SDK retries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    anthropic_base_url: str | None = None
    """Overrides `ANTHROPIC_BASE_URL` (itself defaulting to the Anthropic API)."""
    openai_base_url: str | None = None
    """Overrides `OPENAI_BASE_URL` (itself defaulting to the OpenAI API) for `openai:<name>`."""
    endpoints: dict[str, OpenAICompatibleEndpoint] = Field(default_factory=dict)
    """Named OpenAI-compatible endpoints; `<name>:<model>` routes to the one called `<name>`."""
    sdk_max_retries: int | None = 0
    """Retries inside the provider SDK per request. 0 (the default) surfaces every transient failure at
    once, so the runtime's own visible retry (`rescheduling` with backoff) is the only one; `None` keeps
    the SDK's default (2, with its own backoff)."""

    @field_validator("endpoints")
    @classmethod
    def _check_endpoint_names(
        cls, endpoints: dict[str, OpenAICompatibleEndpoint]
    ) -> dict[str, OpenAICompatibleEndpoint]:
        for name in endpoints:
            if name in _RESERVED_ENDPOINT_NAMES:
                raise ValueError(f"endpoint name {name!r} is reserved for a built-in route")
            if not _ENDPOINT_NAME.match(name):
                raise ValueError(f"endpoint name {name!r} must be letters, digits, '_', '.' or '-' (no ':')")
        return endpoints

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelsConfig:
        """Read `LOOPHOST_OPENAI_ENDPOINTS`: JSON `{"name": {"base_url": ..., "api_key_env": ...}}`.

        Raises `ModelConfigurationError` when it is not valid JSON of that shape.
        """
        env = os.environ if environ is None else environ
        raw = env.get(ENDPOINTS_ENV, "").strip()
        if not raw:
            return cls()
        try:
            endpoints = json.loads(raw)
            return cls(endpoints=endpoints)
        except (ValueError, ValidationError) as e:
            raise ModelConfigurationError(
                f"{ENDPOINTS_ENV} must be JSON like "
                '{"vllm": {"base_url": "http://localhost:8000/v1", "api_key_env": null}}: '
                f"{e}"
            ) from e

    def describe_routes(self) -> str:
        """The accepted model ids, for error messages."""
        routes = ["'scripted'", "'claude-<name>'", "'anthropic:<name>'", "'openai:<name>'"]
        if self.endpoints:
            routes.extend(f"'{name}:<model>'" for name in sorted(self.endpoints))
        else:
            routes.append(f"'<endpoint>:<model>' for an endpoint configured in {ENDPOINTS_ENV} (none is)")
        return ", ".join(routes)


_scripted_lock = threading.Lock()
_scripted_instance: ScriptedModel | None = None


def scripted_model() -> ScriptedModel:
    """The process-wide `ScriptedModel`.

    Shared so that `fail transient N` counts down across attempts even when the runtime resolves the
    model again for each attempt.
    """
    global _scripted_instance
    with _scripted_lock:
        if _scripted_instance is None:
            _scripted_instance = ScriptedModel()
        return _scripted_instance


def _settings(config: ModelsConfig) -> ModelSettings | None:
    if config.sdk_max_retries is None:
        return None
    return ModelSettings(max_retries=config.sdk_max_retries)


def _require_env(var: str, what: str) -> str:
    value = os.environ.get(var, "").strip()
    if not value:
        raise ModelConfigurationError(f"{what} needs an API key: set the {var} environment variable.")
    return value


def _anthropic(name: str, config: ModelsConfig) -> Model:
    api_key = _require_env("ANTHROPIC_API_KEY", f"Model {name!r} (Anthropic)")
    base_url = config.anthropic_base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key=api_key, base_url=base_url)
    return AnthropicModel(name, provider=provider, settings=_settings(config))


def _openai(name: str, config: ModelsConfig) -> Model:
    api_key = _require_env("OPENAI_API_KEY", f"Model 'openai:{name}'")
    base_url = config.openai_base_url or os.environ.get("OPENAI_BASE_URL") or None
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=base_url, api_key=api_key)
    return OpenAIChatModel(name, provider=provider, settings=_settings(config))


def _endpoint(endpoint_name: str, endpoint: OpenAICompatibleEndpoint, name: str, config: ModelsConfig) -> Model:
    api_key = None
    if endpoint.api_key_env:
        api_key = _require_env(endpoint.api_key_env, f"Model '{endpoint_name}:{name}' (endpoint {endpoint_name!r})")
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider

    provider = OpenAICompatibleProvider(endpoint_name, base_url=endpoint.base_url, api_key=api_key)
    return OpenAIChatModel(name, provider=provider, settings=_settings(config))


def resolve_model(model_id: str, config: ModelsConfig | None = None) -> Model:
    """The pydantic-ai model for an agent's `model` id.

    - `scripted` → the shared `ScriptedModel` (see `scripted_model`);
    - `claude-<name>` (or `anthropic:<name>`) → `AnthropicModel`, key `ANTHROPIC_API_KEY`, base URL
      `config.anthropic_base_url`, else `ANTHROPIC_BASE_URL`, else the Anthropic API;
    - `openai:<name>` → `OpenAIChatModel`, key `OPENAI_API_KEY`, base URL `config.openai_base_url`, else
      `OPENAI_BASE_URL`, else the OpenAI API;
    - `<endpoint>:<name>` → `OpenAIChatModel` against the endpoint of that name in `config.endpoints`
      (`ModelsConfig.from_env()` when no config is given).

    Raises `UnknownModelError` for an id no route accepts and `ModelConfigurationError` when the route
    cannot be used as configured (a missing API key, a provider refusing its settings). Nothing is sent
    over the network here.
    """
    if config is None:
        config = ModelsConfig.from_env()
    model_id = model_id.strip()
    if model_id == SCRIPTED_MODEL_NAME:
        return scripted_model()
    prefix, sep, name = model_id.partition(":")
    try:
        if not sep and model_id.startswith("claude-"):
            return _anthropic(model_id, config)
        if sep and name:
            if prefix == "anthropic":
                return _anthropic(name, config)
            if prefix == "openai":
                return _openai(name, config)
            if (endpoint := config.endpoints.get(prefix)) is not None:
                return _endpoint(prefix, endpoint, name, config)
    except UserError as e:  # a provider refusing its arguments is a configuration problem, not a crash
        raise ModelConfigurationError(f"Model {model_id!r} cannot be used: {e}") from e
    raise UnknownModelError(f"Unknown model {model_id!r}. Accepted model ids: {config.describe_routes()}.")
