// Webhooks: the workspace's endpoints, the events each is subscribed to, whether it is enabled (and why loophost
// disabled it), and its recent deliveries with their state and attempts. The steer is Disable / Enable (enabling
// clears the reason and resumes pending deliveries). No signing secret is shown: the API answers one only when
// an endpoint is created or its secret rotated, which stay with `loophost webhooks` and the API.

import { useEffect, useState } from "preact/hooks";
import { api, listAll } from "../api.js";
import { ErrorNote, fmtTime, html, StatusBadge, useLoad } from "../ui.js";

const REFRESH_MS = 2000;
const RECENT = 20;

function deliveryDetail(d) {
  if (d.state === "delivered") return `delivered ${fmtTime(d.delivered_at)}`;
  const error = d.last_error ? `last error: ${d.last_error}` : "not tried yet";
  return d.state === "pending" ? `${error} · next try ${fmtTime(d.next_attempt_at)}` : `${error} · given up`;
}

/** The newest deliveries, re-read every 2 s while the page is visible (retries and state change on their own). */
function Deliveries({ endpointId }) {
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api(`/webhooks/${encodeURIComponent(endpointId)}/deliveries`, { query: { limit: RECENT } }).then(
        (result) => live && (setPage(result), setError(null)),
        (e) => live && setError(e),
      );
    load();
    const timer = setInterval(() => document.visibilityState === "visible" && load(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [endpointId]);
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!page) return html`<p class="sub">Loading…</p>`;
  if (!page.data.length) return html`<p class="empty">No deliveries yet.</p>`;
  return html`<table class="grid" aria-label="Recent deliveries">
    <thead><tr><th scope="col">Event</th><th scope="col">Created</th><th scope="col">State</th><th scope="col">Attempts</th>
      <th scope="col">Detail</th></tr></thead>
    <tbody>
      ${page.data.map(
        (d) => html`<tr key=${d.event_id} data-testid="delivery" data-event=${d.event_id}>
          <td><strong>${d.event_type}</strong><div class="sub">${d.event_id}</div></td>
          <td>${fmtTime(d.created_at)}</td>
          <td><${StatusBadge} status=${d.state} /></td>
          <td class="num">${d.attempts}</td>
          <td>${deliveryDetail(d)}</td>
        </tr>`,
      )}
    </tbody>
  </table>
  ${page.next_page && html`<p class="sub">The ${RECENT} newest are shown.</p>`}`;
}

function Endpoint({ endpoint, onChanged }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const enabled = endpoint.state === "enabled";
  const setState = async (state) => {
    setBusy(true);
    setError(null);
    try {
      await api(`/webhooks/${encodeURIComponent(endpoint.id)}`, { method: "POST", body: { state } });
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<li data-webhook=${endpoint.id}>
    <details onToggle=${(e) => setOpen(e.currentTarget.open)}>
      <summary><strong>${endpoint.name || endpoint.url}</strong> <${StatusBadge} status=${endpoint.state} />
        <span class="sub">${endpoint.id} · ${endpoint.enabled_events.length} event${endpoint.enabled_events.length === 1 ? "" : "s"}
        · created ${fmtTime(endpoint.created_at)}</span></summary>
      <dl class="facts">
        <div><dt>URL</dt><dd><code>${endpoint.url}</code></dd></div>
        ${endpoint.description && html`<div><dt>Description</dt><dd>${endpoint.description}</dd></div>`}
        <div><dt>Updated</dt><dd>${fmtTime(endpoint.updated_at)}</dd></div>
      </dl>
      ${endpoint.disabled_reason && html`<p class="error" data-testid="disabled-reason">Disabled by loophost: ${endpoint.disabled_reason}</p>`}
      <h2>Enabled events</h2>
      <ul class="events">${endpoint.enabled_events.map((name) => html`<li><code>${name}</code></li>`)}</ul>
      <div class="row">
        ${enabled
          ? html`<button class="danger" disabled=${busy} onClick=${() => setState("disabled")}>Disable</button>`
          : html`<button class="primary" disabled=${busy} onClick=${() => setState("enabled")}>Enable</button>`}
        <span class="hint">${enabled ? "Deliveries stop until it is enabled again." : "Pending deliveries resume."}</span>
      </div>
      <${ErrorNote} error=${error} />
      <h2>Recent deliveries</h2>
      ${open && html`<${Deliveries} endpointId=${endpoint.id} />`}
    </details>
  </li>`;
}

export function WebhooksView() {
  const [endpoints, error, reload] = useLoad(() => listAll("/webhooks", { limit: 100 }), []);
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === "visible" && reload(), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  return html`<section aria-labelledby="webhooks-title">
    <h1 id="webhooks-title">Webhooks</h1>
    <p class="hint">
      Endpoints this workspace's events are POSTed to, signed. Signing secrets are shown only when made (<code>loophost
      webhooks create</code>, <code>rotate-secret</code>), never here.
    </p>
    <${ErrorNote} error=${error} />
    <ul class="cards">
      ${(endpoints || []).map((endpoint) => html`<${Endpoint} key=${endpoint.id} endpoint=${endpoint} onChanged=${reload} />`)}
      ${endpoints && !endpoints.length && html`<li class="empty">No webhook endpoints yet.</li>`}
    </ul>
  </section>`;
}
