// Agents: the list; one agent's versions, a diff between two, its YAML (what `loophost agents export` prints)
// and the equivalent API request; and an inline test session.

import { useState } from "preact/hooks";
import { api, listAll, sendEvents } from "../api.js";
import { agentSpec, diffLines, toYaml } from "../spec.js";
import { ErrorNote, fmtTime, html, Link, StatusBadge, Tabs, useLoad } from "../ui.js";
import { useFeed } from "./session.js";
import { Steering } from "./steer.js";
import { TranscriptPanel } from "./transcript.js";

export function AgentsView() {
  const [archived, setArchived] = useState(false);
  const [agents, error] = useLoad(() => listAll("/agents", { limit: 100, include_archived: archived }), [archived]);
  return html`<section aria-labelledby="agents-title">
    <h1 id="agents-title">Agents</h1>
    <div class="filters">
      <label class="check"><input type="checkbox" checked=${archived} onChange=${(e) => setArchived(e.currentTarget.checked)} /> archived too</label>
    </div>
    <${ErrorNote} error=${error} />
    <table class="grid">
      <thead><tr><th scope="col">Agent</th><th scope="col">Model</th><th scope="col">Version</th><th scope="col">Updated</th></tr></thead>
      <tbody>
        ${(agents || []).map(
          (a) => html`<tr key=${a.id}>
            <td><${Link} to=${`/agents/${a.id}`}>${a.name}<//><div class="sub">${a.id}</div></td>
            <td>${a.model && a.model.id}</td><td class="num">${a.version}${a.archived_at ? " (archived)" : ""}</td>
            <td>${fmtTime(a.updated_at)}</td></tr>`,
        )}
        ${agents && !agents.length && html`<tr><td colspan="4" class="empty">No agents yet (create them with the API or <code>loophost apply -f agents.yaml</code>).</td></tr>`}
      </tbody>
    </table>
  </section>`;
}

function Diff({ versions }) {
  const numbers = versions.map((v) => v.version).sort((a, b) => a - b);
  const [from, setFrom] = useState(numbers.length > 1 ? numbers[numbers.length - 2] : numbers[0]);
  const [to, setTo] = useState(numbers[numbers.length - 1]);
  const yamlOf = (n) => toYaml(agentSpec(versions.find((v) => v.version === Number(n)) || {}));
  const lines = diffLines(yamlOf(from), yamlOf(to));
  const pick = (value, set) => html`<select value=${value} onChange=${(e) => set(Number(e.currentTarget.value))}>
    ${numbers.map((n) => html`<option value=${n}>v${n}</option>`)}
  </select>`;
  return html`<div class="diff-view">
    <div class="filters"><label>From ${pick(from, setFrom)}</label><label>To ${pick(to, setTo)}</label></div>
    <pre class="diff" aria-label=${`Changes from version ${from} to ${to}`}>${lines.map(
      (l) => html`<div class=${{ "+": "add", "-": "del", " ": "same" }[l.op]}><span aria-hidden="true">${l.op} </span>${l.op === "+" ? html`<span class="visually-hidden">added: </span>` : l.op === "-" ? html`<span class="visually-hidden">removed: </span>` : ""}${l.line}</div>`,
    )}</pre>
  </div>`;
}

function TestSession({ agent }) {
  const [environments] = useLoad(() => listAll("/environments", { limit: 100 }), []);
  const [envId, setEnvId] = useState("");
  const [text, setText] = useState("");
  const [sessionId, setSessionId] = useState(null);
  const [error, setError] = useState(null);
  const start = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      let environment = envId || (environments && environments[0] && environments[0].id);
      if (!environment) environment = (await api("/environments", { method: "POST", body: { name: `console-test-${Date.now()}` } })).id;
      const session = await api("/sessions", {
        method: "POST",
        body: { agent: agent.id, environment_id: environment, title: `Test of ${agent.name} v${agent.version}` },
      });
      if (text.trim()) await sendEvents(session.id, [{ type: "user.message", content: [{ type: "text", text }] }]);
      setSessionId(session.id);
    } catch (e) {
      setError(e);
    }
  };
  if (sessionId) return html`<${InlineSession} key=${sessionId} sessionId=${sessionId} onReset=${() => setSessionId(null)} />`;
  return html`<form class="test-session" onSubmit=${start}>
    <label>Environment
      <select value=${envId} onChange=${(e) => setEnvId(e.currentTarget.value)}>
        ${(environments || []).map((e) => html`<option value=${e.id}>${e.name}</option>`)}
        ${environments && !environments.length && html`<option value="">a new one</option>`}
      </select>
    </label>
    <label for="test-message">First message</label>
    <textarea id="test-message" rows="3" value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    <button type="submit" class="primary">Start test session</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

function InlineSession({ sessionId, onReset }) {
  const feed = useFeed(sessionId);
  const last = [...feed.events].reverse().find((e) => e.type.startsWith("session.status_"));
  const status = last ? last.type.replace("session.status_", "").replace("rescheduled", "rescheduling") : "idle";
  return html`<div class="inline-session">
    <p>
      Session <${Link} to=${`/sessions/${sessionId}`}>${sessionId}<//> <${StatusBadge} status=${status} />
      <button class="quiet" onClick=${onReset}>New test session</button>
    </p>
    <${Steering} sessionId=${sessionId} feed=${feed} status=${status} />
    <${TranscriptPanel} feed=${feed} />
  </div>`;
}

export function AgentView({ agentId }) {
  const [tab, setTab] = useState("yaml");
  const [versions, error] = useLoad(() => listAll(`/agents/${encodeURIComponent(agentId)}/versions`, { limit: 100 }), [agentId]);
  const agent = versions && versions.reduce((a, b) => (b.version > (a ? a.version : 0) ? b : a), null);
  if (!agent) return html`<${ErrorNote} error=${error} />${!error && html`<p>Loading…</p>`}`;
  const spec = agentSpec(agent);
  const tabs = [
    { id: "yaml", label: "YAML" },
    { id: "request", label: "API request" },
    { id: "versions", label: `Versions (${versions.length})` },
    { id: "test", label: "Test session" },
  ];
  return html`<article aria-labelledby="agent-title">
    <h1 id="agent-title">${agent.name}</h1>
    <dl class="facts">
      <div><dt>Id</dt><dd>${agent.id}</dd></div>
      <div><dt>Version</dt><dd>${agent.version}</dd></div>
      <div><dt>Model</dt><dd>${agent.model && agent.model.id}</dd></div>
      <div><dt>Updated</dt><dd>${fmtTime(agent.updated_at)}</dd></div>
      ${agent.archived_at && html`<div><dt>Archived</dt><dd>${fmtTime(agent.archived_at)}</dd></div>`}
    </dl>
    <${Tabs} tabs=${tabs} current=${tab} onChange=${setTab} label="Agent views" />
    <div role="tabpanel" id=${"panel-" + tab} aria-labelledby=${"tab-" + tab} class="panel">
      ${tab === "yaml" && html`<p class="hint">As <code>loophost agents export ${agent.id}</code> prints it; <code>loophost apply -f</code> takes it back.</p>
        <pre class="code" data-testid="agent-yaml">${toYaml({ agents: [spec] })}</pre>`}
      ${tab === "request" && html`<p class="hint">The request that creates this version's configuration.</p>
        <pre class="code">${"POST /v1/agents\n" + JSON.stringify(spec, null, 2)}</pre>`}
      ${tab === "versions" && html`<${Diff} versions=${versions} />
        <table class="grid"><thead><tr><th scope="col">Version</th><th scope="col">Created</th></tr></thead>
          <tbody>${[...versions].sort((a, b) => b.version - a.version).map((v) => html`<tr><td>v${v.version}</td><td>${fmtTime(v.updated_at)}</td></tr>`)}</tbody></table>`}
      ${tab === "test" && html`<${TestSession} agent=${agent} />`}
    </div>
  </article>`;
}
