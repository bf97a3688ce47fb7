"""The web console as HTTP: served by `loophost serve` under /console (page, assets, deep links), with a strict
Content-Security-Policy, no CDN, not in the OpenAPI document, and off with `--no-console`. The browser side is
tested in tests/server/console/."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import httpx2

from loophost.server._console import CONSOLE_DIR

from .conftest import KEY_A, ServerProcess, start_server, stop_server


def test_the_page_and_its_assets_are_served_without_a_key(server: ServerProcess) -> None:
    page = httpx2.get(f"{server.url}/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/static/app.js">' in page.text
    for asset, kind in [
        ("app.js", "javascript"),
        ("style.css", "text/css"),
        ("vendor/preact.mjs", "javascript"),
        ("vendor/preact-hooks.mjs", "javascript"),
        ("vendor/htm.mjs", "javascript"),
    ]:
        response = httpx2.get(f"{server.url}/console/static/{asset}")
        assert response.status_code == 200, asset
        assert kind in response.headers["content-type"], asset
        assert response.headers["cache-control"] == "no-cache"
    assert httpx2.get(f"{server.url}/console/static/nope.js").status_code == 404
    for escape in ["../../_console.py", "%2e%2e/%2e%2e/_console.py", "..%2f..%2f_console.py"]:
        assert "def mount_console" not in httpx2.get(f"{server.url}/console/static/{escape}").text, escape
    # the API itself still wants a key
    assert httpx2.get(f"{server.url}/v1/sessions").status_code == 401


def test_deep_links_are_the_page_and_the_root_leads_to_the_console(server: ServerProcess) -> None:
    index = httpx2.get(f"{server.url}/console/").text
    for path in ["/console", "/console/sessions/sesn_x?seq=12", "/console/agents/agent_x", "/console/environments"]:
        response = httpx2.get(server.url + path)
        assert response.status_code == 200, path
        assert response.text == index
    root = httpx2.get(f"{server.url}/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"


def test_the_page_allows_only_its_own_origin_and_its_import_map(server: ServerProcess) -> None:
    page = httpx2.get(f"{server.url}/console/")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["form-action"] == "'none'"  # a key typed into the form can never be submitted into a URL
    import_map = re.search(r'<script type="importmap">(.*?)</script>', page.text, re.DOTALL)
    assert import_map is not None
    digest = base64.b64encode(hashlib.sha256(import_map.group(1).encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_nothing_is_loaded_from_another_origin() -> None:
    """Works offline: every file of the console refers only to its own origin (no CDN, no web font)."""
    files = [p for p in CONSOLE_DIR.rglob("*") if p.suffix in {".html", ".js", ".mjs", ".css"}]
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text, re.IGNORECASE)
        fetched = [u for u in urls if not u.startswith("http://www.w3.org/")]  # XML namespace names, never fetched
        assert fetched == [], (path, fetched)


def test_vendored_libraries_are_recorded_with_their_licences() -> None:
    vendor = CONSOLE_DIR / "static" / "vendor"
    readme = (vendor / "README.md").read_text()
    for name in ["preact.mjs", "preact-hooks.mjs", "htm.mjs"]:
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert digest in readme, f"{name}: its sha256 is not the one recorded in vendor/README.md"
    assert (vendor / "LICENSE-preact").exists() and (vendor / "LICENSE-htm").exists()


def test_the_console_is_not_part_of_the_api_document(server: ServerProcess) -> None:
    paths = httpx2.get(f"{server.url}/openapi.json", timeout=60).json()["paths"]  # built on first request
    assert paths and not [p for p in paths if not p.startswith("/v1/")]


def test_no_console_turns_it_off(tmp_path: Path) -> None:
    database = tmp_path / "off.db"
    serve = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", "0"]
    proc = start_server(database, command=[*serve, "--database", str(database), "--no-console"])
    try:
        assert httpx2.get(f"{proc.url}/console/").status_code == 404
        assert httpx2.get(f"{proc.url}/console/static/app.js").status_code == 404
        assert httpx2.get(f"{proc.url}/v1/agents", headers={"x-api-key": KEY_A}).status_code == 200
    finally:
        stop_server(proc)
