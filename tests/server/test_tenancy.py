"""Tenant isolation across the whole API: for every operation of /openapi.json that takes an id, another
workspace's key gets a 404 for workspace A's ids (never 403, never the resource), and nothing changes."""

from __future__ import annotations

import anthropic
import httpx2

from .conftest import KEY_B, ServerProcess

BODIES: dict[tuple[str, str], object] = {
    ("post", "/v1/agents/{agent_id}"): {"system": "stolen"},
    ("post", "/v1/environments/{environment_id}"): {"description": "stolen"},
    ("post", "/v1/sessions/{session_id}"): {"title": "stolen"},
    ("post", "/v1/sessions/{session_id}/events"): {
        "events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
    },
    ("post", "/v1/sessions/{session_id}/resources/{resource_id}"): {"authorization_token": "x"},
    ("post", "/v1/sessions/{session_id}/resources"): {"type": "github_repository", "url": "https://example.com/r"},
    ("post", "/v1/environments/{environment_id}/work/{work_id}"): {"metadata": {"k": "stolen"}},
    ("post", "/v1/vaults/{vault_id}"): {"display_name": "stolen"},
    ("post", "/v1/vaults/{vault_id}/credentials"): {
        "auth": {"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/b", "token": "t"}
    },
    ("post", "/v1/vaults/{vault_id}/credentials/{credential_id}"): {"display_name": "stolen"},
    ("post", "/v1/memory_stores/{memory_store_id}"): {"name": "stolen"},
    ("post", "/v1/memory_stores/{memory_store_id}/memories"): {"path": "/stolen.md", "content": "stolen"},
    ("post", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}"): {"content": "stolen"},
    ("patch", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}"): {"content": "stolen"},
    ("post", "/v1/webhooks/{webhook_id}"): {"name": "stolen"},
    ("post", "/v1/deployments/{deployment_id}"): {"name": "stolen"},
}


def test_every_id_of_another_workspace_is_404(server: ServerProcess, client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(name="tenant-a", model="scripted")
    env = client.beta.environments.create(name=f"tenant-a-{agent.id}")
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    uploaded = client.beta.files.upload(file=("secret.txt", b"workspace a only", "text/plain"))
    resource = client.beta.sessions.resources.add(session.id, type="file", file_id=uploaded.id)
    thread = next(iter(client.beta.sessions.threads.list(session.id)))
    vault = client.beta.vaults.create(display_name="tenant-a")
    credential = client.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/a", "token": "tok-a"}
    )
    store = client.beta.memory_stores.create(name="tenant-a")
    memory = client.beta.memory_stores.memories.create(store.id, path="/a.md", content="workspace a only")
    skill_md = b"---\nname: tenant-a\ndescription: workspace a only\n---\n"
    skill = client.beta.skills.create(files=[("tenant-a/SKILL.md", skill_md, "text/markdown")])
    hook = httpx2.post(
        f"{server.url}/v1/webhooks",
        headers={"authorization": f"Bearer {client.api_key}"},
        json={"url": "https://93.184.215.14/hook", "enabled_events": ["memory_store.deleted"], "name": "tenant-a"},
        timeout=30,
    ).json()
    deployment = client.beta.deployments.create(
        name="tenant-a",
        agent=agent.id,
        environment_id=env.id,
        initial_events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}],
    )
    run = client.beta.deployments.run(deployment.id)
    ids = {
        "webhook_id": hook["id"],
        "deployment_id": deployment.id,
        "run_id": run.id,
        "memory_store_id": store.id,
        "memory_id": memory.id,
        "memory_version_id": memory.memory_version_id,
        "skill_id": skill.id,
        "version": skill.latest_version_id,
        "vault_id": vault.id,
        "credential_id": credential.id,
        "agent_id": agent.id,
        "environment_id": env.id,
        "session_id": session.id,
        "file_id": uploaded.id,
        "resource_id": resource.id,
        "thread_id": thread.id,
        "key_id": "ekey_0",
        "work_id": "work_0",
    }
    spec = httpx2.get(f"{server.url}/openapi.json", timeout=60).json()  # generated on first request
    checked = 0
    with httpx2.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY_B}"}, timeout=10) as other:
        for path, operations in spec["paths"].items():
            if "{" not in path:
                continue
            for method in operations:
                url = path.format(**ids)
                body = BODIES.get((method, path))
                if path.endswith("/stream"):
                    with other.stream(method.upper(), url) as response:
                        status = response.status_code
                        response.read()
                        text = response.text
                else:
                    response = other.request(method.upper(), url, json=body)
                    status, text = response.status_code, response.text
                assert status == 404, f"{method.upper()} {path} answered {status}: {text}"
                assert "workspace a only" not in text and "tenant-a" not in text
                checked += 1
    assert checked >= 25
    # nothing changed for the owner
    assert client.beta.agents.retrieve(agent.id).system is None
    assert client.beta.sessions.retrieve(session.id).title is None
    assert client.beta.vaults.retrieve(vault.id).display_name == "tenant-a"
    assert client.beta.vaults.credentials.retrieve(credential.id, vault_id=vault.id).display_name is None
    assert client.beta.files.download(uploaded.id).read() == b"workspace a only"
    assert (
        client.beta.memory_stores.memories.retrieve(memory.id, memory_store_id=store.id).content == "workspace a only"
    )
    assert client.beta.memory_stores.retrieve(store.id).name == "tenant-a"
    assert client.beta.deployments.retrieve(deployment.id).name == "tenant-a"
    assert client.beta.skills.retrieve(skill.id).latest_version_id == skill.latest_version_id
    listed_by_other = anthropic.Anthropic(base_url=server.url, api_key=KEY_B, max_retries=0)
    assert session.id not in [s.id for s in listed_by_other.beta.sessions.list()]
    assert uploaded.id not in [f.id for f in listed_by_other.beta.files.list()]
