// The loophost console: the key form, the navigation, and the route to each view.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, forgetKey, getKey, onKeyChange, setKey } from "./api.js";
import { html, Link, useRoute } from "./ui.js";
import { SessionsView } from "./views/sessions.js";
import { SessionView } from "./views/session.js";
import { AgentsView, AgentView } from "./views/agents.js";
import { EnvironmentsView } from "./views/environments.js";
import { VaultsView } from "./views/vaults.js";
import { WebhooksView } from "./views/webhooks.js";

function KeyForm() {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = async (event) => {
    event.preventDefault(); // never a form submission: the key must not reach a URL
    const key = value.trim();
    if (!key) return;
    setBusy(true);
    setError(null);
    try {
      // checked with the key in a header, before it is kept
      const response = await fetch("/v1/agents?limit=1", { headers: { "x-api-key": key } });
      if (response.status === 401) throw new Error("The server does not know this key.");
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      setValue("");
      setKey(key);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="key-gate">
    <h1>loophost console</h1>
    <form method="post" onSubmit=${onSubmit} autocomplete="off">
      <label for="api-key">API key</label>
      <p class="hint" id="api-key-hint">
        Kept in this tab's session storage only, and sent to this server in a header. Closing the tab forgets it.
      </p>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autocomplete="off"
        spellcheck="false"
        aria-describedby="api-key-hint"
        value=${value}
        onInput=${(e) => setValue(e.currentTarget.value)}
        required
        autofocus
      />
      <button type="submit" disabled=${busy}>Open console</button>
      ${error && html`<p class="error" role="alert">${error.message}</p>`}
    </form>
  </main>`;
}

function Nav({ section }) {
  const item = (to, id, label) =>
    html`<li><${Link} to=${to} aria-current=${section === id ? "page" : undefined}>${label}<//></li>`;
  return html`<header class="top">
    <a class="skip" href="#main">Skip to content</a>
    <span class="brand">loophost</span>
    <nav aria-label="Main">
      <ul>
        ${item("/", "sessions", "Sessions")} ${item("/agents", "agents", "Agents")}
        ${item("/environments", "environments", "Environments")} ${item("/vaults", "vaults", "Vaults")}
        ${item("/webhooks", "webhooks", "Webhooks")}
      </ul>
    </nav>
    <button class="quiet" onClick=${forgetKey}>Forget key</button>
  </header>`;
}

function Routes() {
  const { parts, query } = useRoute();
  const [section, id] = parts;
  let view;
  if (section === "sessions" && id) view = html`<${SessionView} key=${id} sessionId=${id} query=${query} />`;
  else if (section === "agents" && id) view = html`<${AgentView} key=${id} agentId=${id} />`;
  else if (section === "agents") view = html`<${AgentsView} />`;
  else if (section === "environments") view = html`<${EnvironmentsView} />`;
  else if (section === "vaults") view = html`<${VaultsView} />`;
  else if (section === "webhooks") view = html`<${WebhooksView} />`;
  else view = html`<${SessionsView} />`;
  const current = ["agents", "environments", "vaults", "webhooks"].includes(section) ? section : "sessions";
  return html`<${Nav} section=${current} />
    <main id="main" tabindex="-1">${view}</main>`;
}

function App() {
  const [hasKey, setHasKey] = useState(Boolean(getKey()));
  useEffect(() => onKeyChange(() => setHasKey(Boolean(getKey()))), []);
  return hasKey ? html`<${Routes} />` : html`<${KeyForm} />`;
}

render(html`<${App} />`, document.getElementById("app"));
