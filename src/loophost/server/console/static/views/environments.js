// Environments: where sessions' tools run. Each row opens to its configuration.

import { useState } from "preact/hooks";
import { listAll } from "../api.js";
import { ErrorNote, fmtTime, html, Json, useLoad } from "../ui.js";

export function EnvironmentsView() {
  const [archived, setArchived] = useState(false);
  const [environments, error] = useLoad(() => listAll("/environments", { limit: 100, include_archived: archived }), [archived]);
  return html`<section aria-labelledby="environments-title">
    <h1 id="environments-title">Environments</h1>
    <div class="filters">
      <label class="check"><input type="checkbox" checked=${archived} onChange=${(e) => setArchived(e.currentTarget.checked)} /> archived too</label>
    </div>
    <${ErrorNote} error=${error} />
    <ul class="cards">
      ${(environments || []).map(
        (env) => html`<li key=${env.id}>
          <details>
            <summary><strong>${env.name}</strong> <span class="sub">${env.id} · ${env.config && env.config.type}
              ${env.config && env.config.networking ? ` · ${env.config.networking.type} networking` : ""}
              · created ${fmtTime(env.created_at)}${env.archived_at ? " · archived" : ""}</span></summary>
            ${env.description && html`<p>${env.description}</p>`}
            <${Json} value=${env} />
          </details>
        </li>`,
      )}
      ${environments && !environments.length && html`<li class="empty">No environments yet.</li>`}
    </ul>
  </section>`;
}
