"""`loophost webhooks create|list|delete|rotate-secret`: a loophost server's webhook endpoints (docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..client import ClaudeManagedAgents
from ._app_hosted import ApiKey, BaseUrl, _on_host

webhooks_app = typer.Typer(
    name="webhooks",
    help="Webhook endpoints of a loophost server: create, list, delete, rotate-secret.",
    no_args_is_help=True,
)


async def _create(
    host: ClaudeManagedAgents, console: Console, url: str, *, events: list[str], name: str, description: str
) -> int:
    body: dict[str, Any] = {"url": url, "enabled_events": events}
    if name:
        body["name"] = name
    if description:
        body["description"] = description
    endpoint = await host.request("POST", "/v1/webhooks", body=body)
    console.print(f"created {endpoint['id']} -> {endpoint['url']} ({', '.join(endpoint['enabled_events'])})")
    console.print(f"signing secret (shown only now): {endpoint['signing_secret']}", soft_wrap=True)
    return 0


async def _list(host: ClaudeManagedAgents, console: Console) -> int:
    table = Table("endpoint", "url", "state", "events", box=None, pad_edge=False)
    page: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if page:
            params["page"] = page
        found = await host.request("GET", "/v1/webhooks", params=params)
        for e in found.get("data") or []:
            state = e["state"] + (f" ({e['disabled_reason']})" if e.get("disabled_reason") else "")
            table.add_row(e["id"], e["url"], state, ", ".join(e["enabled_events"]))
        page = found.get("next_page")
        if not page:
            break
    console.print(table)
    return 0


async def _delete(host: ClaudeManagedAgents, console: Console, endpoint_id: str) -> int:
    await host.request("DELETE", f"/v1/webhooks/{endpoint_id}")
    console.print(f"deleted {endpoint_id}")
    return 0


async def _rotate(host: ClaudeManagedAgents, console: Console, endpoint_id: str) -> int:
    found = await host.request("POST", f"/v1/webhooks/{endpoint_id}/regenerate_signing_secret")
    console.print(f"new signing secret (shown only now): {found['signing_secret']}", soft_wrap=True)
    return 0


@webhooks_app.command("create")
def webhooks_create(
    url: str = typer.Argument(
        ..., help="Where deliveries are POSTed (https; http only on a --webhooks-allow-private server)."
    ),
    event: list[str] = typer.Option(
        ..., "--event", "-e", help="An event type to deliver (repeat), e.g. session.status_idled."
    ),
    name: str = typer.Option("", help="A short label."),
    description: str = typer.Option("", help="Notes about the endpoint."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Register an endpoint; prints its signing secret once."""
    _on_host(base_url, api_key, _create, url, events=event, name=name, description=description)


@webhooks_app.command("list")
def webhooks_list(base_url: str | None = BaseUrl, api_key: str | None = ApiKey) -> None:
    """Every endpoint: url, state (and why loophost disabled it), events."""
    _on_host(base_url, api_key, _list)


@webhooks_app.command("delete")
def webhooks_delete(
    endpoint_id: str = typer.Argument(..., help="The endpoint id."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Remove an endpoint and its undelivered events."""
    _on_host(base_url, api_key, _delete, endpoint_id)


@webhooks_app.command("rotate-secret")
def webhooks_rotate(
    endpoint_id: str = typer.Argument(..., help="The endpoint id."),
    base_url: str | None = BaseUrl,
    api_key: str | None = ApiKey,
) -> None:
    """A new signing secret (printed once); deliveries from now on are signed with it only."""
    _on_host(base_url, api_key, _rotate, endpoint_id)
