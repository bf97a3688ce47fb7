"""`resolve_model` routing, `ModelsConfig`, error classification and the directive parser."""

from __future__ import annotations

import json
import subprocess
import sys

import anthropic
import httpx2
import openai
import pytest
from pydantic import ValidationError
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelOverloadedError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestTimeout,
    ModelTimeoutError,
    RunCancelled,
    RunTimedOut,
    UnexpectedModelBehavior,
    UserError,
)

from loophost.runtime.models import (
    ModelConfigurationError,
    ModelsConfig,
    OpenAICompatibleEndpoint,
    ScriptedCall,
    ScriptedModel,
    UnknownModelError,
    is_transient_model_error,
    model_error_type,
    parse_script,
    resolve_model,
    scripted_model,
)

# --- routing ------------------------------------------------------------------------------------


def test_scripted_routes_to_the_shared_scripted_model() -> None:
    model = resolve_model("scripted")
    assert isinstance(model, ScriptedModel)
    assert model is scripted_model()
    assert (model.model_name, model.system) == ("scripted", "loophost")


def test_claude_routes_to_anthropic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    model = resolve_model("claude-sonnet-4-5")
    assert type(model).__name__ == "AnthropicModel"
    assert model.model_name == "claude-sonnet-4-5"
    assert model.system == "anthropic"
    assert model.settings == {"max_retries": 0}
    assert resolve_model("anthropic:claude-haiku-4-5").model_name == "claude-haiku-4-5"


def test_openai_routes_to_chat_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = resolve_model("openai:gpt-4o")
    assert type(model).__name__ == "OpenAIChatModel"
    assert model.model_name == "gpt-4o"
    assert model.base_url is not None
    assert model.base_url.startswith("https://api.openai.com")


def test_named_endpoint_routes_to_its_base_url() -> None:
    config = ModelsConfig(endpoints={"vllm": OpenAICompatibleEndpoint(base_url="http://10.0.0.5:8000/v1")})
    model = resolve_model("vllm:Qwen/Qwen3-8B", config)
    assert type(model).__name__ == "OpenAIChatModel"
    assert model.model_name == "Qwen/Qwen3-8B"
    assert model.system == "vllm"
    assert model.base_url == "http://10.0.0.5:8000/v1/"


def test_sdk_retries_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert resolve_model("openai:gpt-4o", ModelsConfig(sdk_max_retries=3)).settings == {"max_retries": 3}
    assert resolve_model("openai:gpt-4o", ModelsConfig(sdk_max_retries=None)).settings is None


@pytest.mark.parametrize(
    ("model_id", "variable"),
    [
        ("claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("anthropic:claude-x", "ANTHROPIC_API_KEY"),
        ("openai:gpt-4o", "OPENAI_API_KEY"),
    ],
)
def test_missing_api_key_is_a_configuration_error(model_id: str, variable: str) -> None:
    with pytest.raises(ModelConfigurationError, match=variable):
        resolve_model(model_id)


def test_missing_endpoint_key_is_a_configuration_error() -> None:
    endpoint = OpenAICompatibleEndpoint(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY")
    with pytest.raises(ModelConfigurationError, match="OPENROUTER_API_KEY"):
        resolve_model("openrouter:meta-llama/llama-3-70b", ModelsConfig(endpoints={"openrouter": endpoint}))


def test_endpoint_without_key_needs_none() -> None:
    endpoint = OpenAICompatibleEndpoint(base_url="http://localhost:11434/v1")
    model = resolve_model("ollama:llama3.2", ModelsConfig(endpoints={"ollama": endpoint}))
    assert model.model_name == "llama3.2"


@pytest.mark.parametrize("model_id", ["gpt-4o", "mystery:model", "openai:", "", "claude", "scripted:x", "vllm:x"])
def test_unknown_model_id(model_id: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve_model(model_id, ModelsConfig())
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    for accepted in ("'scripted'", "'claude-<name>'", "'openai:<name>'", "<endpoint>"):
        assert accepted in message


def test_unknown_model_lists_configured_endpoints() -> None:
    config = ModelsConfig(endpoints={"vllm": OpenAICompatibleEndpoint(base_url="http://x/v1")})
    with pytest.raises(UnknownModelError, match="'vllm:<model>'"):
        resolve_model("ollama:llama3", config)


def test_provider_refusal_becomes_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic_ai.providers.openai_compatible as compatible

    def refuse(*args: object, **kwargs: object) -> None:
        raise UserError("bad base URL")

    monkeypatch.setattr(compatible.OpenAICompatibleProvider, "__init__", refuse)
    config = ModelsConfig(endpoints={"vllm": OpenAICompatibleEndpoint(base_url="http://x/v1")})
    with pytest.raises(ModelConfigurationError, match="bad base URL"):
        resolve_model("vllm:m", config)


def test_models_config_from_env() -> None:
    endpoints = {
        "vllm": {"base_url": "http://localhost:8000/v1"},
        "openrouter": {"base_url": "https://openrouter.ai/api/v1", "api_key_env": "OPENROUTER_API_KEY"},
    }
    config = ModelsConfig.from_env({"LOOPHOST_OPENAI_ENDPOINTS": json.dumps(endpoints)})
    assert config.endpoints == {
        "vllm": OpenAICompatibleEndpoint(base_url="http://localhost:8000/v1"),
        "openrouter": OpenAICompatibleEndpoint(
            base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"
        ),
    }
    assert ModelsConfig.from_env({}) == ModelsConfig()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"vllm": {"url": "x"}}',
        '{"openai": {"base_url": "x"}}',
        '{"a:b": {"base_url": "x"}}',
        "[1]",
    ],
)
def test_models_config_from_env_rejects_bad_values(raw: str) -> None:
    with pytest.raises(ModelConfigurationError, match="LOOPHOST_OPENAI_ENDPOINTS"):
        ModelsConfig.from_env({"LOOPHOST_OPENAI_ENDPOINTS": raw})


def test_reserved_endpoint_names_are_rejected() -> None:
    with pytest.raises(ValidationError):
        ModelsConfig(endpoints={"scripted": OpenAICompatibleEndpoint(base_url="http://x")})


def test_resolve_model_reads_endpoints_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPHOST_OPENAI_ENDPOINTS", json.dumps({"lm": {"base_url": "http://127.0.0.1:1234/v1"}}))
    assert resolve_model("lm:local-model").model_name == "local-model"


def test_import_stays_light() -> None:
    code = (
        "import sys, loophost.runtime.models as m; "
        "names = ('anthropic', 'openai', 'pydantic_ai.models.anthropic', 'pydantic_ai.models.openai'); "
        "print([n for n in names if n in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# --- error classification -----------------------------------------------------------------------


def _http(status: int) -> ModelHTTPError:
    return ModelHTTPError(status, "m", {"error": "x"})


@pytest.mark.parametrize(
    ("exc", "transient", "wire_type"),
    [
        (_http(529), True, "model_overloaded_error"),
        (_http(503), True, "model_overloaded_error"),
        (_http(429), True, "model_rate_limited_error"),
        (_http(500), True, "model_request_failed_error"),
        (_http(502), True, "model_request_failed_error"),
        (_http(504), True, "model_request_failed_error"),
        (_http(408), True, "model_request_failed_error"),
        (_http(400), False, "model_request_failed_error"),
        (_http(401), False, "model_request_failed_error"),
        (_http(404), False, "model_request_failed_error"),
        (_http(413), False, "model_request_failed_error"),
        (
            ModelHTTPError.for_category(ModelOverloadedError, status_code=529, model_name="m"),
            True,
            "model_overloaded_error",
        ),
        (
            ModelHTTPError.for_category(ModelRateLimitError, status_code=429, model_name="m"),
            True,
            "model_rate_limited_error",
        ),
        (
            ModelHTTPError.for_category(ModelQuotaExceededError, status_code=429, model_name="m"),
            False,
            "model_request_failed_error",
        ),
        (ModelConnectionError("m", "refused", phase="connect"), True, "model_request_failed_error"),
        (ModelTimeoutError("m", "timed out", phase="read"), True, "model_request_failed_error"),
        (ModelRequestTimeout("m", 30.0), True, "model_request_failed_error"),
        (httpx2.ConnectError("refused"), True, "model_request_failed_error"),
        (httpx2.ReadTimeout("slow"), True, "model_request_failed_error"),
        (TimeoutError(), True, "model_request_failed_error"),
        (ConnectionResetError(), True, "model_request_failed_error"),
        (UnexpectedModelBehavior("garbage"), False, "unknown_error"),
        (RunCancelled("cancelled"), False, "unknown_error"),
        (RunTimedOut("run timed out"), False, "unknown_error"),
        (ValueError("bug"), False, "unknown_error"),
        (ExceptionGroup("all", [_http(529), _http(503)]), True, "model_overloaded_error"),
        (ExceptionGroup("mixed", [_http(529), _http(400)]), False, "model_overloaded_error"),
    ],
)
def test_error_classification(exc: BaseException, transient: bool, wire_type: str) -> None:
    assert is_transient_model_error(exc) is transient
    assert model_error_type(exc) == wire_type


def test_raw_sdk_errors_are_classified() -> None:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    assert is_transient_model_error(anthropic.APIConnectionError(request=request))
    assert is_transient_model_error(anthropic.APITimeoutError(request=request))
    assert is_transient_model_error(openai.APIConnectionError(request=request))

    def status_error(status: int) -> anthropic.APIStatusError:
        response = httpx2.Response(status, request=request)
        return anthropic.APIStatusError("x", response=response, body=None)

    assert is_transient_model_error(status_error(529))
    assert model_error_type(status_error(529)) == "model_overloaded_error"
    assert not is_transient_model_error(status_error(400))
    assert model_error_type(status_error(429)) == "model_rate_limited_error"


# --- the directive parser -----------------------------------------------------------------------


def test_parse_script() -> None:
    script = parse_script(
        'hello\ncall add {"a": 1}\ncall noargs\n  sleep 20 \nsleep 5\nfail transient 2\nfail fatal\n'
        "call bad [1]\noutput {}\nsleep soon\nbye"
    )
    assert script.calls == (
        ScriptedCall("add", {"a": 1}),
        ScriptedCall("noargs", {}),
        ScriptedCall("bad", "[1]"),
    )
    assert script.sleep_ms == 25
    assert [script.failure_at(i) for i in range(4)] == ["transient", "transient", "fatal", None]
    assert script.output == "{}"
    assert script.text(output_is_directive=True) == "hello\nsleep soon\nbye"
    assert script.text(output_is_directive=False) == "hello\noutput {}\nsleep soon\nbye"


def test_parse_empty_script() -> None:
    script = parse_script("")
    assert script.calls == ()
    assert script.failure_at(0) is None
    assert script.text(output_is_directive=False) == ""
