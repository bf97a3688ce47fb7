"""The web console in headless Chromium, against a real server: sign in with a key, watch a session run live,
approve a tool, answer a custom tool by hand, interrupt, deep links, reconnecting after a server restart, a
virtualised log, agents and environments. Every test also checks (in the `console` fixture) that the key never
reached a URL, a console message, local storage or a cookie."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest
from playwright.sync_api import expect

from ..conftest import KEY_A, ServerProcess, bash_executions, start_server, stop_server
from .conftest import ConsolePage, screenshot_target

ASKING_BASH = {
    "type": "agent_toolset_20260401",
    "default_config": {"enabled": False},
    "configs": [{"name": "bash", "enabled": True, "permission_policy": {"type": "always_ask"}}],
}
LOOKUP = {"type": "custom", "name": "lookup", "description": "Looks a thing up.", "input_schema": {"type": "object"}}


def new_session(sdk: anthropic.Anthropic, name: str, tools: list[Any] | None = None) -> tuple[str, str]:
    """(agent id, session id) of a fresh idle session on a scripted agent."""
    agent = sdk.beta.agents.create(name=name, model="scripted", tools=tools or [])
    env = sdk.beta.environments.create(name=f"{name}-{time.monotonic_ns()}")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id, title=f"{name} session")
    return agent.id, session.id


def say(sdk: anthropic.Anthropic, session_id: str, text: str) -> None:
    sdk.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": text}]}]
    )


def wait_idle(sdk: anthropic.Anthropic, session_id: str) -> None:
    deadline = time.monotonic() + 60
    while sdk.beta.sessions.retrieve(session_id).status != "idle":
        assert time.monotonic() < deadline, "the session did not go idle"
        time.sleep(0.1)


def open_session(console: ConsolePage, session_id: str, query: str = "") -> None:
    """Open a deep link first: the key form appears, and after signing in the console is where the link said."""
    console.open(f"/console/sessions/{session_id}{query}")
    console.sign_in()
    expect(console.page.get_by_test_id("connection")).to_have_text("live")


def send_from_composer(console: ConsolePage, text: str) -> None:
    console.page.get_by_label("Message").fill(text)
    console.page.get_by_role("button", name="Send", exact=True).click()


def status(console: ConsolePage) -> Any:
    return expect(console.page.get_by_test_id("status"))


def test_the_key_form_refuses_an_unknown_key_and_keeps_a_good_one_in_session_storage(
    console: ConsolePage, sdk: anthropic.Anthropic
) -> None:
    _, session_id = new_session(sdk, "listed")
    page = console.page
    console.open()
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Open console").click()
    expect(page.get_by_role("alert")).to_contain_text("does not know this key")
    assert console.storage()["session"] == {}
    console.sign_in()
    assert console.storage()["session"] == {"loophost.apiKey": KEY_A}
    assert console.storage()["local"] == {}
    # the list shows the session, and its status live
    row = page.locator(f"tr[data-session='{session_id}']")
    expect(row).to_contain_text("listed session")
    expect(row.locator(".badge")).to_have_text("idle")
    say(sdk, session_id, "sleep 1500\nslowly")
    expect(row.locator(".badge")).to_have_text("running")
    expect(row.locator(".badge")).to_have_text("idle")
    expect(row).to_contain_text("in ·")  # tokens
    # filters go to the API: a status that does not match hides the row, the agent filter keeps it
    page.get_by_label("Status").select_option("terminated")
    expect(row).to_have_count(0)
    page.get_by_label("Status").select_option("")
    expect(row).to_have_count(1)
    # "Forget key" drops it from the tab
    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert console.storage()["session"] == {}


def test_a_session_runs_live_from_the_composer(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    _, session_id = new_session(sdk, "live")
    open_session(console, session_id)
    page = console.page
    send_from_composer(console, "sleep 300\nhello live")
    status(console).to_have_text("running")
    transcript = page.locator(".transcript")
    expect(transcript.locator(".msg.agent")).to_contain_text("echo: hello live")
    status(console).to_have_text("idle")
    request = transcript.locator(".request").first
    expect(request).to_contain_text("model request 1")
    expect(request).to_contain_text(" in · ")  # its usage, once the request ended
    total = len(list(sdk.beta.sessions.events.list(session_id)))
    expect(page.get_by_role("tab", name=f"Events ({total})")).to_be_visible()
    assert page.url.endswith(f"/console/sessions/{session_id}")


def test_approve_a_tool_and_answer_a_custom_tool_by_hand(
    console: ConsolePage, sdk: anthropic.Anthropic, console_server: ServerProcess
) -> None:
    _, session_id = new_session(sdk, "approver", [ASKING_BASH, LOOKUP])
    open_session(console, session_id)
    page = console.page
    send_from_composer(console, 'call bash {"command": "echo approved"}\ncall lookup {"q": "answer"}')
    waiting = page.get_by_role("region", name="Waiting for you")
    expect(waiting.locator(".pending")).to_have_count(2)
    waiting.get_by_role("button", name="Allow").click()
    bash_call = page.locator(".call", has_text="echo approved")
    expect(bash_call.locator(".confirmation")).to_have_text("allowed")
    expect(waiting.locator(".pending")).to_have_count(1)  # the turn goes on once every call is answered
    waiting.get_by_label("Result, by hand").fill("forty-two")
    waiting.get_by_role("button", name="Send result").click()
    expect(bash_call).to_contain_text("ran echo approved")
    expect(page.locator(".msg.agent").last).to_contain_text("bash: ran echo approved")
    expect(page.locator(".msg.agent").last).to_contain_text("lookup: forty-two")
    expect(waiting).to_have_count(0)
    status(console).to_have_text("idle")
    assert [line.split(" ", 1)[1] for line in bash_executions(console_server)].count("echo approved") == 1


def test_deny_a_tool_with_a_reason(
    console: ConsolePage, sdk: anthropic.Anthropic, console_server: ServerProcess
) -> None:
    _, session_id = new_session(sdk, "denier", [ASKING_BASH])
    open_session(console, session_id)
    page = console.page
    send_from_composer(console, 'call bash {"command": "rm -rf denied"}')
    waiting = page.get_by_role("region", name="Waiting for you")
    waiting.get_by_label("Reason (optional)").fill("not on my machine")
    waiting.get_by_role("button", name="Deny").click()
    expect(page.locator(".call .confirmation")).to_have_text("denied: not on my machine")
    status(console).to_have_text("idle")
    assert not [line for line in bash_executions(console_server) if "rm -rf denied" in line]


def test_interrupt_a_running_session(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    _, session_id = new_session(sdk, "interrupted")
    open_session(console, session_id)
    page = console.page
    interrupt = page.get_by_role("button", name="Interrupt")
    expect(interrupt).to_be_disabled()  # nothing to interrupt while idle
    send_from_composer(console, "sleep 60000\nnever answered")
    status(console).to_have_text("running")
    interrupt.click()
    status(console).to_have_text("idle")
    expect(page.locator(".msg.user-interrupt")).to_have_count(1)
    expect(interrupt).to_be_disabled()
    events = list(sdk.beta.sessions.events.list(session_id))
    assert "user.interrupt" in [e.type for e in events]
    assert not [e for e in events if e.type == "agent.message"]


def test_a_deep_link_opens_the_event_and_the_keyboard_moves_through_the_log(
    console: ConsolePage, sdk: anthropic.Anthropic
) -> None:
    _, session_id = new_session(sdk, "linked")
    say(sdk, session_id, "first")
    wait_idle(sdk, session_id)
    say(sdk, session_id, "second")
    wait_idle(sdk, session_id)
    events = list(sdk.beta.sessions.events.list(session_id))
    open_session(console, session_id, "?seq=3")
    page = console.page
    expect(page.get_by_role("tab", name=f"Events ({len(events)})")).to_have_attribute("aria-selected", "true")
    inspector = page.get_by_role("region", name="Selected event")
    expect(inspector.get_by_role("heading")).to_have_text(f"#3 {events[2].type}")
    expect(inspector).to_contain_text(events[2].id)
    log = page.get_by_role("listbox", name="Events")
    expect(log.get_by_role("option", selected=True)).to_contain_text(events[2].type)
    # keyboard: the log is a listbox; arrows move the selection, and the URL follows
    log.focus()
    page.keyboard.press("ArrowDown")
    expect(inspector.get_by_role("heading")).to_have_text(f"#4 {events[3].type}")
    assert page.url.endswith("?seq=4")
    page.keyboard.press("End")
    expect(inspector.get_by_role("heading")).to_have_text(f"#{len(events)} {events[-1].type}")
    # a seq link in the transcript is a deep link too
    page.get_by_role("tab", name="Transcript").click()
    page.get_by_role("link", name="event 4 in the log").click()
    expect(inspector.get_by_role("heading")).to_have_text(f"#4 {events[3].type}")
    assert page.url.endswith("?seq=4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_stream_reconnects_after_a_server_restart_and_shows_no_event_twice(
    console: ConsolePage, sdk: anthropic.Anthropic, tmp_path: Path
) -> None:
    port = _free_port()
    database = tmp_path / "restart.db"
    command = [sys.executable, "-c", "from loophost.cli import main; main()", "serve", "--port", str(port)]
    command += ["--database", str(database), "--heartbeat", "0.5"]
    server = start_server(database, command=command)
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0)
        agent = client.beta.agents.create(name="restarted", model="scripted")
        env = client.beta.environments.create(name="restarted")
        session_id = client.beta.sessions.create(agent=agent.id, environment_id=env.id).id
        console.base_url = server.url
        open_session(console, session_id)
        page = console.page
        send_from_composer(console, "before the restart")
        expect(page.locator(".msg.agent")).to_contain_text("echo: before the restart")
        stop_server(server)
        expect(page.get_by_test_id("connection")).to_have_text("reconnecting…")
        server = start_server(database, command=command)
        expect(page.get_by_test_id("connection")).to_have_text("live")
        client = anthropic.Anthropic(base_url=server.url, api_key=KEY_A, max_retries=0)
        say(client, session_id, "after the restart")
        expect(page.locator(".msg.agent")).to_have_count(2)
        expect(page.locator(".msg.agent").last).to_contain_text("echo: after the restart")
        wait_idle(client, session_id)
        events = list(client.beta.sessions.events.list(session_id))
        expect(page.get_by_role("tab", name=f"Events ({len(events)})")).to_be_visible()
        shown = page.evaluate(
            "() => [...document.querySelectorAll('.transcript [data-call], .seq')].map(e => e.textContent)"
        )
        assert len(shown) == len(set(shown))  # every seq link once: no event twice
    finally:
        stop_server(server)


def test_a_long_log_keeps_only_the_rows_in_view_in_the_page(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    _, session_id = new_session(sdk, "long")
    sdk.beta.sessions.events.send(
        session_id,
        events=[{"type": "user.message", "content": [{"type": "text", "text": f"m{i}"}]} for i in range(300)],
    )
    wait_idle(sdk, session_id)
    total = len(list(sdk.beta.sessions.events.list(session_id, limit=1000)))
    assert total >= 1800
    open_session(console, session_id)
    page = console.page
    expect(page.locator(".msg.agent").last).to_contain_text("echo: m299")
    assert page.locator(".transcript > *").count() < 200  # the transcript shows its newest items
    page.get_by_role("tab", name=f"Events ({total})").click()
    log = page.get_by_role("listbox", name="Events")
    expect(log.get_by_role("option").first).to_be_visible()
    assert log.get_by_role("option").count() < 80
    log.focus()
    page.keyboard.press("End")
    expect(page.get_by_role("region", name="Selected event").get_by_role("heading")).to_contain_text(f"#{total} ")
    assert log.get_by_role("option").count() < 80
    page.get_by_label("Type contains").fill("agent.message")
    expect(page.get_by_text("300 of ")).to_be_visible()


def test_agents_versions_diff_yaml_and_an_inline_test_session(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    agent = sdk.beta.agents.create(name="versioned", model="scripted", system="Be brief.")
    agent = sdk.beta.agents.update(agent.id, version=agent.version, system="Be thorough.")
    env_name = f"console-env-{time.monotonic_ns()}"
    sdk.beta.environments.create(name=env_name)
    console.open(f"/console/agents/{agent.id}")
    console.sign_in()
    page = console.page
    expect(page.get_by_test_id("agent-yaml")).to_contain_text("name: versioned")
    expect(page.get_by_test_id("agent-yaml")).to_contain_text("system: Be thorough.")
    page.get_by_role("tab", name="API request").click()
    expect(page.locator("pre.code")).to_contain_text('POST /v1/agents\n{\n  "name": "versioned"')
    page.get_by_role("tab", name="Versions (2)").click()
    diff = page.get_by_label("Changes from version 1 to 2")
    expect(diff.locator(".del")).to_contain_text("system: Be brief.")
    expect(diff.locator(".add")).to_contain_text("system: Be thorough.")
    page.get_by_role("tab", name="Test session").click()
    page.get_by_label("First message").fill("hello from the agent page")
    page.get_by_role("button", name="Start test session").click()
    expect(page.locator(".inline-session .msg.agent")).to_contain_text("echo: hello from the agent page")
    page.get_by_role("link", name="Environments").click()
    expect(page.get_by_text(env_name, exact=True)).to_be_visible()


def test_vaults_show_their_credentials_and_never_a_secret(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    bearer, token = f"sk-bearer-{time.monotonic_ns()}", f"tok-{time.monotonic_ns()}"
    vault = sdk.beta.vaults.create(display_name=f"team-{time.monotonic_ns()}")
    sdk.beta.vaults.credentials.create(
        vault.id,
        display_name="docs server",
        auth={"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/docs", "token": bearer},
    )
    sdk.beta.vaults.credentials.create(
        vault.id,
        display_name="github",
        auth={
            "type": "environment_variable",
            "secret_name": "GITHUB_TOKEN",
            "secret_value": token,
            "networking": {"type": "limited", "allowed_hosts": ["api.github.com"]},
        },
    )
    console.open("/console/vaults")
    console.sign_in()
    page = console.page
    page.get_by_text(vault.display_name, exact=True).click()
    rows = page.get_by_test_id("credential")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="docs server")).to_contain_text("https://mcp.example.com/docs")
    expect(rows.filter(has_text="github")).to_contain_text("$GITHUB_TOKEN → api.github.com")
    content = page.content()
    assert bearer not in content and token not in content


def test_text_contrast_meets_wcag_aa_and_steering_works_by_keyboard_alone(
    console: ConsolePage, sdk: anthropic.Anthropic
) -> None:
    _, session_id = new_session(sdk, "keyboard", [ASKING_BASH])
    say(sdk, session_id, 'call bash {"command": "echo keys"}')
    open_session(console, session_id)
    page = console.page
    allow = page.get_by_role("button", name="Allow")
    expect(allow).to_be_visible()
    low = page.evaluate(CONTRAST_CHECK)
    assert low == [], low
    # reach Allow with Tab alone, press Enter
    page.locator("body").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Allow":
            break
    else:
        pytest.fail("Tab never reached the Allow button")
    page.keyboard.press("Enter")
    expect(page.locator(".call")).to_contain_text("ran echo keys")


def test_session_view_screenshot(console: ConsolePage, sdk: anthropic.Anthropic, tmp_path: Path) -> None:
    """docs/console.png (with `make console-screenshot`): a session that called tools, with one awaiting approval."""
    _, session_id = new_session(sdk, "researcher", [ASKING_BASH, LOOKUP])
    say(sdk, session_id, "sleep 200\nSummarise the repository layout.")
    wait_idle(sdk, session_id)
    say(sdk, session_id, 'call bash {"command": "ls src/loophost"}\ncall lookup {"q": "layers"}')
    wait_idle(sdk, session_id)
    open_session(console, session_id)
    page = console.page
    expect(page.get_by_role("region", name="Waiting for you").locator(".pending")).to_have_count(2)
    target = screenshot_target(tmp_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000


CONTRAST_CHECK = """() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] === 1) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.checkVisibility() || el.closest(".visually-hidden")) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    const [a, b] = [lum(fg), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${ratio.toFixed(2)}: ${node.textContent.trim().slice(0, 40)}`);
  }
  return low;
}"""
