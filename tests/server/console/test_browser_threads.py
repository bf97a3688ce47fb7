"""A multiagent session in the console (headless Chromium, real server): a scripted coordinator delegates to two
roster agents with `send_to_agent`, and the Threads tab shows one lane per thread, each following its thread's
own log live (`/threads/{tid}/stream`) while it runs."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
from playwright.sync_api import expect

from .conftest import ConsolePage
from .test_browser import CONTRAST_CHECK, open_session, send_from_composer, status, wait_idle


def team(sdk: anthropic.Anthropic) -> tuple[str, Any, Any, Any]:
    """(session id, coordinator, researcher, writer): a coordinator whose roster is two scripted agents."""
    tag = time.monotonic_ns()
    researcher = sdk.beta.agents.create(name=f"researcher-{tag}", model="scripted", description="finds things")
    writer = sdk.beta.agents.create(name=f"writer-{tag}", model="scripted", description="writes")
    lead = sdk.beta.agents.create(
        name=f"lead-{tag}",
        model="scripted",
        multiagent={"type": "coordinator", "agents": [researcher.id, writer.id]},
    )
    env = sdk.beta.environments.create(name=f"team-{tag}")
    session = sdk.beta.sessions.create(agent=lead.id, environment_id=env.id, title="team session")
    return session.id, lead, researcher, writer


def delegate(agent: Any, text: str) -> str:
    return "call send_to_agent " + json.dumps({"agent": agent.name, "message": text})


def test_a_multiagent_session_shows_one_lane_per_thread_live(console: ConsolePage, sdk: anthropic.Anthropic) -> None:
    session_id, lead, researcher, writer = team(sdk)
    open_session(console, session_id)
    page = console.page
    expect(page.get_by_role("tab", name="Threads", exact=False)).to_have_count(0)  # one thread: no lanes
    send_from_composer(
        console, delegate(researcher, "sleep 4000\nfind the tides") + "\n" + delegate(writer, "draft it")
    )
    threads_tab = page.get_by_role("tab", name="Threads (3)")
    threads_tab.click()
    lanes = page.get_by_role("group", name="Threads").locator(".lane")
    expect(lanes).to_have_count(3)
    primary = page.get_by_role("region", name=f"Thread {lead.name}")
    slow = page.get_by_role("region", name=f"Thread {researcher.name}")
    quick = page.get_by_role("region", name=f"Thread {writer.name}")
    expect(primary).to_contain_text("primary · coordinator")
    # the researcher sleeps: its lane follows its own stream while it runs, then shows what it wrote
    expect(slow.get_by_test_id("lane-status")).to_have_text("running")
    expect(slow.get_by_test_id("lane-connection")).to_have_text("live")
    expect(slow.locator(".msg.from-thread")).to_contain_text("find the tides")  # the delegation, as received
    expect(slow.locator(".msg.from-thread .who")).to_have_text("from coordinator")
    expect(quick.locator(".msg.agent")).to_contain_text("echo: draft it")
    expect(slow.locator(".msg.agent")).to_contain_text("echo: find the tides")
    expect(slow.get_by_test_id("lane-status")).to_have_text("idle")
    # the coordinator's lane: its messages to and from each thread, then its answer
    expect(primary.locator(".msg.to-thread")).to_have_count(2)
    expect(primary.locator(".msg.from-thread", has_text="echo: find the tides")).to_have_count(1)
    expect(primary.locator(".msg.agent")).to_contain_text("send_to_agent: echo: find the tides")
    status(console).to_have_text("idle")
    wait_idle(sdk, session_id)
    # each lane holds its thread's own log, once: what the API lists for that thread
    for thread in sdk.beta.sessions.threads.list(session_id).data[1:]:
        own = [e for e in sdk.beta.sessions.threads.events.list(thread.id, session_id=session_id)]
        lane = page.locator(f".lane[data-thread='{thread.id}']")
        expect(lane.locator(".msg.agent")).to_have_count(len([e for e in own if e.type == "agent.message"]))
        expect(lane.get_by_test_id("lane-connection")).to_have_text("not followed")  # idle: listed, no stream
    # a seq in a thread's lane is its own log's, so it is text, not a link into the session's log
    expect(slow.get_by_role("link", name="event 1 in the log")).to_have_count(0)
    expect(primary.get_by_role("link", name="event 1 in the log")).to_have_count(1)
    low = page.evaluate(CONTRAST_CHECK)
    assert low == [], low
