// The transcript tab: model requests with what the agent wrote and called, inputs, statuses, outcomes.
// Only the newest items are in the DOM (a "show earlier" button adds more), so a long session stays fast.
// The same panel draws a multiagent session's thread lanes: a child thread's feed has its own seqs, which are not
// the session log's, so there `sessionId` is null and a seq is shown as text, not as a deep link.

import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { contentText } from "../transcript.js";
import { fmtClock, html, Link } from "../ui.js";

const WINDOW = 150;

function SeqLink({ sessionId, seq }) {
  if (!sessionId) return html`<span class="seq">#${seq}</span>`;
  return html`<${Link} class="seq" to=${`/sessions/${sessionId}?seq=${seq}`} aria-label=${`event ${seq} in the log`}>#${seq}<//>`;
}

function ToolResult({ call }) {
  const { result, confirmation } = call;
  return html`${confirmation &&
    html`<div class=${"confirmation " + confirmation.result}>
      ${confirmation.result === "allow" ? "allowed" : "denied"}${confirmation.deny_message ? `: ${confirmation.deny_message}` : ""}
    </div>`}
  ${result
    ? html`<div class=${"result" + (result.is_error ? " failed" : "")}>
        <span class="label">${result.is_error ? "error" : "result"}</span>
        <pre>${contentText(result.content)}</pre>
      </div>`
    : html`<div class="result pending-result">waiting for ${call.kind === "agent.custom_tool_use" ? "the client's answer" : call.event.evaluated_permission === "ask" && !confirmation ? "a confirmation" : "the result"}</div>`}`;
}

function Part({ part, sessionId }) {
  const event = part.event;
  if (part.kind === "agent.thinking") return html`<div class="thinking">thinking… <${SeqLink} sessionId=${sessionId} seq=${part.seq} /></div>`;
  if (part.kind === "agent.message") {
    return html`<div class="msg agent"><span class="who">agent</span> <${SeqLink} sessionId=${sessionId} seq=${part.seq} />
      <div class="text">${contentText(event.content)}</div></div>`;
  }
  const kind = { "agent.tool_use": "tool", "agent.mcp_tool_use": "MCP tool", "agent.custom_tool_use": "custom tool" }[part.kind];
  return html`<div class="call" data-call=${event.id}>
    <div class="call-head">
      <span class="label">${kind}</span> <strong>${event.mcp_server_name ? `${event.mcp_server_name}/` : ""}${event.name}</strong>
      ${event.evaluated_permission === "ask" && html`<span class="badge ask">asks</span>`}
      ${event.session_thread_id && html`<span class="sub">thread ${event.session_thread_id}</span>`}
      <${SeqLink} sessionId=${sessionId} seq=${part.seq} />
    </div>
    <pre class="input">${JSON.stringify(event.input || {}, null, 2)}</pre>
    <${ToolResult} call=${part} />
  </div>`;
}

/** A coordinator's message to or from a thread, or a thread's status, on the primary log. */
function ThreadItem({ item, sessionId }) {
  const event = item.event;
  const link = html`<${SeqLink} sessionId=${sessionId} seq=${item.seq} />`;
  if (event.type === "agent.thread_message_sent" || event.type === "agent.thread_message_received") {
    const sent = event.type === "agent.thread_message_sent";
    // in a thread's own lane, what arrives from the primary thread is its coordinator's delegation
    const name = sent
      ? event.to_agent_name || event.to_session_thread_id
      : event.from_agent_name || (sessionId ? event.from_session_thread_id : "coordinator");
    return html`<div class=${"msg thread " + (sent ? "to-thread" : "from-thread")} data-thread=${sent ? event.to_session_thread_id : event.from_session_thread_id}>
      <span class="who">${sent ? `to ${name}` : `from ${name}`}</span> ${link}
      <div class="text">${contentText(event.content)}</div>
    </div>`;
  }
  const what = event.type === "session.thread_created" ? `thread ${event.agent_name} created` : `thread ${event.session_thread_id} ${event.type.replace("session.thread_status_", "")}`;
  return html`<div class="status-line thread-status">${what} ${link}</div>`;
}

function Item({ item, sessionId }) {
  const event = item.event;
  if (item.kind === "request") {
    const usage = item.end && item.end.model_usage;
    return html`<section class="request" aria-label=${`Model request ${item.number}`}>
      <header>
        <span class="label">model request ${item.number}</span>
        <${SeqLink} sessionId=${sessionId} seq=${item.seq} />
        ${usage ? html`<span class="sub">${usage.input_tokens} in · ${usage.output_tokens} out</span>` : html`<span class="sub">in progress</span>`}
        ${item.end && item.end.is_error && html`<span class="badge failed">failed</span>`}
      </header>
      ${item.parts.map((part) => html`<${Part} key=${part.seq} part=${part} sessionId=${sessionId} />`)}
    </section>`;
  }
  if (item.kind === "input") {
    // in a thread's own log, the coordinator's delegation is its user.message
    const who = event.type === "user.message" ? (sessionId ? "you" : "coordinator") : event.type.replace(/^user\./, "");
    const text = event.type === "user.define_outcome" ? event.description : contentText(event.content);
    return html`<div class=${"msg " + event.type.replace(".", "-")}>
      <span class="who">${who}</span> <${SeqLink} sessionId=${sessionId} seq=${item.seq} />
      <span class="sub">${fmtClock(event.processed_at)}</span>
      ${text && html`<div class="text">${text}</div>`}
    </div>`;
  }
  if (item.kind === "status") {
    let text = event.type.replace("session.", "").replace("status_", "");
    if (event.stop_reason) text += ` · ${event.stop_reason.type}`;
    if (event.type === "session.error") text = `error: ${(event.error && (event.error.message || event.error.type)) || ""}`;
    return html`<div class=${"status-line " + event.type.replace(".", "-")}>${text} <${SeqLink} sessionId=${sessionId} seq=${item.seq} /></div>`;
  }
  if (item.kind === "thread") return html`<${ThreadItem} item=${item} sessionId=${sessionId} />`;
  if (item.kind === "outcome") {
    return html`<div class="status-line outcome">outcome ${event.outcome_id} · iteration ${event.iteration}
      ${event.result ? ` · ${event.result}` : ""}${event.explanation ? ` — ${event.explanation}` : ""}
      <${SeqLink} sessionId=${sessionId} seq=${item.seq} /></div>`;
  }
  return html`<div class="status-line">${event.type} <${SeqLink} sessionId=${sessionId} seq=${item.seq} /></div>`;
}

export function TranscriptPanel({ feed }) {
  const sessionId = feed.threadId ? null : feed.sessionId;
  const [shown, setShown] = useState(WINDOW);
  const box = useRef(null);
  const items = feed.transcript.items;
  const from = Math.max(0, items.length - shown);
  const previews = [...feed.previews.entries()].filter(([, p]) => p.type === "agent.message");

  // stay at the newest item while the reader is there
  const pinned = useRef(true);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [feed.version]);
  const onScroll = (event) => {
    const el = event.currentTarget;
    pinned.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 40;
  };

  return html`<div class="transcript" ref=${box} onScroll=${onScroll} aria-live="off">
    ${from > 0 &&
    html`<button class="quiet more" onClick=${() => { pinned.current = false; setShown(shown + WINDOW); }}>
      Show earlier (${from} more)
    </button>`}
    ${items.slice(from).map((item) => html`<${Item} key=${item.seq} item=${item} sessionId=${sessionId} />`)}
    ${previews.map(
      ([id, p]) => html`<div class="msg agent streaming" key=${id} data-preview=${id}>
        <span class="who">agent</span> <span class="sub">writing…</span><div class="text">${p.text}</div>
      </div>`,
    )}
    ${!items.length && feed.state !== "loading" && html`<p class="empty">Nothing yet: send a message below.</p>`}
  </div>`;
}
