// Sessions: newest first, filtered by status and agent, paged with the API's cursors; statuses refresh live.

import { useEffect, useState } from "preact/hooks";
import { api, listAll } from "../api.js";
import { ErrorNote, fmtMoney, fmtTime, fmtTokens, html, Link, StatusBadge, useLoad } from "../ui.js";

const STATUSES = ["idle", "running", "rescheduling", "terminated"];
const PAGE_SIZE = 20;
const REFRESH_MS = 2000;

export function SessionsView() {
  const [status, setStatus] = useState("");
  const [agentId, setAgentId] = useState("");
  const [archived, setArchived] = useState(false);
  const [cursor, setCursor] = useState(null); // the page shown: null = the newest
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [agents] = useLoad(() => listAll("/agents", { limit: 100, include_archived: true }), []);

  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const result = await api("/sessions", {
          query: {
            limit: PAGE_SIZE,
            page: cursor,
            statuses: status ? [status] : undefined,
            agent_id: agentId || undefined,
            include_archived: archived || undefined,
          },
        });
        if (live) {
          setPage(result);
          setError(null);
        }
      } catch (e) {
        if (live) setError(e);
      }
    };
    load();
    const timer = setInterval(() => document.visibilityState === "visible" && load(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [status, agentId, archived, cursor]);

  const names = new Map((agents || []).map((a) => [a.id, a.name]));
  const filter = (setter) => (event) => {
    setCursor(null);
    setter(event.currentTarget.type === "checkbox" ? event.currentTarget.checked : event.currentTarget.value);
  };
  const rows = page ? page.data : [];
  return html`<section aria-labelledby="sessions-title">
    <h1 id="sessions-title">Sessions</h1>
    <div class="filters" role="group" aria-label="Filters">
      <label>Status
        <select value=${status} onChange=${filter(setStatus)}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      <label>Agent
        <select value=${agentId} onChange=${filter(setAgentId)}>
          <option value="">any</option>
          ${(agents || []).map((a) => html`<option value=${a.id}>${a.name} (${a.id.slice(-8)})</option>`)}
        </select>
      </label>
      <label class="check"><input type="checkbox" checked=${archived} onChange=${filter(setArchived)} /> archived too</label>
    </div>
    <${ErrorNote} error=${error} />
    <table class="grid sessions">
      <thead>
        <tr><th scope="col">Session</th><th scope="col">Status</th><th scope="col">Agent</th><th scope="col">Tokens</th>
          <th scope="col">List cost</th><th scope="col">Created</th></tr>
      </thead>
      <tbody>
        ${rows.map(
          (s) => html`<tr key=${s.id} data-session=${s.id}>
            <td><${Link} to=${`/sessions/${s.id}`}>${s.title || s.id}<//>${s.title && html`<div class="sub">${s.id}</div>`}</td>
            <td><${StatusBadge} status=${s.status} /></td>
            <td>${s.agent ? html`<${Link} to=${`/agents/${s.agent.id}`}>${s.agent.name || names.get(s.agent.id)}<//> <span class="sub">v${s.agent.version}</span>` : ""}</td>
            <td class="num">${fmtTokens(s.usage)}</td>
            <td class="num">${fmtMoney(s.usage && s.usage.list_cost) || "–"}</td>
            <td><time datetime=${s.created_at}>${fmtTime(s.created_at)}</time></td>
          </tr>`,
        )}
        ${page && !rows.length && html`<tr><td colspan="6" class="empty">No sessions match.</td></tr>`}
      </tbody>
    </table>
    <nav class="pager" aria-label="Pages">
      <button disabled=${!cursor} onClick=${() => setCursor(null)}>Newest</button>
      <button disabled=${!(page && page.prev_page)} onClick=${() => setCursor(page.prev_page)}>Newer</button>
      <button disabled=${!(page && page.next_page)} onClick=${() => setCursor(page.next_page)}>Older</button>
    </nav>
  </section>`;
}
