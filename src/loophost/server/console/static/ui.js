// Shared pieces: the `html` template tag, the router, a virtualised list, and small formatting helpers.

import { h } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

// --- routing: paths under /console/, the query for the rest (e.g. ?seq=12) ---------------------------------------

const routeListeners = new Set();

export function navigate(path, { replace = false } = {}) {
  const url = path.startsWith("/console") ? path : "/console" + path;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  routeListeners.forEach((fn) => fn());
}

export function useRoute() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((n) => n + 1);
    routeListeners.add(update);
    addEventListener("popstate", update);
    return () => {
      routeListeners.delete(update);
      removeEventListener("popstate", update);
    };
  }, []);
  const path = location.pathname.replace(/^\/console\/?/, "");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(location.search) };
}

/** A real link (open in a new tab works) that navigates in place on a plain click. */
export function Link({ to, children, ...rest }) {
  const href = "/console" + to;
  const onClick = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

// --- formatting ---------------------------------------------------------------------------------------------------

export function fmtTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return isNaN(date) ? value : date.toLocaleString(undefined, { hour12: false });
}

export function fmtClock(value) {
  if (!value) return "";
  const date = new Date(value);
  return isNaN(date) ? value : date.toLocaleTimeString(undefined, { hour12: false });
}

export function fmtTokens(usage) {
  if (!usage) return "";
  const cached = (usage.cache_read_input_tokens || 0) + cacheWrites(usage);
  return `${usage.input_tokens || 0} in · ${usage.output_tokens || 0} out${cached ? ` · ${cached} cache` : ""}`;
}

function cacheWrites(usage) {
  const c = usage.cache_creation || {};
  return (c.ephemeral_5m_input_tokens || 0) + (c.ephemeral_1h_input_tokens || 0);
}

/** A MonetaryAmount (integer minor units as a string) as money; "" when there is none. */
export function fmtMoney(amount) {
  if (!amount || amount.amount == null) return "";
  const minor = Number(amount.amount);
  return `${(minor / 100).toFixed(2)} ${amount.currency || "USD"}`;
}

export function StatusBadge({ status }) {
  return html`<span class=${"badge status-" + status}>${status}</span>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Json({ value }) {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

/** Loads `load()` when `deps` change: [value, error, reload]. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ value: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (value) => live && setState({ value, error: null }),
      (error) => live && setState((s) => ({ value: s.value, error })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [state.value, state.error, () => setTick((n) => n + 1)];
}

// --- tabs (WAI-ARIA tabs: arrow keys move between them) --------------------------------------------------------------

export function Tabs({ tabs, current, onChange, label }) {
  const onKeyDown = (event) => {
    const i = tabs.findIndex((t) => t.id === current);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = tabs[(i + step + tabs.length) % tabs.length];
    onChange(next.id);
    requestAnimationFrame(() => document.getElementById("tab-" + next.id)?.focus());
  };
  return html`<div role="tablist" aria-label=${label} class="tabs" onKeyDown=${onKeyDown}>
    ${tabs.map(
      (t) => html`<button
        role="tab"
        id=${"tab-" + t.id}
        aria-selected=${t.id === current ? "true" : "false"}
        aria-controls=${"panel-" + t.id}
        tabindex=${t.id === current ? 0 : -1}
        onClick=${() => onChange(t.id)}
      >
        ${t.label}
      </button>`,
    )}
  </div>`;
}

// --- a virtualised list: only the rows in view (plus a margin) are in the DOM -----------------------------------------

/** Fixed-height rows, so the position of row i is i * rowHeight and a list of 100,000 costs what 50 cost. A
 * listbox: arrow keys, Page Up/Down, Home/End move the selection; `follow` keeps the end in view while the user
 * has not scrolled away from it. */
export function VirtualList({ count, rowHeight, renderRow, selected, onSelect, label, idPrefix, follow = false }) {
  const box = useRef(null);
  const [view, setView] = useState({ top: 0, height: 480 });
  const atEnd = useRef(true);

  useLayoutEffect(() => {
    const el = box.current;
    const observer = new ResizeObserver(() => setView((v) => ({ ...v, height: el.clientHeight })));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  useLayoutEffect(() => {
    const el = box.current;
    if (follow && atEnd.current && selected == null) el.scrollTop = el.scrollHeight;
  }, [count, follow]);

  useLayoutEffect(() => {
    const el = box.current;
    if (selected == null || !el) return;
    const top = selected * rowHeight;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = top + rowHeight - el.clientHeight;
    setView({ top: el.scrollTop, height: el.clientHeight });
  }, [selected, count]);

  const onScroll = (event) => {
    const el = event.currentTarget;
    atEnd.current = el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight;
    setView({ top: el.scrollTop, height: el.clientHeight });
  };

  const onKeyDown = (event) => {
    if (!count) return;
    const page = Math.max(1, Math.floor(view.height / rowHeight) - 1);
    const current = selected ?? -1;
    const next = {
      ArrowDown: current + 1,
      ArrowUp: current - 1,
      PageDown: current + page,
      PageUp: current - page,
      Home: 0,
      End: count - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    onSelect(Math.max(0, Math.min(count - 1, next)));
  };

  const overscan = 8;
  const first = Math.max(0, Math.floor(view.top / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((view.top + view.height) / rowHeight) + overscan);
  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      html`<div
        key=${i}
        id=${`${idPrefix}-${i}`}
        role="option"
        aria-selected=${i === selected ? "true" : "false"}
        class=${"vrow" + (i === selected ? " selected" : "")}
        style=${{ transform: `translateY(${i * rowHeight}px)`, height: `${rowHeight}px` }}
        onClick=${() => onSelect(i)}
      >
        ${renderRow(i)}
      </div>`,
    );
  }
  return html`<div
    class="vlist"
    ref=${box}
    tabindex="0"
    role="listbox"
    aria-label=${label}
    aria-activedescendant=${selected != null ? `${idPrefix}-${selected}` : undefined}
    onScroll=${onScroll}
    onKeyDown=${onKeyDown}
  >
    <div class="vlist-space" style=${{ height: `${count * rowHeight}px` }}>${rows}</div>
  </div>`;
}
