// Steering a session: answer what it waits on (allow/deny a confirmation, a custom tool's result by hand), send a
// message, interrupt. Each action is one `POST /v1/sessions/{id}/events`; the log then shows what happened.

import { useState } from "preact/hooks";
import { sendEvents } from "../api.js";
import { ErrorNote, html } from "../ui.js";

function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function Confirmation({ sessionId, call }) {
  const { busy, error, run } = useAction();
  const [reason, setReason] = useState("");
  const event = call.event;
  const answer = (result) =>
    run(() =>
      sendEvents(sessionId, [
        { type: "user.tool_confirmation", tool_use_id: event.id, result, ...(result === "deny" && reason ? { deny_message: reason } : {}) },
      ]),
    );
  return html`<li class="pending" data-pending=${event.id}>
    <p><strong>${event.name}</strong> asks to run with <code>${JSON.stringify(event.input || {})}</code></p>
    <div class="row">
      <button class="primary" disabled=${busy} onClick=${() => answer("allow")}>Allow</button>
      <label>Reason (optional) <input value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} /></label>
      <button class="danger" disabled=${busy} onClick=${() => answer("deny")}>Deny</button>
    </div>
    <${ErrorNote} error=${error} />
  </li>`;
}

function CustomToolAnswer({ sessionId, call }) {
  const { busy, error, run } = useAction();
  const [text, setText] = useState("");
  const [isError, setIsError] = useState(false);
  const event = call.event;
  const id = `answer-${event.id}`;
  const onSubmit = (e) => {
    e.preventDefault();
    run(() =>
      sendEvents(sessionId, [
        {
          type: "user.custom_tool_result",
          custom_tool_use_id: event.id,
          content: [{ type: "text", text }],
          ...(isError ? { is_error: true } : {}),
        },
      ]),
    );
  };
  return html`<li class="pending" data-pending=${event.id}>
    <form onSubmit=${onSubmit}>
      <p>Custom tool <strong>${event.name}</strong> was called with <code>${JSON.stringify(event.input || {})}</code></p>
      <label for=${id}>Result, by hand</label>
      <textarea id=${id} rows="2" value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
      <div class="row">
        <label class="check"><input type="checkbox" checked=${isError} onChange=${(e) => setIsError(e.currentTarget.checked)} /> is an error</label>
        <button type="submit" class="primary" disabled=${busy}>Send result</button>
      </div>
      <${ErrorNote} error=${error} />
    </form>
  </li>`;
}

function Composer({ sessionId, disabled }) {
  const { busy, error, run } = useAction();
  const [text, setText] = useState("");
  const send = async () => {
    if (!text.trim()) return;
    const ok = await run(() => sendEvents(sessionId, [{ type: "user.message", content: [{ type: "text", text }] }]));
    if (ok) setText("");
  };
  const onKeyDown = (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    }
  };
  return html`<form class="composer" onSubmit=${(e) => (e.preventDefault(), send())}>
    <label for="message">Message</label>
    <textarea
      id="message"
      rows="2"
      value=${text}
      disabled=${disabled}
      aria-describedby="message-hint"
      onInput=${(e) => setText(e.currentTarget.value)}
      onKeyDown=${onKeyDown}
    ></textarea>
    <span class="hint" id="message-hint">Ctrl+Enter sends</span>
    <button type="submit" class="primary" disabled=${busy || disabled}>Send</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

export function Steering({ sessionId, feed, status }) {
  const interrupt = useAction();
  const pending = [...feed.transcript.pending.values()];
  const ended = status === "terminated" || feed.state === "ended";
  return html`<section class="steering" aria-label="Steering">
    ${pending.length > 0 &&
    html`<div class="waiting" role="region" aria-label="Waiting for you">
      <h2>Waiting for you</h2>
      <ul>
        ${pending.map((call) =>
          call.kind === "agent.custom_tool_use"
            ? html`<${CustomToolAnswer} key=${call.event.id} sessionId=${sessionId} call=${call} />`
            : html`<${Confirmation} key=${call.event.id} sessionId=${sessionId} call=${call} />`,
        )}
      </ul>
    </div>`}
    <div class="steer-row">
      <${Composer} sessionId=${sessionId} disabled=${ended} />
      <button
        class="danger"
        disabled=${interrupt.busy || !(status === "running" || status === "rescheduling")}
        onClick=${() => interrupt.run(() => sendEvents(sessionId, [{ type: "user.interrupt" }]))}
      >
        Interrupt
      </button>
    </div>
    <${ErrorNote} error=${interrupt.error} />
  </section>`;
}
