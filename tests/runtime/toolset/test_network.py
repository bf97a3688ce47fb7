"""Environment networking (unrestricted / limited through the egress proxy) and the web tools, against real
loopback HTTP servers."""

from __future__ import annotations

import json

import pytest

from loophost.runtime.toolset import HostPolicy, SearxngBackend
from loophost.runtime.toolset._web import domain_matches

from .conftest import Factory, Sandbox, WebServer

BWRAP_ONLY = pytest.mark.parametrize("mode", ["bwrap"], indirect=True)

FETCH = (
    'python3 -S -c "import sys, urllib.request as u; '
    'print(u.urlopen(sys.argv[1], timeout=5).read().decode())" {url} 2>&1 | tail -1'
)
DIRECT = (
    'python3 -S -c "import sys, urllib.request as u; o = u.build_opener(u.ProxyHandler({{}})); '
    'print(o.open(sys.argv[1], timeout=5).read().decode())" {url} 2>&1 | tail -1'
)


def limited(*hosts: str) -> dict[str, object]:
    return {"type": "limited", "allowed_hosts": list(hosts)}


@BWRAP_ONLY
async def test_unrestricted_has_the_host_network(sandbox_factory: Factory, web: WebServer) -> None:
    web.routes["/hello"] = (200, "text/plain", b"hello from the host", {})
    box: Sandbox = await sandbox_factory(networking={"type": "unrestricted"})
    assert (await box.bash(DIRECT.format(url=web.url("/hello")))).text == "hello from the host"


@BWRAP_ONLY
async def test_limited_admits_only_allowed_hosts_through_the_proxy(sandbox_factory: Factory, web: WebServer) -> None:
    web.routes["/hello"] = (200, "text/plain", b"hello through the proxy", {})
    box: Sandbox = await sandbox_factory(networking=limited("127.0.0.1"))
    assert (await box.bash(FETCH.format(url=web.url("/hello")))).text == "hello through the proxy"
    # the same server under a name that is not allowed: the proxy refuses
    refused = await box.bash(FETCH.format(url=web.url("/hello", host="localhost")))
    assert "403" in refused.text
    # a program that ignores the proxy has no network at all
    direct = await box.bash(DIRECT.format(url=web.url("/hello")))
    assert "hello" not in direct.text
    assert "refused" in direct.text.lower() or "unreachable" in direct.text.lower()


@BWRAP_ONLY
async def test_limited_with_no_hosts_reaches_nothing(sandbox_factory: Factory, web: WebServer) -> None:
    web.routes["/x"] = (200, "text/plain", b"secret", {})
    box: Sandbox = await sandbox_factory(networking=limited())
    for command in (FETCH, DIRECT):
        assert "secret" not in (await box.bash(command.format(url=web.url("/x")))).text


def test_host_policy() -> None:
    policy = HostPolicy.limited(["example.com", "api.test:8443", "*.pkg.dev", "https://mcp.example.org/sse"])
    assert policy.allows("example.com", 443) and policy.allows("EXAMPLE.com.", 80)
    assert not policy.allows("sub.example.com", 443)
    assert policy.allows("api.test", 8443) and not policy.allows("api.test", 443)
    assert policy.allows("a.pkg.dev", 443) and not policy.allows("pkg.dev", 443)
    assert policy.allows("mcp.example.org", 443)
    assert HostPolicy.limited([], package_managers=True).allows("pypi.org", 443)
    assert HostPolicy.unrestricted().allows("anything", 1)
    assert domain_matches("docs.example.com", ["example.com"]) and not domain_matches("example.co", ["example.com"])


async def test_web_fetch_turns_html_into_markdown(box: Sandbox, web: WebServer) -> None:
    web.routes["/page"] = (200, "text/html; charset=utf-8", b"<h1>Title</h1><p>Some <b>bold</b> text</p>", {})
    web.routes["/moved"] = (302, "text/plain", b"", {"Location": "/page"})
    result = await box.call("web_fetch", url=web.url("/moved"))
    assert not result.is_error, result.text
    assert "# Title" in result.text and "Some **bold** text" in result.text
    assert f"URL: {web.url('/page')}" in result.text
    missing = await box.call("web_fetch", url=web.url("/nothing"))
    assert missing.is_error and "Status: 404" in missing.text
    for bad in ("file:///etc/passwd", "ftp://x", "not a url", ""):
        assert (await box.call("web_fetch", url=bad)).is_error


async def test_web_fetch_applies_domains_and_limited_networking(sandbox_factory: Factory, web: WebServer) -> None:
    web.routes["/a"] = (200, "text/plain", b"A" * 5000, {})
    web.routes["/to-localhost"] = (302, "text/plain", b"", {"Location": web.url("/a", host="localhost")})
    toolset = {
        "type": "agent_toolset_20260401",
        "configs": [{"name": "web_fetch", "blocked_domains": ["localhost"], "max_content_tokens": 100}],
    }
    box: Sandbox = await sandbox_factory(tools=[toolset])
    cut = await box.call("web_fetch", url=web.url("/a"))
    assert "[content truncated at 400 characters]" in cut.text
    blocked = await box.call("web_fetch", url=web.url("/a", host="localhost"))
    assert blocked.is_error and "blocked_domains" in blocked.text
    redirected = await box.call("web_fetch", url=web.url("/to-localhost"))
    assert redirected.is_error and "blocked_domains" in redirected.text  # every hop is checked

    only = {"type": "agent_toolset_20260401", "configs": [{"name": "web_fetch", "allowed_domains": ["localhost"]}]}
    box = await sandbox_factory(tools=[only])
    assert "allowed_domains" in (await box.call("web_fetch", url=web.url("/a"))).text
    assert not (await box.call("web_fetch", url=web.url("/a", host="localhost"))).is_error

    box = await sandbox_factory(networking=limited("localhost"))
    assert not (await box.call("web_fetch", url=web.url("/a", host="localhost"))).is_error
    refused = await box.call("web_fetch", url=web.url("/a"))
    assert refused.is_error and "networking: limited" in refused.text


async def test_web_search_without_a_backend_says_so(box: Sandbox) -> None:
    tool = box.toolset.tools()["web_search"]
    assert tool.description.startswith("UNAVAILABLE")
    assert box.toolset.unavailable == {"web_search": "no search backend"}
    result = await box.call("web_search", query="anything")
    assert result.is_error and "unavailable" in result.text


async def test_web_search_with_a_searxng_backend(sandbox_factory: Factory, web: WebServer) -> None:
    results = {
        "results": [
            {"title": "One", "url": "https://one.example/a", "content": "first"},
            {"title": "Two", "url": "https://two.example/b", "content": "second"},
        ]
    }
    web.routes["/search?q=loophost&format=json"] = (200, "application/json", json.dumps(results).encode(), {})
    toolset = {
        "type": "agent_toolset_20260401",
        "configs": [{"name": "web_search", "blocked_domains": ["two.example"]}],
    }
    box: Sandbox = await sandbox_factory(
        tools=[toolset], toolset_options={"search_backend": SearxngBackend(web.url(""))}
    )
    found = json.loads((await box.call("web_search", query="loophost")).text)
    assert found == [{"title": "One", "url": "https://one.example/a", "snippet": "first"}]
    failing = await box.call("web_search", query="nothing-here")
    assert failing.is_error and "searxng failed" in failing.text
