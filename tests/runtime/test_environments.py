"""Environments through the runtime API."""

from __future__ import annotations

import pytest

from loophost import wire
from loophost.runtime import Conflict, NotFound, Runtime

from .conftest import WS


async def test_environment_lifecycle(rt: Runtime) -> None:
    env = await rt.create_environment(
        WS,
        wire.EnvironmentCreateParams.model_validate(
            {
                "name": "prod",
                "config": {"type": "cloud", "networking": {"type": "unrestricted"}},
                "metadata": {"k": "v"},
            }
        ),
    )
    assert env.type == "environment"
    assert isinstance(env.config, wire.CloudConfig) and env.config.packages.pip == []
    with pytest.raises(Conflict):
        await rt.create_environment(WS, wire.EnvironmentCreateParams(name="prod"))
    updated = await rt.update_environment(
        WS, env.id, wire.EnvironmentUpdateParams.model_validate({"metadata": {"k": None}})
    )
    assert updated.metadata == {}
    assert await rt.get_environment(WS, env.id) == updated
    assert [e.id for e in (await rt.list_environments(WS)).data] == [env.id]
    archived = await rt.archive_environment(WS, env.id)
    assert archived.archived_at is not None
    assert (await rt.list_environments(WS)).data == []
    deleted = await rt.delete_environment(WS, env.id)
    assert (deleted.id, deleted.type) == (env.id, "environment_deleted")
    with pytest.raises(NotFound):
        await rt.get_environment(WS, env.id)


async def test_defaults_to_cloud_unrestricted(rt: Runtime) -> None:
    env = await rt.create_environment(WS, wire.EnvironmentCreateParams(name="plain"))
    assert isinstance(env.config, wire.CloudConfig)
    assert env.config.networking.type == "unrestricted"
