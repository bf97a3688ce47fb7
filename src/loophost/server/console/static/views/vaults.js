// Vaults: the credentials MCP servers and tools are reached with. The API never answers a secret, so none can be
// shown: each credential shows what it is for (server URL, secret name, allowed hosts) and its state.

import { useState } from "preact/hooks";
import { listAll } from "../api.js";
import { ErrorNote, fmtTime, html, useLoad } from "../ui.js";

function target(auth) {
  if (!auth) return "";
  if (auth.mcp_server_url) return auth.mcp_server_url;
  if (auth.secret_name) {
    const hosts = (auth.networking && auth.networking.allowed_hosts) || auth.allowed_hosts || [];
    return `$${auth.secret_name}${hosts.length ? ` → ${hosts.join(", ")}` : ""}`;
  }
  return "";
}

function Credentials({ vaultId }) {
  const [credentials, error] = useLoad(() => listAll(`/vaults/${vaultId}/credentials`, { limit: 100 }), [vaultId]);
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!credentials) return html`<p class="sub">Loading…</p>`;
  if (!credentials.length) return html`<p class="empty">No credentials.</p>`;
  return html`<table class="grid" aria-label="Credentials">
    <thead><tr><th scope="col">Credential</th><th scope="col">Type</th><th scope="col">For</th><th scope="col">Created</th></tr></thead>
    <tbody>
      ${credentials.map(
        (c) => html`<tr key=${c.id} data-testid="credential">
          <td><strong>${c.display_name || c.id}</strong><div class="sub">${c.id}${c.archived_at ? " · archived" : ""}</div></td>
          <td>${c.auth && c.auth.type}</td>
          <td><code>${target(c.auth)}</code></td>
          <td>${fmtTime(c.created_at)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function VaultsView() {
  const [archived, setArchived] = useState(false);
  const [vaults, error] = useLoad(() => listAll("/vaults", { limit: 100, include_archived: archived }), [archived]);
  return html`<section aria-labelledby="vaults-title">
    <h1 id="vaults-title">Vaults</h1>
    <p class="hint">Secrets are write-only: the server never sends one back, so the console cannot show one.</p>
    <div class="filters">
      <label class="check"><input type="checkbox" checked=${archived} onChange=${(e) => setArchived(e.currentTarget.checked)} /> archived too</label>
    </div>
    <${ErrorNote} error=${error} />
    <ul class="cards">
      ${(vaults || []).map(
        (vault) => html`<li key=${vault.id}>
          <details>
            <summary><strong>${vault.display_name || vault.id}</strong> <span class="sub">${vault.id}
              · created ${fmtTime(vault.created_at)}${vault.archived_at ? " · archived" : ""}</span></summary>
            <${Credentials} vaultId=${vault.id} />
          </details>
        </li>`,
      )}
      ${vaults && !vaults.length && html`<li class="empty">No vaults yet.</li>`}
    </ul>
  </section>`;
}
