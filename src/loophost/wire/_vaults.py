"""Vaults and their credentials (spec §7, part 2 §2.4; SDK `types/beta/vaults/**`).

Secrets are write-only: the request shapes carry them (`access_token`, `refresh_token`, `client_secret`, `token`,
`secret_value`), the response shapes have no field that could hold one. A response is always built field by
field from what may be shown (`credential_auth_response`), never by dumping a request: response models keep
unknown fields, so a dumped request would carry its secrets along.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from ._base import ParamsModel, Timestamp, WireModel
from ._metadata import check_metadata

MAX_CREDENTIALS_PER_VAULT = 20
MAX_ALLOWED_HOSTS = 16

DisplayName = Annotated[str, Field(min_length=1, max_length=255)]
Secret = Annotated[str, Field(min_length=1, max_length=16384)]
_SECRET_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

# --- vaults ----------------------------------------------------------------------------------------------


class VaultCreateParams(ParamsModel):
    display_name: DisplayName
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_metadata(value)
        return value


class VaultUpdateParams(ParamsModel):
    """Patch: omitted keeps; `metadata` merges key-wise (a null value deletes the key)."""

    display_name: DisplayName | None = None
    metadata: dict[str, str | None] | None = None


class Vault(WireModel):
    id: str
    type: Literal["vault"] = "vault"
    display_name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


# --- credential requests -----------------------------------------------------------------------------------


def mcp_server_url(value: str) -> str:
    """An http(s) URL with a host; ValueError otherwise (the message never repeats the value)."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("mcp_server_url must be an http or https URL")
    return value


def normalize_url(value: str) -> str:
    """The form credentials are matched by: scheme and host lower case, default port dropped, no trailing slash,
    no fragment."""
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def check_allowed_host(host: str) -> None:
    """A bare host name, an IPv4 address or a `*.` wildcard: no URL, port, path or IPv6 (SDK docstring)."""
    name = host[2:] if host.startswith("*.") else host
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        if host.startswith("*."):
            raise ValueError(f"allowed host {host!r}: a wildcard needs a host name")
        return
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"allowed host {host!r} must be a bare host name, an IPv4 address or a *. wildcard")


class TokenEndpointAuthNoneParams(ParamsModel):
    type: Literal["none"]


class TokenEndpointAuthBasicParams(ParamsModel):
    type: Literal["client_secret_basic"]
    client_secret: Secret


class TokenEndpointAuthPostParams(ParamsModel):
    type: Literal["client_secret_post"]
    client_secret: Secret


TokenEndpointAuthParams = Annotated[
    TokenEndpointAuthNoneParams | TokenEndpointAuthBasicParams | TokenEndpointAuthPostParams,
    Field(discriminator="type"),
]


class McpOAuthRefreshParams(ParamsModel):
    client_id: Annotated[str, Field(min_length=1, max_length=1024)]
    refresh_token: Secret
    token_endpoint: str
    token_endpoint_auth: TokenEndpointAuthParams
    resource: str | None = None
    scope: str | None = None

    @field_validator("token_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("token_endpoint must be an http or https URL")
        return value


class McpOAuthCreateParams(ParamsModel):
    type: Literal["mcp_oauth"]
    mcp_server_url: str
    access_token: Secret
    expires_at: Timestamp | None = None
    refresh: McpOAuthRefreshParams | None = None

    @field_validator("mcp_server_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return mcp_server_url(value)


class StaticBearerCreateParams(ParamsModel):
    type: Literal["static_bearer"]
    mcp_server_url: str
    token: Secret

    @field_validator("mcp_server_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return mcp_server_url(value)


class NetworkingUnrestrictedCredentialParams(ParamsModel):
    type: Literal["unrestricted"]


class NetworkingLimitedCredentialParams(ParamsModel):
    type: Literal["limited"]
    allowed_hosts: Annotated[list[str], Field(min_length=1, max_length=MAX_ALLOWED_HOSTS)]

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            check_allowed_host(host)
        return value


CredentialNetworkingParams = Annotated[
    NetworkingUnrestrictedCredentialParams | NetworkingLimitedCredentialParams, Field(discriminator="type")
]


class InjectionLocationParams(ParamsModel):
    """On create a location left out is false; on update it keeps its value. `null` is refused either way."""

    header: bool | None = None
    body: bool | None = None

    @model_validator(mode="after")
    def _no_null(self) -> InjectionLocationParams:
        for name in ("header", "body"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"injection_location.{name} may not be null")
        return self


class EnvironmentVariableCreateParams(ParamsModel):
    type: Literal["environment_variable"]
    secret_name: Annotated[str, Field(pattern=_SECRET_NAME)]
    secret_value: Secret
    networking: CredentialNetworkingParams
    injection_location: InjectionLocationParams | None = None

    @model_validator(mode="after")
    def _location(self) -> EnvironmentVariableCreateParams:
        if "injection_location" in self.model_fields_set:
            location = self.injection_location
            if location is None:
                raise ValueError("injection_location may not be null")
            if not (location.header or location.body):
                raise ValueError("injection_location must enable header or body")
        return self


CredentialAuthParams = Annotated[
    McpOAuthCreateParams | StaticBearerCreateParams | EnvironmentVariableCreateParams, Field(discriminator="type")
]


class CredentialCreateParams(ParamsModel):
    auth: CredentialAuthParams
    display_name: Annotated[str, Field(max_length=255)] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_metadata(value)
        return value


class TokenEndpointAuthBasicUpdateParams(ParamsModel):
    type: Literal["client_secret_basic"]
    client_secret: Secret | None = None


class TokenEndpointAuthPostUpdateParams(ParamsModel):
    type: Literal["client_secret_post"]
    client_secret: Secret | None = None


class McpOAuthRefreshUpdateParams(ParamsModel):
    refresh_token: Secret | None = None
    scope: str | None = None
    """`""` clears the stored scope."""
    token_endpoint_auth: (
        Annotated[TokenEndpointAuthBasicUpdateParams | TokenEndpointAuthPostUpdateParams, Field(discriminator="type")]
        | None
    ) = None


class McpOAuthUpdateParams(ParamsModel):
    type: Literal["mcp_oauth"]
    access_token: Secret | None = None
    expires_at: Timestamp | None = None
    refresh: McpOAuthRefreshUpdateParams | None = None


class StaticBearerUpdateParams(ParamsModel):
    type: Literal["static_bearer"]
    token: Secret | None = None


class EnvironmentVariableUpdateParams(ParamsModel):
    type: Literal["environment_variable"]
    secret_value: Secret | None = None
    networking: CredentialNetworkingParams | None = None
    injection_location: InjectionLocationParams | None = None

    @model_validator(mode="after")
    def _location(self) -> EnvironmentVariableUpdateParams:
        if "injection_location" in self.model_fields_set and self.injection_location is None:
            raise ValueError("injection_location may not be null")
        return self


CredentialAuthUpdateParams = Annotated[
    McpOAuthUpdateParams | StaticBearerUpdateParams | EnvironmentVariableUpdateParams, Field(discriminator="type")
]


class CredentialUpdateParams(ParamsModel):
    """Patch: `auth.type` must be the stored type; secrets sent replace the stored ones; `metadata` merges."""

    auth: CredentialAuthUpdateParams | None = None
    display_name: DisplayName | None = None
    metadata: dict[str, str | None] | None = None


# --- credential responses (no field can hold a secret) ----------------------------------------------------


class TokenEndpointAuthResponse(WireModel):
    type: Literal["none", "client_secret_basic", "client_secret_post"]


class McpOAuthRefreshResponse(WireModel):
    client_id: str
    token_endpoint: str
    token_endpoint_auth: TokenEndpointAuthResponse
    resource: str | None = None
    scope: str | None = None


class ProbeHttpResponse(WireModel):
    status_code: int
    content_type: str
    body: str
    body_truncated: bool


class RefreshFailure(WireModel):
    """loophost extension: the last refresh of an `mcp_oauth` credential failed (the Claude API announces it with
    the `vault_credential.refresh_failed` webhook). Cleared by the next refresh that succeeds, or by an update
    that sets a new access or refresh token."""

    failed_at: Timestamp
    status: Literal["failed", "connect_error"]
    """`failed`: the token endpoint answered with an error (`http_response`); `connect_error`: unreachable."""
    http_response: ProbeHttpResponse | None = None


class McpOAuthAuth(WireModel):
    type: Literal["mcp_oauth"] = "mcp_oauth"
    mcp_server_url: str
    expires_at: Timestamp | None = None
    refresh: McpOAuthRefreshResponse | None = None
    refresh_failed: RefreshFailure | None = None


class StaticBearerAuth(WireModel):
    type: Literal["static_bearer"] = "static_bearer"
    mcp_server_url: str


class NetworkingUnrestrictedCredential(WireModel):
    type: Literal["unrestricted"] = "unrestricted"


class NetworkingLimitedCredential(WireModel):
    type: Literal["limited"] = "limited"
    allowed_hosts: list[str]


class InjectionLocation(WireModel):
    header: bool
    body: bool


class EnvironmentVariableAuth(WireModel):
    type: Literal["environment_variable"] = "environment_variable"
    secret_name: str
    networking: Annotated[NetworkingUnrestrictedCredential | NetworkingLimitedCredential, Field(discriminator="type")]
    injection_location: InjectionLocation


CredentialAuth = Annotated[McpOAuthAuth | StaticBearerAuth | EnvironmentVariableAuth, Field(discriminator="type")]


class Credential(WireModel):
    id: str
    type: Literal["vault_credential"] = "vault_credential"
    vault_id: str
    display_name: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    auth: CredentialAuth
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: Timestamp | None = None


class McpProbe(WireModel):
    method: str
    http_response: ProbeHttpResponse | None = None


class RefreshOutcome(WireModel):
    status: Literal["succeeded", "failed", "connect_error", "no_refresh_token"]
    http_response: ProbeHttpResponse | None = None


class CredentialValidation(WireModel):
    type: Literal["vault_credential_validation"] = "vault_credential_validation"
    credential_id: str
    vault_id: str
    status: Literal["valid", "invalid", "unknown"]
    has_refresh_token: bool
    validated_at: Timestamp
    mcp_probe: McpProbe | None = None
    refresh: RefreshOutcome | None = None


def _networking_response(params: Any) -> dict[str, Any]:
    if isinstance(params, NetworkingLimitedCredentialParams):
        return {"type": "limited", "allowed_hosts": list(params.allowed_hosts)}
    return {"type": "unrestricted"}


def credential_auth_response(params: CredentialAuthParams) -> dict[str, Any]:
    """The shown part of a create `auth`, as JSON: every secret left out by construction."""
    if isinstance(params, McpOAuthCreateParams):
        auth: dict[str, Any] = {"type": "mcp_oauth", "mcp_server_url": params.mcp_server_url}
        if params.expires_at is not None:
            auth["expires_at"] = params.expires_at
        if params.refresh is not None:
            auth["refresh"] = {
                "client_id": params.refresh.client_id,
                "token_endpoint": params.refresh.token_endpoint,
                "token_endpoint_auth": {"type": params.refresh.token_endpoint_auth.type},
                "resource": params.refresh.resource,
                "scope": params.refresh.scope,
            }
        return auth
    if isinstance(params, StaticBearerCreateParams):
        return {"type": "static_bearer", "mcp_server_url": params.mcp_server_url}
    location = params.injection_location
    given = location is not None
    return {
        "type": "environment_variable",
        "secret_name": params.secret_name,
        "networking": _networking_response(params.networking),
        "injection_location": {
            "header": bool(location.header) if given and location is not None else True,
            "body": bool(location.body) if given and location is not None else True,
        },
    }


def credential_secrets(params: CredentialAuthParams) -> dict[str, str]:
    """The secrets of a create `auth`, by field name (what is encrypted at rest)."""
    if isinstance(params, McpOAuthCreateParams):
        secrets = {"access_token": params.access_token}
        if params.refresh is not None:
            secrets["refresh_token"] = params.refresh.refresh_token
            endpoint_auth = params.refresh.token_endpoint_auth
            if not isinstance(endpoint_auth, TokenEndpointAuthNoneParams):
                secrets["client_secret"] = endpoint_auth.client_secret
        return secrets
    if isinstance(params, StaticBearerCreateParams):
        return {"token": params.token}
    return {"secret_value": params.secret_value}


def apply_credential_auth_update(
    auth: dict[str, Any], secrets: dict[str, str], params: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The shown auth and the secrets after an `auth` update (same type, checked by the caller); ValueError when
    the result is invalid. A new `access_token` without `expires_at` keeps the stored expiry."""
    auth, secrets = dict(auth), dict(secrets)
    given = params.model_fields_set
    if isinstance(params, McpOAuthUpdateParams):
        if params.access_token is not None:
            secrets["access_token"] = params.access_token
        if "expires_at" in given and params.expires_at is not None:
            auth["expires_at"] = params.expires_at
        if params.refresh is not None:
            refresh = auth.get("refresh")
            if refresh is None:
                raise ValueError("this credential has no refresh configuration to update")
            refresh = dict(refresh)
            update = params.refresh
            if update.refresh_token is not None:
                secrets["refresh_token"] = update.refresh_token
            if "scope" in update.model_fields_set and update.scope is not None:
                refresh["scope"] = update.scope or None
            if update.token_endpoint_auth is not None:
                if refresh["token_endpoint_auth"]["type"] == "none":
                    raise ValueError("a client secret can only be set on a credential that uses one")
                if update.token_endpoint_auth.client_secret is not None:
                    secrets["client_secret"] = update.token_endpoint_auth.client_secret
            auth["refresh"] = refresh
    elif isinstance(params, StaticBearerUpdateParams):
        if params.token is not None:
            secrets["token"] = params.token
    elif isinstance(params, EnvironmentVariableUpdateParams):
        if params.secret_value is not None:
            secrets["secret_value"] = params.secret_value
        if params.networking is not None:
            auth["networking"] = _networking_response(params.networking)
        if params.injection_location is not None:
            location = dict(auth["injection_location"])
            for name in ("header", "body"):
                if name in params.injection_location.model_fields_set:
                    location[name] = getattr(params.injection_location, name)
            if not (location["header"] or location["body"]):
                raise ValueError("injection_location must enable header or body")
            auth["injection_location"] = location
    return auth, secrets
