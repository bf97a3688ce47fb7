"""`BedrockAgentCore`: AWS Bedrock AgentCore harnesses as a loop host, one signed InvokeHarness per turn.

The harness runs the agent loop server-side; local tools are declared as `inline_function` tools, so the harness
pauses on them and the client answers with another invoke on the same runtime session. botocore supplies SigV4
and event-stream decoding (imported here only, so `import loophost` stays light); HTTP is httpx2 like the other
providers, with a per-read timeout that acts as an idle timeout (a harness turn can run for minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx2

from .._errors import ConnectionLost, HostError
from .._provider import OpenRequest, Recovery
from .._results import ToolSpec, TurnInput, TurnResult
from .._telemetry import propagate_context
from . import _bedrock_provision as provisioning
from . import _bedrock_wire as wire
from ._bedrock_wire import AuthenticationError, CorruptStreamError, TruncatedStreamError

if TYPE_CHECKING:
    from .._specs import AgentHandle, AgentSpec

__all__ = ("AgentCoreConnection", "BedrockAgentCore")

Sleep = Callable[[float], Awaitable[Any]]

_botocore = wire.botocore

_HOOKS: dict[str, list[Any]] = {"request": [propagate_context]}
"""The caller's trace context on every call (`traceparent` is not signed: SigV4 signs the headers it names)."""


class _Signer:
    """SigV4 for service `bedrock-agentcore` (both planes), credentials resolved once, frozen per request."""

    def __init__(self, credentials: Any, region: str) -> None:
        self._credentials = credentials
        self._region = region

    async def _frozen(self) -> Any:
        credentials_module = _botocore("botocore.credentials")
        Credentials, RefreshableCredentials = credentials_module.Credentials, credentials_module.RefreshableCredentials
        if self._credentials is None:
            session_module = _botocore("botocore.session")
            # The default chain may read files or call the instance metadata service: off the event loop.
            found = await asyncio.to_thread(lambda: session_module.get_session().get_credentials())
            if found is None:
                raise AuthenticationError(
                    "no AWS credentials found (environment, shared config/credentials files, SSO, instance role): "
                    "configure them or pass credentials=",
                    error_type="NoCredentials",
                )
            self._credentials = found
        creds = self._credentials
        if isinstance(creds, Mapping):
            creds = self._credentials = Credentials(creds["access_key"], creds["secret_key"], creds.get("token"))
        if isinstance(creds, RefreshableCredentials):
            return await asyncio.to_thread(creds.get_frozen_credentials)
        if hasattr(creds, "get_frozen_credentials"):
            return creds.get_frozen_credentials()
        return Credentials(creds.access_key, creds.secret_key, getattr(creds, "token", None))

    async def sign(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to send: the given ones plus `X-Amz-Date`, `Authorization` and the session token if any."""
        request = _botocore("botocore.awsrequest").AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        _botocore("botocore.auth").SigV4Auth(await self._frozen(), wire.SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())


class _Http:
    """Signed requests with retries on throttling, 5xx and transport errors, before any response body is read."""

    def __init__(self, provider: BedrockAgentCore, client: httpx2.AsyncClient) -> None:
        self.provider = provider
        self.client = client

    async def open(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], *, session_id: str | None = None
    ) -> httpx2.Response:
        """A 2xx response with its body not yet read; typed errors after `max_attempts`."""
        provider = self.provider
        for attempt in range(provider.max_attempts):
            last = attempt + 1 == provider.max_attempts
            signed = await provider._signer.sign(method, url, body, headers)
            request = self.client.build_request(method, url, content=body, headers=signed)
            try:
                response = await self.client.send(request, stream=True)
            except httpx2.TransportError as exc:
                if last:
                    # A refused connection never reached the host; a read that failed may have been received.
                    delivered = False if isinstance(exc, httpx2.ConnectError) else None
                    raise ConnectionLost(
                        f"AgentCore unreachable at {url}: {exc!r}", delivered=delivered, session_id=session_id
                    ) from exc
                await provider._backoff(attempt)
                continue
            if response.is_success:
                return response
            try:
                content = await response.aread()
            finally:
                await response.aclose()
            error = wire.http_error(
                response.status_code, response.headers.get("x-amzn-ErrorType"), content, session_id=session_id
            )
            if not error.retryable or last:
                raise error
            await provider._backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, query: Mapping[str, str] | None = None
    ) -> Any:
        """A control-plane call: JSON in, JSON out (the `ControlPlane` protocol of the provisioning module)."""
        url = self.provider.control_endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(dict(query), quote_via=urllib.parse.quote, safe="")
        content = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = await self.open(method, url, content, headers)
        try:
            data = await response.aread()
        finally:
            await response.aclose()
        return json.loads(data) if data else {}


class BedrockAgentCore:
    """An AWS Bedrock AgentCore harness (request/response: one InvokeHarness per turn).

    `harness_arn` is the harness to invoke (a provisioned handle's `agent_id`, passed as `agent_id=`, wins);
    `region` defaults to the ARN's, then `AWS_REGION`/`AWS_DEFAULT_REGION`. `credentials` is a botocore
    `Credentials` or a mapping with `access_key`, `secret_key` and optional `token`; None uses botocore's default
    chain. `endpoint_url` replaces the data-plane host (and, unless `control_endpoint_url` is given, the control
    plane's); `AWS_ENDPOINT_URL_BEDROCK_AGENTCORE[_CONTROL]` and `AWS_ENDPOINT_URL` are honored as in the AWS
    SDKs. Pre-stream failures are retried `max_attempts` times in all; a stream cut before its stop reason is
    replayed up to `stream_retries` times (set 0 if a replayed turn could repeat server-side side effects).
    """

    name = "bedrock"

    def __init__(
        self,
        *,
        region: str | None = None,
        harness_arn: str | None = None,
        endpoint_url: str | None = None,
        credentials: Any = None,
        control_endpoint_url: str | None = None,
        qualifier: str | None = None,
        max_attempts: int = 3,
        stream_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        sleep: Sleep | None = None,
    ) -> None:
        _botocore("botocore.auth")  # fail at construction, with the install hint, when botocore is missing
        arn_region = wire.arn_region(harness_arn) if harness_arn else None
        region = region or arn_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ValueError("BedrockAgentCore needs region= (or a harness ARN, or AWS_REGION)")
        if arn_region and arn_region != region:
            raise ValueError(f"region {region!r} differs from the harness ARN's region {arn_region!r}")
        if max_attempts < 1 or stream_retries < 0:
            raise ValueError("max_attempts must be >= 1 and stream_retries >= 0")
        self.region = region
        self.harness_arn = harness_arn
        env = os.environ.get  # the AWS SDKs' endpoint variables: per service first, then the global one
        self.endpoint = (
            endpoint_url
            or env("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE")
            or env("AWS_ENDPOINT_URL")
            or f"https://bedrock-agentcore.{region}.amazonaws.com"
        ).rstrip("/")
        self.control_endpoint = (
            control_endpoint_url
            or env("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE_CONTROL")
            or endpoint_url
            or env("AWS_ENDPOINT_URL")
            or f"https://bedrock-agentcore-control.{region}.amazonaws.com"
        ).rstrip("/")
        self.qualifier = qualifier
        self.max_attempts = max_attempts
        self.stream_retries = stream_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = httpx2.Timeout(connect=connect_timeout, read=idle_timeout, write=60.0, pool=connect_timeout)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._signer = _Signer(credentials, region)
        self._client: httpx2.AsyncClient | None = None
        self._depth = 0

    async def __aenter__(self) -> BedrockAgentCore:
        """Hold one HTTP client (connection pool) until the outermost `async with` exits: `provision` and the
        Session enter the provider themselves, inside the caller's own block."""
        self._depth += 1
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self.timeout, event_hooks=_HOOKS)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._depth = max(0, self._depth - 1)
        if self._depth == 0:
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    def _http(self) -> tuple[_Http, bool]:
        """The shared client inside `async with`, else a fresh one the caller must close (second item True)."""
        if self._client is not None:
            return _Http(self, self._client), False
        return _Http(self, httpx2.AsyncClient(timeout=self.timeout, event_hooks=_HOOKS)), True

    async def _backoff(self, attempt: int) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        await self._sleep(delay / 2 + random.uniform(0, delay / 2))

    async def open_session(self, request: OpenRequest) -> AgentCoreConnection:
        """Attach to `request.session_id` (validated) or mint a new runtime session id; no request is sent yet."""
        harness_arn = request.agent_id or self.harness_arn
        if not harness_arn:
            raise ValueError("BedrockAgentCore needs harness_arn= (or a provisioned handle's agent_id)")
        if wire.arn_region(harness_arn) != self.region:
            raise ValueError(f"harness {harness_arn} is not in region {self.region}")
        session_id = wire.check_session_id(request.session_id) if request.session_id else wire.new_session_id()
        http, owned = self._http()
        return AgentCoreConnection(
            http, owned, harness_arn, session_id, resumed=request.session_id is not None, request=request
        )

    async def provision(self, spec: AgentSpec) -> AgentHandle:
        """CreateHarness (or adopt a same-named one), then wait until it is READY; see `_bedrock_provision`."""
        http, owned = self._http()
        try:
            return await provisioning.provision_harness(http, spec, region=self.region)
        finally:
            if owned:
                await http.client.aclose()

    async def teardown(self, handle: AgentHandle) -> None:
        """DeleteHarness (asynchronous on AWS); a harness already gone counts as removed."""
        http, owned = self._http()
        try:
            await provisioning.delete_harness(http, handle)
        finally:
            if owned:
                await http.client.aclose()

    def cache_scope(self) -> str:
        return f"bedrock:{self.region}:{self.endpoint}"


class AgentCoreConnection:
    """One harness runtime session. Invokes are serialized: two overlapping invokes on a session are undefined."""

    def __init__(
        self, http: _Http, owned: bool, harness_arn: str, session_id: str, *, resumed: bool, request: OpenRequest
    ) -> None:
        self._http = http
        self._owned = owned
        self.harness_arn = harness_arn
        self._session_id = session_id
        self._resumed = resumed
        self._tools: tuple[ToolSpec, ...] = request.all_tools
        self._local_names = frozenset(tool.name for tool in self._tools)
        self._overrides = _overrides(request, self._tools)
        self._user_id = request.options.get("runtime_user_id")
        self._qualifier = request.options.get("qualifier") or http.provider.qualifier
        self._pending: list[dict[str, Any]] | None = None
        self._played = False
        self._lock = asyncio.Lock()

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def resumed(self) -> bool:
        return self._resumed

    @property
    def reconnectable(self) -> bool:
        return False

    def _messages(self, turn_input: TurnInput | None) -> list[dict[str, Any]]:
        if turn_input is not None and turn_input.confirmations:
            raise HostError(
                "Bedrock AgentCore harnesses never ask for tool confirmation: confirmations cannot be sent",
                session_id=self._session_id,
            )
        if turn_input is None or turn_input.is_empty():
            raise HostError(
                "nothing to send: an AgentCore turn needs a prompt or tool results (the harness answers requests, "
                "it has no stream to keep reading)",
                session_id=self._session_id,
            )
        if turn_input.tool_results:
            return wire.resume_messages(turn_input, self._pending)
        return [wire.user_message(turn_input.text or "")]

    async def turn(self, turn_input: TurnInput | None) -> AsyncIterator[dict[str, Any]]:
        """One InvokeHarness: yield its events as they decode (see `_bedrock_wire` for their shape).

        A stream cut before its last `messageStop` is replayed (marked by a `loophost.stream_retry` event) up to
        `stream_retries` times, then `TruncatedStreamError`; an exception frame raises its typed error at once.
        """
        body = json.dumps({"messages": self._messages(turn_input), **self._overrides}).encode()
        query = {"harnessArn": self.harness_arn, **({"qualifier": self._qualifier} if self._qualifier else {})}
        url = f"{self._http.provider.endpoint}/harnesses/invoke?" + urllib.parse.urlencode(
            query, quote_via=urllib.parse.quote, safe=""
        )
        headers = {"Content-Type": "application/json", wire.SESSION_HEADER: self._session_id}
        if self._user_id:
            headers[wire.USER_HEADER] = str(self._user_id)
        async with self._lock:
            self._played = True
            retries = self._http.provider.stream_retries
            for attempt in range(retries + 1):
                events: list[dict[str, Any]] = []
                outcome: list[str | None] = []
                async for event in self._stream(url, body, headers, outcome):
                    events.append(event)
                    yield event
                if outcome[0] is None:
                    stop = wire.fold(events).stop_reason
                    self._pending = wire.assistant_content(events) if stop == wire.INLINE else None
                    return
                if attempt == retries:
                    raise TruncatedStreamError(
                        f"the AgentCore event stream ended before its stop reason {retries + 1} times ({outcome[0]})",
                        delivered=True,
                        session_id=self._session_id,
                    )
                yield {"type": wire.RETRY_EVENT, "attempt": attempt + 1, "reason": outcome[0]}
                await self._http.provider._backoff(attempt)

    async def _stream(
        self, url: str, body: bytes, headers: Mapping[str, str], outcome: list[str | None]
    ) -> AsyncIterator[dict[str, Any]]:
        """One response's events, live; appends to `outcome` why it was truncated, or None if its last message
        stopped. Exception frames raise (never retried: the harness may have acted on the turn already)."""
        response = await self._http.open("POST", url, body, headers, session_id=self._session_id)
        decoder = wire.StreamDecoder()
        seen: list[dict[str, Any]] = []
        reason: str | None = None
        try:
            async for chunk in response.aiter_bytes():
                for event in decoder.feed(chunk, session_id=self._session_id):
                    seen.append(event)
                    yield event
        except httpx2.TransportError as exc:
            reason = f"transport error: {exc!r}"
        except CorruptStreamError as exc:
            reason = str(exc)
        finally:
            await response.aclose()
        outcome.append(reason or (None if wire.stopped(seen) else "no messageStop"))

    def normalize(self, events: Sequence[Mapping[str, Any]]) -> TurnResult:
        return wire.turn_result(events, self._local_names or None)

    def text_delta(self, event: Mapping[str, Any]) -> str | None:
        return wire.text_delta(event)

    async def recover(self, seen: set[str]) -> Recovery:
        """Before any turn: an empty recovery (a harness keeps no readable history, and it does not keep an
        unanswered inline-tool turn, so nothing waits). After one: ConnectionLost, an invoke cannot be reattached."""
        if not self._played:
            return Recovery()
        raise ConnectionLost(
            "AgentCore invokes are request/response: there is no stream to reattach to (open the session again "
            "with session_id= to continue it)",
            session_id=self._session_id,
        )

    async def close(self) -> None:
        if self._owned:
            await self._http.client.aclose()


def _overrides(request: OpenRequest, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """Per-invoke overrides, sent on every invoke (they replace the harness defaults for that call only)."""
    options = request.options
    body: dict[str, Any] = {}
    if tools:
        body["tools"] = [wire.inline_tool(tool) for tool in tools]
    if request.system:
        body["systemPrompt"] = [{"text": request.system}]
    if options.get("model_config") is not None:
        body["model"] = dict(options["model_config"])
    elif request.model:
        body["model"] = {"bedrockModelConfig": {"modelId": request.model}}
    for key, field in (
        ("max_iterations", "maxIterations"),
        ("max_tokens", "maxTokens"),
        ("timeout_seconds", "timeoutSeconds"),
        ("actor_id", "actorId"),
        ("allowed_tools", "allowedTools"),
        ("skills", "skills"),
    ):
        if options.get(key) is not None:
            body[field] = options[key]
    return body
