"""Session resources (spec §4.1, §4.2): what gets mounted into the session's container."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ._base import ParamsModel, Timestamp, WireModel

MemoryAccess = Literal["read_write", "read_only"]


class BranchCheckout(WireModel):
    type: Literal["branch"] = "branch"
    name: str


class CommitCheckout(WireModel):
    type: Literal["commit"] = "commit"
    sha: str


Checkout = Annotated[BranchCheckout | CommitCheckout, Field(discriminator="type")]


class FileResource(WireModel):
    """An uploaded file mounted read-only, by default at `/mnt/session/uploads/<file_id>`."""

    type: Literal["file"] = "file"
    id: str
    file_id: str
    mount_path: str
    created_at: Timestamp
    updated_at: Timestamp


class GitHubRepositoryResource(WireModel):
    """A cloned repository. The authorization token is write-only: it is dropped even if passed in."""

    type: Literal["github_repository"] = "github_repository"
    id: str
    url: str
    mount_path: str
    checkout: Checkout | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @model_validator(mode="before")
    @classmethod
    def _never_carry_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and "authorization_token" in data:
            data = {k: v for k, v in data.items() if k != "authorization_token"}
        return data


class MemoryStoreResource(WireModel):
    """A memory store attached at create time. `id` is not in the SDK shape; loophost may set one."""

    type: Literal["memory_store"] = "memory_store"
    id: str | None = None
    memory_store_id: str
    access: MemoryAccess | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    mount_path: str | None = None


SessionResource = Annotated[FileResource | GitHubRepositoryResource | MemoryStoreResource, Field(discriminator="type")]


class FileResourceParams(ParamsModel):
    """A file to mount; also the whole body of `POST /sessions/{id}/resources`."""

    type: Literal["file"] = "file"
    file_id: Annotated[str, Field(min_length=1)]
    mount_path: str | None = None


class GitHubRepositoryResourceParams(ParamsModel):
    """A repository to clone; `mount_path` defaults to `/workspace/<repo>`."""

    type: Literal["github_repository"] = "github_repository"
    url: Annotated[str, Field(min_length=1)]
    authorization_token: str | None = Field(default=None, repr=False)
    checkout: Checkout | None = None
    mount_path: str | None = None


class MemoryStoreResourceParams(ParamsModel):
    """A memory store to attach (create time only)."""

    type: Literal["memory_store"] = "memory_store"
    memory_store_id: Annotated[str, Field(min_length=1)]
    access: MemoryAccess | None = None
    instructions: Annotated[str, Field(max_length=4096)] | None = None


SessionResourceParams = Annotated[
    FileResourceParams | GitHubRepositoryResourceParams | MemoryStoreResourceParams,
    Field(discriminator="type"),
]


class ResourceUpdateParams(ParamsModel):
    """`POST /sessions/{id}/resources/{rid}`: rotate a github_repository token."""

    authorization_token: str = Field(min_length=1, repr=False)
