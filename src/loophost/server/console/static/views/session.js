// One session: its header (status, agent, usage against the budget), steering, and the tabs over its log. A
// multiagent session (a coordinator with threads) also has a Threads tab: one lane per thread, side by side.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { SessionFeed } from "../stream.js";
import { ErrorNote, fmtMoney, fmtTime, fmtTokens, html, Json, Link, navigate, StatusBadge, Tabs } from "../ui.js";
import { EventLog } from "./events.js";
import { FilesPanel } from "./files.js";
import { Steering } from "./steer.js";
import { ThreadLanes } from "./threads.js";
import { TranscriptPanel } from "./transcript.js";

export const CONNECTION = {
  loading: "loading the log…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "ended",
  error: "stream failed",
  listed: "not followed",
};

/** The session's feed (or one child thread's, with `threadId`; listed once without `follow`), started on mount
 * and stopped on unmount; re-renders on every (throttled) change. */
export function useFeed(sessionId, { threadId = null, follow = true } = {}) {
  const [, setVersion] = useState(0);
  const feed = useMemo(
    () => new SessionFeed(sessionId, (f) => setVersion(f.version), { threadId, follow }),
    [sessionId, threadId, follow],
  );
  useEffect(() => {
    feed.start();
    return () => feed.stop();
  }, [feed]);
  return feed;
}

/** The session document, re-read when the log shows it changed (status, usage), at most once a second. */
function useSession(sessionId, feed) {
  const [session, setSession] = useState(null);
  const [error, setError] = useState(null);
  const seen = useRef(-1);
  const last = feed.events.length ? feed.events[feed.events.length - 1] : null;
  const marker = last ? last.id : "";
  useEffect(() => {
    let live = true;
    const timer = setTimeout(
      () =>
        api(`/sessions/${encodeURIComponent(sessionId)}`).then(
          (s) => live && (setSession(s), setError(null)),
          (e) => live && setError(e),
        ),
      seen.current < 0 ? 0 : 400,
    );
    seen.current = feed.events.length;
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [sessionId, marker, feed.state === "live"]);
  return [session, error];
}

/** The session's threads (primary first), re-read whenever the log shows a thread created or changing status. */
function useThreads(sessionId, feed) {
  const [threads, setThreads] = useState(null);
  useEffect(() => {
    let live = true;
    api(`/sessions/${encodeURIComponent(sessionId)}/threads`).then(
      (r) => live && setThreads(r.data),
      () => live && setThreads((t) => t || []),
    );
    return () => {
      live = false;
    };
  }, [sessionId, feed.threadEvents]);
  return threads;
}

/** The status as the log last said it (the document can lag a moment behind the stream). */
export function liveStatus(feed, session) {
  for (let i = feed.events.length - 1; i >= 0; i--) {
    const type = feed.events[i].type;
    if (type === "session.status_running") return "running";
    if (type === "session.status_idle") return "idle";
    if (type === "session.status_rescheduled") return "rescheduling";
    if (type === "session.status_terminated") return "terminated";
  }
  return session ? session.status : "";
}

function Usage({ session }) {
  if (!session) return null;
  const usage = session.usage || {};
  const cost = fmtMoney(usage.list_cost);
  const budget = session.budget && session.budget.max_list_cost;
  let meter = null;
  if (budget && usage.list_cost) {
    const used = Number(usage.list_cost.amount) / Math.max(1, Number(budget.amount));
    meter = html`<meter min="0" max="1" value=${Math.min(1, used)} aria-label="Budget used">${Math.round(used * 100)}%</meter>`;
  }
  return html`<dl class="facts usage">
    <div><dt>Tokens</dt><dd>${fmtTokens(usage)}</dd></div>
    <div><dt>List cost</dt><dd>${cost || "–"}${budget ? html` of ${fmtMoney(budget)} ${meter}` : ""}</dd></div>
    ${usage.active_seconds != null && html`<div><dt>Active</dt><dd>${usage.active_seconds.toFixed(1)} s</dd></div>`}
  </dl>`;
}

export function SessionView({ sessionId, query }) {
  const feed = useFeed(sessionId);
  const [session, error] = useSession(sessionId, feed);
  const seqParam = Number(query.get("seq")) || null;
  const [tab, setTab] = useState(seqParam ? "events" : "transcript");
  useEffect(() => {
    if (seqParam) setTab("events"); // a deep link (or a #seq link in the transcript) shows that event
  }, [seqParam]);
  const threads = useThreads(sessionId, feed);
  const status = liveStatus(feed, session);
  const agent = session && session.agent;
  const multiagent = Boolean(threads && threads.length > 1);

  const chooseTab = (id) => {
    setTab(id);
    if (id !== "events" && query.get("seq")) navigate(`/sessions/${sessionId}`, { replace: true });
  };
  const tabs = [
    { id: "transcript", label: "Transcript" },
    ...(multiagent ? [{ id: "threads", label: `Threads (${threads.length})` }] : []),
    { id: "events", label: `Events (${feed.events.length})` },
    { id: "files", label: "Files" },
    { id: "details", label: "Details" },
  ];
  return html`<article class="session" aria-labelledby="session-title">
    <header class="session-head">
      <div>
        <h1 id="session-title">${(session && session.title) || sessionId}</h1>
        <dl class="facts">
          <div><dt>Status</dt><dd data-testid="status"><${StatusBadge} status=${status} /></dd></div>
          <div><dt>Agent</dt><dd>${agent ? html`<${Link} to=${`/agents/${agent.id}`}>${agent.name}<//> v${agent.version}` : ""}</dd></div>
          <div><dt>Created</dt><dd>${session ? fmtTime(session.created_at) : ""}</dd></div>
          <div><dt>Stream</dt><dd role="status" data-testid="connection" data-state=${feed.state}>${CONNECTION[feed.state]}</dd></div>
        </dl>
        <${Usage} session=${session} />
      </div>
    </header>
    <${ErrorNote} error=${error || (feed.state !== "live" && feed.error)} />
    <${Steering} sessionId=${sessionId} feed=${feed} status=${status} />
    <${Tabs} tabs=${tabs} current=${tab} onChange=${chooseTab} label="Session views" />
    <div role="tabpanel" id=${"panel-" + tab} aria-labelledby=${"tab-" + tab} class="panel">
      ${tab === "transcript" && html`<${TranscriptPanel} feed=${feed} />`}
      ${tab === "threads" && multiagent && html`<${ThreadLanes} sessionId=${sessionId} feed=${feed} threads=${threads} />`}
      ${tab === "events" && html`<${EventLog} feed=${feed} sessionId=${sessionId} seq=${seqParam} />`}
      ${tab === "files" && html`<${FilesPanel} sessionId=${sessionId} session=${session} />`}
      ${tab === "details" && html`<${Details} session=${session} threads=${threads} />`}
    </div>
  </article>`;
}

function Details({ session, threads }) {
  if (!session) return null;
  return html`<div class="details">
    <h2>Threads</h2>
    <table class="grid">
      <thead><tr><th scope="col">Thread</th><th scope="col">Agent</th><th scope="col">Status</th><th scope="col">Tokens</th></tr></thead>
      <tbody>
        ${(threads || []).map(
          (t) => html`<tr><td>${t.id}${t.parent_thread_id ? "" : " (primary)"}</td><td>${t.agent && (t.agent.type === "advisor" ? `advisor (${t.agent.model})` : t.agent.name)}</td>
            <td><${StatusBadge} status=${t.status} /></td><td class="num">${fmtTokens(t.usage)}</td></tr>`,
        )}
      </tbody>
    </table>
    ${session.outcome_evaluations && session.outcome_evaluations.length
      ? html`<h2>Outcome evaluations</h2>
          <ul>${session.outcome_evaluations.map((o) => html`<li><strong>${o.result}</strong> (iteration ${o.iteration}): ${o.description}${o.explanation ? ` — ${o.explanation}` : ""}</li>`)}</ul>`
      : null}
    <h2>Session document</h2>
    <${Json} value=${session} />
  </div>`;
}
