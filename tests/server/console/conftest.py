"""Headless Chromium driven by Playwright, against a real `loophost serve`-style server process.

The browser is the distribution's `chromium` (`make test` installs it: scripts/install-chromium.sh); Playwright
cannot download its own here. Without a Chromium that starts, these tests fail with the reason: they never skip.
Every page records the URLs it requested, so a test can check that the API key never appeared in one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from ..conftest import KEY_A, ServerProcess, start_tool_server, stop_server

pytestmark = pytest.mark.timeout(120)
expect.set_options(timeout=30_000)  # a first turn waits for the agent core to load in the server


def chromium_path() -> str:
    """LOOPHOST_CHROMIUM, else `chromium` (Debian) or `chromium-browser` on PATH; a failure (not a skip) if none."""
    configured = os.environ.get("LOOPHOST_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium: `make test` installs it (scripts/install-chromium.sh), or set LOOPHOST_CHROMIUM")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module, not per session: Playwright's sync API holds an event loop on the main thread while it runs,
    and other tests (the CLI's, anything calling `asyncio.run`) need that thread free."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path())
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a recording `bash` built-in (tests/server/_tool_server.py), so confirmations run a tool."""
    proc = start_tool_server(tmp_path_factory.mktemp("console-server"))
    yield proc
    stop_server(proc)


@pytest.fixture
def sdk(console_server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=console_server.url, api_key=KEY_A, max_retries=0) as client:
        yield client


@dataclass
class ConsolePage:
    """A browser tab on the console, and every URL it asked for."""

    page: Page
    base_url: str
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)

    def open(self, path: str = "/console/") -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self, key: str = KEY_A) -> None:
        """Type the key into the key form (the only way the console gets one)."""
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Open console").click()
        self.page.get_by_role("navigation", name="Main").wait_for()

    def storage(self) -> dict[str, dict[str, str]]:
        return self.page.evaluate(
            """() => ({
                local: Object.fromEntries(Object.entries(localStorage)),
                session: Object.fromEntries(Object.entries(sessionStorage)),
                cookies: {cookie: document.cookie},
            })"""
        )


@pytest.fixture
def console(browser: Browser, console_server: ServerProcess) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=console_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    tab = ConsolePage(page, console_server.url)
    page.on("request", lambda request: tab.requested.append(request.url))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("console", lambda message: tab.logged.append(message.text))
    try:
        yield tab
        # whatever the test did: the key was in no URL, no console message, no local storage and no cookie
        assert [url for url in tab.requested if KEY_A in url] == []
        assert [text for text in tab.logged if KEY_A in text] == []
        stored = tab.storage()
        assert KEY_A not in repr(stored["local"]) and KEY_A not in stored["cookies"]["cookie"]
    finally:
        context.close()
    assert tab.errors == [], tab.errors  # no uncaught script error on any page of the test


def screenshot_target(tmp_path: Path) -> Path:
    """docs/console.png when `make console-screenshot` asks for it, else a scratch file."""
    wanted = os.environ.get("LOOPHOST_CONSOLE_SCREENSHOT")
    return Path(wanted) if wanted else tmp_path / "console.png"
