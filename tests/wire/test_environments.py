from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loophost.wire import (
    CloudConfig,
    Environment,
    EnvironmentCreateParams,
    EnvironmentUpdateParams,
    NetworkingLimited,
    NetworkingUnrestricted,
    Packages,
    SelfHostedConfig,
    apply_environment_update,
    resolve_environment_config,
)

from ._helpers import T0, T1, as_json, roundtrip

EMPTY_PACKAGES = {"type": "packages", "apt": [], "cargo": [], "gem": [], "go": [], "npm": [], "pip": []}

ENV_DOC: dict[str, Any] = {
    "id": "env_011",
    "type": "environment",
    "name": "python-limited",
    "description": None,
    "metadata": {"owner": "data"},
    "scope": "organization",
    "config": {
        "type": "cloud",
        "networking": {
            "type": "limited",
            "allowed_hosts": ["pypi.org"],
            "allow_mcp_servers": True,
            "allow_package_managers": True,
        },
        "packages": {**EMPTY_PACKAGES, "pip": ["pandas==2.2.0"]},
    },
    "created_at": T0,
    "updated_at": T1,
    "archived_at": None,
}


def _env(**config: Any) -> Environment:
    params = EnvironmentCreateParams.model_validate({"name": "e", **config})
    return Environment(
        id="env_1",
        name=params.name,
        config=resolve_environment_config(params.config),
        created_at=T0,
        updated_at=T0,
    )


def _update(env: Environment, **body: Any) -> Environment:
    return env.model_copy(update=apply_environment_update(env, EnvironmentUpdateParams.model_validate(body)))


def test_environment_round_trips() -> None:
    env = roundtrip(Environment, ENV_DOC)
    assert isinstance(env, Environment)
    assert isinstance(env.config, CloudConfig)
    assert isinstance(env.config.networking, NetworkingLimited)


def test_self_hosted_environment_round_trips() -> None:
    doc = {**ENV_DOC, "scope": None, "config": {"type": "self_hosted"}}
    env = roundtrip(Environment, doc)
    assert isinstance(env, Environment)
    assert isinstance(env.config, SelfHostedConfig)


def test_create_without_config_defaults_to_unrestricted_cloud_with_all_package_lists() -> None:
    env = _env()
    assert as_json(env)["config"] == {
        "type": "cloud",
        "networking": {"type": "unrestricted"},
        "packages": EMPTY_PACKAGES,
    }


def test_create_with_partial_cloud_config_fills_the_rest() -> None:
    env = _env(config={"type": "cloud", "networking": {"type": "unrestricted"}})
    assert isinstance(env.config, CloudConfig)
    assert env.config.packages.pip == []
    limited = _env(config={"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["a.com"]}})
    assert as_json(limited)["config"]["networking"] == {
        "type": "limited",
        "allowed_hosts": ["a.com"],
        "allow_mcp_servers": False,
        "allow_package_managers": False,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "n" * 257},
        {"name": "n", "config": {"type": "docker"}},
        {"name": "n", "config": {"type": "cloud", "networking": {"type": "open"}}},
        {
            "name": "n",
            "config": {
                "type": "cloud",
                "networking": {"type": "limited", "allowed_hosts": []},
                "packages": {"pip": ["requests"]},
            },
        },
        {"name": "n", "metadata": {f"k{i}": "v" for i in range(17)}},
    ],
)
def test_invalid_create_bodies_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EnvironmentCreateParams.model_validate(body)


def test_limited_networking_with_packages_needs_allow_package_managers() -> None:
    with pytest.raises(ValidationError, match="allow_package_managers"):
        CloudConfig(networking=NetworkingLimited(), packages=Packages(npm=["left-pad"]))
    ok = CloudConfig(networking=NetworkingLimited(allow_package_managers=True), packages=Packages(npm=["left-pad"]))
    assert ok.packages.npm == ["left-pad"]
    assert CloudConfig(networking=NetworkingLimited(), packages=Packages()).packages.is_empty()
    assert CloudConfig(networking=NetworkingUnrestricted(), packages=Packages(apt=["git"])).packages.apt == ["git"]


def test_metadata_update_deletes_on_null_or_empty_string() -> None:
    env = _update(_env(), metadata={"k": "v", "j": "w", "i": "x"})
    assert env.metadata == {"k": "v", "j": "w", "i": "x"}
    env = _update(env, metadata={"k": None, "j": ""})
    assert env.metadata == {"i": "x"}


def test_description_null_clears_and_empty_string_is_stored() -> None:
    env = _update(_env(), description="d")
    assert env.description == "d"
    assert _update(env, description="").description == ""
    assert _update(env, description=None).description is None
    assert _update(env, name="other").description == "d"


def test_omitted_fields_inside_config_are_preserved() -> None:
    env = Environment.model_validate(ENV_DOC)
    updated = _update(env, config={"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["b.org"]}})
    assert isinstance(updated.config, CloudConfig)
    assert updated.config.networking == NetworkingLimited(
        allowed_hosts=["b.org"], allow_mcp_servers=True, allow_package_managers=True
    )
    assert updated.config.packages.pip == ["pandas==2.2.0"]
    repacked = _update(env, config={"type": "cloud", "packages": {"npm": ["zod"]}})
    assert isinstance(repacked.config, CloudConfig)
    assert (repacked.config.packages.pip, repacked.config.packages.npm) == (["pandas==2.2.0"], ["zod"])
    assert isinstance(env.config, CloudConfig)
    assert repacked.config.networking == env.config.networking


def test_update_config_can_switch_kind_and_is_revalidated() -> None:
    env = Environment.model_validate(ENV_DOC)
    assert isinstance(_update(env, config={"type": "self_hosted"}).config, SelfHostedConfig)
    with pytest.raises(ValueError, match="allow_package_managers"):
        apply_environment_update(
            env,
            EnvironmentUpdateParams.model_validate(
                {
                    "config": {
                        "type": "cloud",
                        "networking": {"type": "limited", "allow_package_managers": False},
                    }
                }
            ),
        )
    unrestricted = _update(env, config={"type": "cloud", "networking": {"type": "unrestricted"}})
    assert isinstance(unrestricted.config, CloudConfig)
    assert unrestricted.config.networking == NetworkingUnrestricted()


def test_a_no_op_update_returns_the_current_values() -> None:
    env = Environment.model_validate(ENV_DOC)
    values = apply_environment_update(env, EnvironmentUpdateParams.model_validate({"config": None}))
    assert env.model_copy(update=values) == env
    assert apply_environment_update(env, EnvironmentUpdateParams())["config"] == env.config


def test_update_name_cannot_be_cleared() -> None:
    with pytest.raises(ValidationError):
        EnvironmentUpdateParams.model_validate({"name": None})
