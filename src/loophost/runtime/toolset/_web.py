"""`web_fetch` and `web_search`: server-side tools that run in the runtime process, not in the sandbox.

web_fetch enforces, on every hop of a redirect chain: http(s) only; the tool config's `allowed_domains` /
`blocked_domains` (a domain covers its subdomains); and, under `limited` networking, the environment's allowed
hosts (the same `HostPolicy` as the egress proxy), so a `limited` session cannot reach through web_fetch what its
sandbox cannot. Downloads stop at a byte limit; HTML becomes Markdown (markdownify), text stays text, and the
result is cut at `max_content_tokens` (about 4 characters per token).

web_search needs a search backend the operator configures (`SearchBackend`; `SearxngBackend` is one); without
one the tool says it is unavailable and why, in its description and in every result, rather than pretending.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from ..engine._tools import ToolContext, ToolOutput
from ._confine import ToolError
from ._egress import HostPolicy

MAX_FETCH_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_CHARS = 100_000
MAX_REDIRECTS = 5
FETCH_TIMEOUT = 30.0


def domain_matches(host: str, domains: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for domain in domains:
        domain = domain.strip().lower().rstrip(".")
        if "://" in domain:
            domain = urlsplit(domain).hostname or ""
        domain = domain.removeprefix("*.")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class WebRules:
    """What one session's web tools may reach: the tool config's domain lists and the environment's hosts."""

    policy: HostPolicy
    allowed_domains: tuple[str, ...] | None = None
    blocked_domains: tuple[str, ...] | None = None
    max_chars: int = DEFAULT_MAX_CHARS

    def check(self, url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolError(f"{url!r} is not an http(s) URL")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self.allowed_domains is not None and not domain_matches(host, self.allowed_domains):
            raise ToolError(f"{host} is not in this tool's allowed_domains")
        if self.blocked_domains is not None and domain_matches(host, self.blocked_domains):
            raise ToolError(f"{host} is in this tool's blocked_domains")
        if not self.policy.allows(host, port):
            raise ToolError(f"{host} is not an allowed host of this session's environment (networking: limited)")
        return host, port


def to_text(body: bytes, content_type: str) -> str:
    """HTML as Markdown; text, JSON and XML as they are; anything else refused."""
    mime = content_type.split(";", 1)[0].strip().lower()
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    if mime in ("text/html", "application/xhtml+xml"):
        from markdownify import markdownify

        return str(markdownify(text, heading_style="ATX", strip=["script", "style"])).strip()
    if mime.startswith("text/") or mime in ("application/json", "application/xml") or mime.endswith(("+json", "+xml")):
        return text
    if not mime and b"\x00" not in body[:4096]:
        return text
    raise ToolError(f"content type {mime or 'unknown'} cannot be shown as text")


async def fetch(url: str, rules: WebRules) -> str:
    import httpx2

    async with httpx2.AsyncClient(trust_env=False, follow_redirects=False, timeout=FETCH_TIMEOUT) as client:
        for _ in range(MAX_REDIRECTS + 1):
            rules.check(url)
            try:
                async with client.stream("GET", url, headers={"User-Agent": "loophost-web-fetch"}) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    chunks: list[bytes] = []
                    size = 0
                    truncated = False
                    async for chunk in response.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > MAX_FETCH_BYTES:
                            truncated = True
                            break
                    body = b"".join(chunks)[:MAX_FETCH_BYTES]
                    status = response.status_code
                    content_type = response.headers.get("content-type", "")
            except httpx2.HTTPError as exc:
                raise ToolError(f"fetching {url} failed: {type(exc).__name__}: {exc}") from None
            text = to_text(body, content_type)
            notes = []
            if truncated:
                notes.append(f"[download stopped at {MAX_FETCH_BYTES} bytes]")
            if len(text) > rules.max_chars:
                text = text[: rules.max_chars]
                notes.append(f"[content truncated at {rules.max_chars} characters]")
            header = f"URL: {url}\nStatus: {status}\nContent-Type: {content_type or 'unknown'}\n\n"
            result = header + text + ("\n\n" + "\n".join(notes) if notes else "")
            if status >= 400:
                raise ToolError(result)
            return result
    raise ToolError(f"more than {MAX_REDIRECTS} redirects")


class WebFetchTool:
    name = "web_fetch"
    description = (
        "Fetch a web page or text document by URL and return it as text (HTML is converted to Markdown). "
        "Subject to the agent's allowed/blocked domains and the environment's networking."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"url": {"type": "string", "description": "An http(s) URL."}},
        "required": ["url"],
    }

    def __init__(self, toolset: Any) -> None:
        self._toolset = toolset

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        url = tool_input.get("url")
        if not isinstance(url, str) or not url.strip():
            return ToolOutput("url is required and must be a string", is_error=True)
        try:
            rules: WebRules = await self._toolset.web_rules(ctx, "web_fetch")
            return ToolOutput(await fetch(url.strip(), rules))
        except ToolError as exc:
            return ToolOutput(str(exc), is_error=True)


# web_search ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str = ""


class SearchBackend(Protocol):
    """A web search service the operator plugs in (`Toolset(search_backend=...)`)."""

    name: str

    async def search(
        self, query: str, *, max_results: int, user_location: dict[str, Any] | None
    ) -> list[SearchResult]: ...


class SearxngBackend:
    """A SearXNG instance's JSON API (`GET {base}/search?q=...&format=json`; `format=json` must be enabled)."""

    name = "searxng"

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    async def search(self, query: str, *, max_results: int, user_location: dict[str, Any] | None) -> list[SearchResult]:
        import httpx2

        params = {"q": query, "format": "json"}
        async with httpx2.AsyncClient(trust_env=False, timeout=self._timeout) as client:
            response = await client.get(f"{self._base}/search", params=params)
            response.raise_for_status()
            data = response.json()
        results = []
        for item in data.get("results", [])[: max_results * 3]:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                results.append(SearchResult(str(item.get("title", "")), item["url"], str(item.get("content", ""))))
        return results


class WebSearchTool:
    name = "web_search"
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "allowed_domains": {"type": "array", "items": {"type": "string"}},
            "blocked_domains": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["query"],
    }

    def __init__(self, toolset: Any, backend: SearchBackend | None, unavailable_reason: str | None = None) -> None:
        self._toolset = toolset
        self.backend = backend
        self.unavailable_reason = None if backend is not None else (unavailable_reason or "no search backend")
        self.description = (
            "Search the web; returns titles, URLs and snippets."
            if backend is not None
            else f"UNAVAILABLE on this server ({self.unavailable_reason}): calling it only returns an error."
        )

    async def run(self, ctx: ToolContext, tool_input: dict[str, Any]) -> ToolOutput:
        if self.backend is None:
            return ToolOutput(f"web_search is unavailable on this server: {self.unavailable_reason}", is_error=True)
        query = tool_input.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolOutput("query is required and must be a non-empty string", is_error=True)
        extra: dict[str, list[str]] = {}
        for key in ("allowed_domains", "blocked_domains"):
            value = tool_input.get(key)
            if value is not None:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    return ToolOutput(f"{key} must be a list of strings", is_error=True)
                extra[key] = value
        try:
            rules: WebRules = await self._toolset.web_rules(ctx, "web_search")
            location = await self._toolset.user_location(ctx)
            found = await asyncio.wait_for(
                self.backend.search(query, max_results=10, user_location=location), FETCH_TIMEOUT
            )
        except ToolError as exc:
            return ToolOutput(str(exc), is_error=True)
        except Exception as exc:  # the backend failed: the model is told, the session goes on
            return ToolOutput(f"web_search backend {self.backend.name} failed: {type(exc).__name__}: {exc}", True)
        kept = []
        for result in found:
            host = urlsplit(result.url).hostname or ""
            if rules.allowed_domains is not None and not domain_matches(host, rules.allowed_domains):
                continue
            if rules.blocked_domains is not None and domain_matches(host, rules.blocked_domains):
                continue
            if "allowed_domains" in extra and not domain_matches(host, extra["allowed_domains"]):
                continue
            if "blocked_domains" in extra and domain_matches(host, extra["blocked_domains"]):
                continue
            kept.append({"title": result.title, "url": result.url, "snippet": result.snippet})
            if len(kept) == 10:
                break
        if not kept:
            return ToolOutput(f"No results for {query!r}")
        return ToolOutput(json.dumps(kept, ensure_ascii=False, indent=1))
