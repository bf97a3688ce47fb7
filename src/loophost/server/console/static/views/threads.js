// A multiagent session's threads, one lane each, side by side: the primary thread (the coordinator, whose log is
// the session's, already followed by the session view) and each child thread's own log
// (`/threads/{tid}/events`, then `/threads/{tid}/stream` resumed with Last-Event-ID like the session's).
//
// A browser holds about six connections to one server, so a lane streams only while its thread runs; a thread
// that is idle (or terminated) is listed once. The thread list is re-read whenever the session's log shows a
// thread created or changing status, so a lane starts following when its thread starts running again.

import { fmtTokens, html, StatusBadge } from "../ui.js";
import { CONNECTION, liveStatus, useFeed } from "./session.js";
import { TranscriptPanel } from "./transcript.js";

const BUSY = new Set(["running", "rescheduling"]);

function Lane({ thread, feed }) {
  const agent = thread.agent || {};
  const name = agent.type === "advisor" ? `advisor (${agent.model})` : agent.name || thread.id;
  const role = thread.parent_thread_id ? "thread" : "primary · coordinator";
  return html`<section class="lane" aria-label=${`Thread ${name}`} data-thread=${thread.id}>
    <header class="lane-head">
      <div class="row">
        <strong>${name}</strong> <span class="sub">${role}</span>
        <span data-testid="lane-status"><${StatusBadge} status=${liveStatus(feed, thread)} /></span>
      </div>
      <div class="sub">${thread.id}${thread.usage ? ` · ${fmtTokens(thread.usage)}` : ""} ·
        <span data-testid="lane-connection" data-state=${feed.state}>${CONNECTION[feed.state]}</span></div>
    </header>
    <${TranscriptPanel} feed=${feed} />
  </section>`;
}

function ChildLane({ sessionId, thread }) {
  const feed = useFeed(sessionId, { threadId: thread.id, follow: BUSY.has(thread.status) });
  return html`<${Lane} thread=${thread} feed=${feed} />`;
}

export function ThreadLanes({ sessionId, feed, threads }) {
  const [primary, ...children] = threads;
  return html`<div class="lanes" role="group" aria-label="Threads">
    <${Lane} thread=${primary} feed=${feed} />
    ${children.map((thread) => html`<${ChildLane} key=${thread.id} sessionId=${sessionId} thread=${thread} />`)}
  </div>`;
}
