"""The webhook deliverer: sends the outbox's deliveries, signed per Standard Webhooks, until each succeeds or
gives up.

Promises (tests/runtime/test_webhooks.py, tests/server/test_webhooks_api.py):
- every delivery row (written with the state change that caused it, `store/_webhooks.py`) is sent until a 2xx
  answers it, with the same body and `webhook-id` (the event id) every time, across crashes and restarts;
- a non-2xx (a 3xx too: redirects are never followed), a timeout or a connection error is retried after about
  1 s, 2 s, 4 s … capped at an hour, with jitter, until the event is a day old;
- an endpoint whose deliveries fail 20 times in a row is disabled with a `disabled_reason`; one whose host turns
  out private or loopback (SSRF) is disabled at once, unless the operator allowed private addresses;
- the address connected to is the address checked: a host name is resolved once per send, its addresses vetted,
  and the request sent to a vetted IP literal with the `Host` header and TLS (SNI, certificate check) still for
  the name, so a name that answers a public address to the check and a private one to the connect (DNS
  rebinding) cannot reach internal services (tests/runtime/test_webhook_ssrf.py);
- with several nodes, a delivery is claimed by one node at a time (`claim_deliveries`), and one whose node died
  mid-send is sent again once the claim expires.

Time comes from an injected clock (scheduling only; the signature's timestamp is the wall clock a receiver
checks), so tests run a day of retries without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx2
from standardwebhooks import Webhook

from . import _metrics
from ._clock import now as wall_clock
from ._clock import rfc3339
from ._webhooks import IPAddress, Resolve, Webhooks, refused_address, system_resolve, vet
from .store import DeliveryRow, Store

log = logging.getLogger("loophost.runtime.webhooks")

FIRST_RETRY = 1.0
MAX_RETRY = 3600.0
GIVE_UP_AFTER = timedelta(days=1)
DISABLE_AFTER = 20
CLAIM_TTL = timedelta(seconds=60)
"""A claim outlives the slowest send (`SEND_TIMEOUT`) by far: another node resends only after a real death."""
SEND_TIMEOUT = 10.0
BATCH = 64


def retry_delay(attempts: int, *, jitter: float) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4 … up to an hour, times `jitter`
    (drawn from [0.75, 1.25]) so endpoints that failed together do not retry together."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY) * jitter


class WebhookDeliverer:
    """Owned by the runtime: `start` on open, `close` on close (it cancels the loop and waits for it)."""

    def __init__(
        self,
        store: Store,
        endpoints: Webhooks,
        *,
        clock: Callable[[], datetime] = wall_clock,
        poll_interval: float = 1.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        resolve: Resolve = system_resolve,
        refused: Callable[[IPAddress], bool] = refused_address,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        """`resolve`, `refused` (the SSRF address rule, applied unless private addresses are allowed) and `verify`
        (the TLS trust; None: the system's) are the tests' to replace."""
        self._store = store
        self._endpoints = endpoints
        self.clock = clock
        self.poll_interval = poll_interval
        self._transport = transport
        self._resolve = resolve
        self._refused = refused
        self._verify: ssl.SSLContext | bool = True if verify is None else verify
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx2.AsyncClient | None = None
        self._pinned: httpx2.AsyncClient | None = None
        """For sends to a vetted IP literal: without keep-alive, because its pool knows a connection by IP only and
        would reuse one whose TLS was checked for another name at the same address."""
        self._random = random.Random()
        self._signers: dict[tuple[str, bytes], Webhook] = {}
        """Unsealed signers by (endpoint, sealed secret): a rotation seals a new secret, so it misses the cache."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loophost-webhook-deliverer")

    def _http(self, *, pinned: bool) -> httpx2.AsyncClient:
        """Made on first use: `run_once` works without the loop (tests drive it)."""
        if pinned:
            if self._pinned is None:
                self._pinned = self._new_client(httpx2.Limits(max_keepalive_connections=0))
            return self._pinned
        if self._client is None:
            self._client = self._new_client(httpx2.Limits())
        return self._client

    def _new_client(self, limits: httpx2.Limits) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            follow_redirects=False,
            timeout=SEND_TIMEOUT,
            transport=self._transport,
            trust_env=False,
            verify=self._verify,
            limits=limits,
        )

    async def close(self) -> None:
        """Stop the loop and close the HTTP client (`run_once` may still be called: it opens a new one, which
        the next `close` closes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in (self._client, self._pinned):
            if client is not None:
                await client.aclose()
        self._client = self._pinned = None

    def wake(self) -> None:
        """Something may be due now (a commit wrote outbox rows, an endpoint was re-enabled, the clock moved)."""
        self._wake.set()

    async def _run(self) -> None:
        if self._store.cluster is None:
            await self._store.webhooks.release_claims()  # this process owns the file: old claims died with it
        while True:
            try:
                sent = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store outage must not end deliveries for good: try again on the next tick
                log.exception("webhook delivery round failed")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):  # (not `wait_for`: on 3.11 it can swallow a cancellation)
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim what is due and send it (concurrently, within this call); how many were claimed."""
        at = self.clock()
        rows = await self._store.webhooks.claim_deliveries(
            now=rfc3339(at), claimed_until=rfc3339(at + CLAIM_TTL), limit=BATCH
        )
        if rows:
            async with asyncio.TaskGroup() as group:
                for row in rows:
                    group.create_task(self._deliver(row))
        return len(rows)

    async def _deliver(self, row: DeliveryRow) -> None:
        hooks = self._store.webhooks
        vetted = await vet(
            row.url, allow_private=self._endpoints.allow_private, resolve=self._resolve, refused=self._refused
        )
        reason = vetted.refusal
        if reason is not None:
            await hooks.failed(row.endpoint_id, row.event_id, error=reason, next_attempt_at=None, disable_after=1)
            await hooks.disable_endpoint(row.endpoint_id, reason, at=rfc3339(self.clock()))
            _metrics.webhook_attempt("refused")
            return
        # a name that did not resolve is a failed try, never a send by name (its second lookup is not vetted)
        error = vetted.unresolved or await self._send(row, vetted.addresses)
        at = self.clock()
        if error is None:
            await hooks.delivered(row.endpoint_id, row.event_id, at=rfc3339(at))
            _metrics.webhook_attempt("delivered")
            return
        retry_at = at + timedelta(seconds=retry_delay(row.attempts + 1, jitter=self._random.uniform(0.75, 1.25)))
        created = datetime.fromisoformat(row.created_at)
        next_attempt = rfc3339(retry_at) if retry_at - created <= GIVE_UP_AFTER else None
        disabled = await hooks.failed(
            row.endpoint_id, row.event_id, error=error, next_attempt_at=next_attempt, disable_after=DISABLE_AFTER
        )
        _metrics.webhook_attempt("retrying" if next_attempt is not None else "gave_up")
        if disabled:
            log.warning("webhook endpoint %s disabled after %d consecutive failures", row.endpoint_id, DISABLE_AFTER)

    async def _send(self, row: DeliveryRow, addresses: tuple[str, ...]) -> str | None:
        """POST the delivery; None on a 2xx, else what went wrong (for `last_error` and `disabled_reason`).
        With `addresses` (a host name's vetted ones), to each in turn while connecting fails, never to the name."""
        signer = self._signers.get((row.endpoint_id, row.secret))
        if signer is None:
            if len(self._signers) > 1024:
                self._signers.clear()
            signer = Webhook(self._endpoints.unseal(row.endpoint_id, row.secret))
            self._signers[(row.endpoint_id, row.secret)] = signer
        signed_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "loophost-webhooks/1",
            "webhook-id": row.event_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signer.sign(row.event_id, signed_at, row.payload),
        }
        try:
            response = await self._post(httpx2.URL(row.url), row.payload.encode(), headers, addresses)
        except httpx2.TimeoutException:
            return f"timed out after {SEND_TIMEOUT:g} s"
        except httpx2.HTTPError as exc:
            return f"request failed: {type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        if 300 <= response.status_code < 400:
            return f"HTTP {response.status_code} (redirects are not followed)"
        return f"HTTP {response.status_code}"

    async def _post(
        self, url: httpx2.URL, body: bytes, headers: dict[str, str], addresses: tuple[str, ...]
    ) -> httpx2.Response:
        if not addresses:  # an IP literal, or private addresses allowed: as the URL says
            return await self._http(pinned=False).post(url, content=body, headers=headers)
        pinned = {"host": url.netloc.decode("ascii"), **headers}  # the name's Host, and its TLS name below
        sni = {"sni_hostname": url.raw_host.decode("ascii")}
        for address in addresses[:-1]:  # the next address only when this one cannot be reached
            with contextlib.suppress(httpx2.ConnectError):
                return await self._http(pinned=True).post(
                    url.copy_with(host=address), content=body, headers=pinned, extensions=sni
                )
        return await self._http(pinned=True).post(
            url.copy_with(host=addresses[-1]), content=body, headers=pinned, extensions=sni
        )
