"""Webhook endpoints (`Runtime.webhooks`): loophost's own admin API for them, workspace-scoped, shaped like the
SDK's organization webhooks (part 2 §6.4). Deliveries are `_webhook_delivery.py`'s.

The signing secret (`whsec_` + base64 of 32 random bytes) is returned only by create and
`regenerate_signing_secret`; it is stored sealed by the vault key ring (the deliverer needs it back to sign, so it
cannot be a hash). A URL is checked when it is set: https (http only with `webhooks_allow_private`), and a host
that is not private or loopback unless the operator allowed it (`loophost serve --webhooks-allow-private`). The
deliverer checks again before each send with `vet`, and connects to the address it vetted (no second lookup: DNS
rebinding cannot swap in a private address between the check and the connect).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from .. import wire
from ._clock import now, rfc3339
from ._cursors import check_limit, decode, encode, keyset
from ._errors import Conflict, InvalidRequest, NotFound
from ._ids import new_id
from ._vault_keys import VaultKeyRing
from .store import DeliveryRecord, Store, WebhookEndpointRow

_MAX_LIST = 100
PRIVATE_REFUSAL = "pass `--webhooks-allow-private` to `loophost serve` to allow it"


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]
"""(host name, port) -> its addresses, as getaddrinfo answers them; raises OSError when the name does not resolve
(UnicodeError: when IDNA cannot encode it)."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The event loop's getaddrinfo (TCP addresses only)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def refused_address(address: IPAddress) -> bool:
    """The SSRF rule: anything not globally routable (private, loopback, link-local, reserved…) or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class Vetted:
    """What `vet` found for a URL."""

    refusal: str | None = None
    """Why loophost will not send to it (the URL or an address it resolved to is refused)."""
    addresses: tuple[str, ...] = ()
    """The vetted addresses of a host name, in the resolver's order: connect to one of these, never to the name
    (resolving it again could answer a private address). Empty: connect as the URL says (its host is an IP
    literal, or private addresses are allowed, or, see `unresolved`, there is nothing to connect to)."""
    unresolved: str | None = None
    """The name did not resolve (not a refusal: the send fails and is retried)."""


async def vet(
    url: str,
    *,
    allow_private: bool,
    resolve: Resolve = system_resolve,
    refused: Callable[[IPAddress], bool] = refused_address,
) -> Vetted:
    """Check `url` for SSRF, resolving its host name once; the addresses returned are the ones checked."""
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:  # a port that is not a number, or out of range
        port = 0
    if parts.scheme not in ("https", "http") or not parts.hostname or not port:
        return Vetted(refusal=f"webhook URL {url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not allow_private:
        return Vetted(refusal=f"webhook URL {url!r} is not https; {PRIVATE_REFUSAL} (plain http is allowed with it)")
    if allow_private:
        return Vetted()
    host = parts.hostname
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await resolve(host, port)
        except (OSError, UnicodeError) as exc:  # (UnicodeError: a name IDNA cannot encode)
            return Vetted(unresolved=f"could not resolve {host!r}: {exc}")
        addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
        if not addresses:
            return Vetted(unresolved=f"could not resolve {host!r}: no address")
    for address in addresses:
        if refused(address):
            return Vetted(
                refusal=f"webhook URL host {host!r} is a private or loopback address ({address}); {PRIVATE_REFUSAL}"
            )
    return Vetted(addresses=() if literal is not None else tuple(str(a) for a in addresses))


async def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why loophost will not send to `url` (None: it will), checked when a URL is set: a host whose name resolves
    to a private, loopback or link-local address is refused (SSRF) unless the operator allowed private addresses.
    A name that does not resolve is not refused here: its sends fail and are retried. (Each send vets the URL again
    with `vet` and connects to the address vetted.)"""
    return (await vet(url, allow_private=allow_private)).refusal


class Webhooks:
    """The webhook endpoint service. Every call takes the caller's workspace first; other workspaces' ids are
    not found."""

    def __init__(
        self,
        store: Store,
        keys: VaultKeyRing,
        *,
        allow_private: bool = False,
        default_page_size: int = 20,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self.allow_private = allow_private
        self._page = default_page_size
        self.on_change = on_change
        """Called when deliveries may be due again (an endpoint was re-enabled)."""
        self._audience: set[str] | None = None
        """The workspaces that hold (or held) an endpoint, when this process is the store's only writer; None:
        not known (a cluster: another node may add an endpoint), so every commit writes its outbox rows."""

    async def open(self) -> None:
        """Learn which workspaces have endpoints. Without a cluster only this process adds endpoints, so commits
        in the other workspaces skip building outbox events that no endpoint could receive."""
        if self._store.cluster is None:
            self._audience = await self._store.webhooks.endpoint_workspaces()

    def may_hear(self, workspace: str) -> bool:
        """Whether a change in `workspace` may have a webhook endpoint to tell (a superset: the outbox's insert
        picks the subscribed, enabled endpoints in the commit's own transaction)."""
        return self._audience is None or workspace in self._audience

    def seal(self, endpoint_id: str, secret: str) -> bytes:
        return self._keys.encrypt({"signing_secret": secret}, bound_to=endpoint_id)

    def unseal(self, endpoint_id: str, sealed: bytes) -> str:
        return self._keys.decrypt(sealed, bound_to=endpoint_id)["signing_secret"]

    async def _check_url(self, url: str) -> None:
        reason = await refusal(url, allow_private=self.allow_private)
        if reason is not None:
            raise InvalidRequest(reason, code="webhook_url_refused")

    async def create(self, workspace: str, params: wire.WebhookCreateParams) -> wire.NewWebhookEndpoint:
        await self._check_url(params.url)
        if await self._store.webhooks.count_endpoints(workspace) >= wire.MAX_WEBHOOK_ENDPOINTS:
            raise Conflict(
                f"a workspace holds at most {wire.MAX_WEBHOOK_ENDPOINTS} webhook endpoints", code="webhook_limit"
            )
        endpoint_id = new_id("whep")
        secret = new_signing_secret()
        ts = rfc3339(now())
        row = WebhookEndpointRow(
            workspace=workspace,
            id=endpoint_id,
            url=params.url,
            enabled_events=json.dumps(params.enabled_events),
            state="enabled",
            disabled_reason="",
            name=params.name,
            description=params.description,
            created_at=ts,
            updated_at=ts,
            secret=self.seal(endpoint_id, secret),
        )
        if self._audience is not None:
            self._audience.add(workspace)  # before the insert: a commit racing it may write rows for it
        await self._store.webhooks.insert_endpoint(row)
        return wire.NewWebhookEndpoint(**_endpoint(row).model_dump(), signing_secret=secret)

    async def _row(self, workspace: str, endpoint_id: str) -> WebhookEndpointRow:
        row = await self._store.webhooks.get_endpoint(workspace, endpoint_id)
        if row is None:
            raise NotFound(f"webhook endpoint {endpoint_id!r} not found", resource="webhook_endpoint")
        return row

    async def get(self, workspace: str, endpoint_id: str) -> wire.WebhookEndpoint:
        return _endpoint(await self._row(workspace, endpoint_id))

    async def list(
        self, workspace: str, *, limit: int | None = None, page: str | None = None, order: str = "asc"
    ) -> wire.CursorPage[wire.WebhookEndpoint]:
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be `asc` or `desc`", code="invalid_order")
        descending = order == "desc"
        size = check_limit(limit, default=self._page, maximum=_MAX_LIST)
        after = keyset(decode(page, descending=descending))
        rows = await self._store.webhooks.list_endpoints(workspace, after=after, descending=descending, limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        next_page = encode([rows[-1].created_at, rows[-1].id], descending=descending) if more else None
        return wire.CursorPage[wire.WebhookEndpoint](data=[_endpoint(r) for r in rows], next_page=next_page)

    async def update(self, workspace: str, endpoint_id: str, params: wire.WebhookUpdateParams) -> wire.WebhookEndpoint:
        row = await self._row(workspace, endpoint_id)
        changed = row
        if params.url is not None and params.url != row.url:
            await self._check_url(params.url)
            changed = replace(changed, url=params.url)
        if params.enabled_events:  # an empty list leaves the set unchanged
            changed = replace(changed, enabled_events=json.dumps(params.enabled_events))
        if params.name is not None:
            changed = replace(changed, name=params.name)
        if params.description is not None:
            changed = replace(changed, description=params.description)
        if params.state is not None and params.state != row.state:
            changed = replace(changed, state=params.state, disabled_reason="")
        if changed == row:
            return _endpoint(row)
        changed = replace(changed, updated_at=rfc3339(now()))
        if not await self._store.webhooks.update_endpoint(changed):
            raise NotFound(f"webhook endpoint {endpoint_id!r} not found", resource="webhook_endpoint")
        if changed.state == "enabled" and self.on_change is not None:
            self.on_change()  # re-enabled: its pending deliveries are due again
        return _endpoint(changed)

    async def deliveries(
        self, workspace: str, endpoint_id: str, *, limit: int | None = None, page: str | None = None
    ) -> wire.CursorPage[wire.WebhookDelivery]:
        """The endpoint's deliveries, newest event first, so an operator sees what is failing and why."""
        await self._row(workspace, endpoint_id)
        size = check_limit(limit, default=self._page, maximum=_MAX_LIST)
        before = keyset(decode(page, descending=True))
        rows = await self._store.webhooks.recent_deliveries(endpoint_id, before=before, limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        next_page = encode([rows[-1].created_at, rows[-1].event_id], descending=True) if more else None
        return wire.CursorPage[wire.WebhookDelivery](data=[_delivery(r) for r in rows], next_page=next_page)

    async def regenerate_signing_secret(self, workspace: str, endpoint_id: str) -> wire.WebhookSigningSecret:
        """Deliveries from now on (retries included) are signed with the new secret only."""
        row = await self._row(workspace, endpoint_id)
        secret = new_signing_secret()
        sealed = self.seal(endpoint_id, secret)
        if not await self._store.webhooks.update_endpoint(replace(row, secret=sealed, updated_at=rfc3339(now()))):
            raise NotFound(f"webhook endpoint {endpoint_id!r} not found", resource="webhook_endpoint")
        return wire.WebhookSigningSecret(signing_secret=secret)

    async def delete(self, workspace: str, endpoint_id: str) -> wire.Deleted:
        if not await self._store.webhooks.delete_endpoint(workspace, endpoint_id):
            raise NotFound(f"webhook endpoint {endpoint_id!r} not found", resource="webhook_endpoint")
        return wire.Deleted(id=endpoint_id, type="webhook_endpoint_deleted")


def _endpoint(row: WebhookEndpointRow) -> wire.WebhookEndpoint:
    return wire.WebhookEndpoint(
        id=row.id,
        name=row.name,
        description=row.description,
        url=row.url,
        enabled_events=json.loads(row.enabled_events),
        state="enabled" if row.state == "enabled" else "disabled",
        disabled_reason=row.disabled_reason,
        created_at=datetime.fromisoformat(row.created_at),
        updated_at=datetime.fromisoformat(row.updated_at),
    )


def _delivery(row: DeliveryRecord) -> wire.WebhookDelivery:
    return wire.WebhookDelivery(
        event_id=row.event_id,
        event_type=row.type,
        created_at=datetime.fromisoformat(row.created_at),
        state="delivered" if row.state == "delivered" else "failed" if row.state == "failed" else "pending",
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=datetime.fromisoformat(row.next_attempt_at) if row.state == "pending" else None,
        delivered_at=datetime.fromisoformat(row.delivered_at) if row.delivered_at else None,
    )
