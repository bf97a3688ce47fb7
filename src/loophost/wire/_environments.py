"""Environments (spec §3.1): container config, create/update bodies and the update merge.

The SDK types environment timestamps as plain strings; they are `Timestamp`s here and go out in the
same RFC 3339 form as everything else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import ParamsModel, Timestamp, WireModel
from ._metadata import check_metadata, patch_metadata

PACKAGE_MANAGERS = ("apt", "cargo", "gem", "go", "npm", "pip")
Scope = Literal["organization", "account"]


class NetworkingUnrestricted(WireModel):
    type: Literal["unrestricted"] = "unrestricted"


class NetworkingLimited(WireModel):
    """Only `allowed_hosts` (plus MCP servers / package registries when allowed) are reachable."""

    type: Literal["limited"] = "limited"
    allowed_hosts: list[str] = Field(default_factory=list)
    allow_mcp_servers: bool = False
    allow_package_managers: bool = False


Networking = Annotated[NetworkingUnrestricted | NetworkingLimited, Field(discriminator="type")]


class Packages(WireModel):
    """Packages to install; every list is present in responses (empty by default)."""

    type: Literal["packages"] | None = "packages"
    apt: list[str] = Field(default_factory=list)
    cargo: list[str] = Field(default_factory=list)
    gem: list[str] = Field(default_factory=list)
    go: list[str] = Field(default_factory=list)
    npm: list[str] = Field(default_factory=list)
    pip: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in PACKAGE_MANAGERS)


class CloudConfig(WireModel):
    """`{type:"cloud", networking, packages}`. Limited networking + packages needs allow_package_managers."""

    type: Literal["cloud"] = "cloud"
    networking: Networking = Field(default_factory=NetworkingUnrestricted)
    packages: Packages = Field(default_factory=Packages)

    @model_validator(mode="after")
    def _packages_need_registry_access(self) -> CloudConfig:
        net = self.networking
        limited = isinstance(net, NetworkingLimited) and not net.allow_package_managers
        if limited and not self.packages.is_empty():
            raise ValueError("packages under limited networking need networking.allow_package_managers=true")
        return self


class SelfHostedConfig(WireModel):
    """The sandbox runs on the customer's workers (work queue, §3.2); no networking or packages."""

    type: Literal["self_hosted"] = "self_hosted"


EnvironmentConfig = Annotated[CloudConfig | SelfHostedConfig, Field(discriminator="type")]

# --- request shapes: every field optional; on update, omitted (or null) fields keep their value ------------


class NetworkingUnrestrictedParams(ParamsModel):
    type: Literal["unrestricted"] = "unrestricted"


class NetworkingLimitedParams(ParamsModel):
    type: Literal["limited"] = "limited"
    allowed_hosts: list[str] | None = None
    allow_mcp_servers: bool | None = None
    allow_package_managers: bool | None = None


NetworkingParams = Annotated[NetworkingUnrestrictedParams | NetworkingLimitedParams, Field(discriminator="type")]


class PackagesParams(ParamsModel):
    type: Literal["packages"] | None = None
    apt: list[str] | None = None
    cargo: list[str] | None = None
    gem: list[str] | None = None
    go: list[str] | None = None
    npm: list[str] | None = None
    pip: list[str] | None = None


class CloudConfigParams(ParamsModel):
    type: Literal["cloud"] = "cloud"
    networking: NetworkingParams | None = None
    packages: PackagesParams | None = None


class SelfHostedConfigParams(ParamsModel):
    type: Literal["self_hosted"] = "self_hosted"


EnvironmentConfigParams = Annotated[CloudConfigParams | SelfHostedConfigParams, Field(discriminator="type")]


class EnvironmentCreateParams(ParamsModel):
    """`POST /v1/environments`. `config` defaults to cloud + unrestricted + no packages (inferred)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    config: EnvironmentConfigParams | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    scope: Scope | None = None

    @model_validator(mode="after")
    def _config_is_valid(self) -> EnvironmentCreateParams:
        check_metadata(self.metadata or {})
        resolve_environment_config(self.config)  # raises on limited networking + packages
        return self


class EnvironmentUpdateParams(ParamsModel):
    """`POST /v1/environments/{id}`: a patch; see `apply_environment_update`."""

    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    config: EnvironmentConfigParams | None = None
    description: str | None = None
    metadata: dict[str, str | None] | None = None
    scope: Scope | None = None

    @model_validator(mode="after")
    def _name_not_cleared(self) -> EnvironmentUpdateParams:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be cleared")
        return self


class Environment(WireModel):
    """The `environment` resource."""

    id: str
    type: Literal["environment"] = "environment"
    name: str
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    scope: Scope | None = None
    config: EnvironmentConfig = Field(default_factory=CloudConfig)
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


def resolve_environment_config(
    params: CloudConfigParams | SelfHostedConfigParams | None,
    current: CloudConfig | SelfHostedConfig | None = None,
) -> CloudConfig | SelfHostedConfig:
    """Merge a config param over `current` (None on create); raises ValueError on an invalid result.

    Switching between cloud and self_hosted replaces the config. Within a cloud config, omitted or null
    fields keep their current value: networking is merged field by field when its type is unchanged,
    and each package list that is sent replaces that list.
    """
    if params is None:
        return current.model_copy(deep=True) if current is not None else CloudConfig()
    if isinstance(params, SelfHostedConfigParams):
        return SelfHostedConfig()
    base = current if isinstance(current, CloudConfig) else CloudConfig()
    networking: NetworkingUnrestricted | NetworkingLimited = base.networking.model_copy(deep=True)
    if isinstance(params.networking, NetworkingUnrestrictedParams):
        networking = NetworkingUnrestricted()
    elif isinstance(params.networking, NetworkingLimitedParams):
        start = networking if isinstance(networking, NetworkingLimited) else NetworkingLimited()
        networking = start.model_copy(update=_given(params.networking, exclude={"type"}))
    packages = base.packages.model_copy(deep=True)
    if params.packages is not None:
        packages = packages.model_copy(update=_given(params.packages, exclude={"type"}))
    return CloudConfig.model_validate(
        {"type": "cloud", "networking": networking.model_dump(), "packages": packages.model_dump()}
    )


def apply_environment_update(current: Environment, params: EnvironmentUpdateParams) -> dict[str, Any]:
    """New values of the mutable fields (`name, description, metadata, scope, config`) after the patch.

    `description`: null clears, "" is stored as "". `metadata`: key-wise, a null or "" value deletes the
    key. `config`: merged by `resolve_environment_config`. Compare with the current values for a no-op;
    apply with `current.model_copy(update=...)`. Raises ValueError when the merged config is invalid.
    """
    given = params.model_fields_set
    return {
        "name": params.name if "name" in given and params.name is not None else current.name,
        "description": params.description if "description" in given else current.description,
        "metadata": (
            patch_metadata(current.metadata, params.metadata, empty_string_deletes=True)
            if "metadata" in given
            else dict(current.metadata)
        ),
        "scope": params.scope if "scope" in given else current.scope,
        "config": resolve_environment_config(params.config if "config" in given else None, current.config),
    }


def _given(params: ParamsModel, *, exclude: set[str]) -> dict[str, Any]:
    """Fields that were sent with a non-null value."""
    return {
        name: getattr(params, name) for name in params.model_fields_set - exclude if getattr(params, name) is not None
    }
