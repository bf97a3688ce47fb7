// The raw event log: every persisted event in server order with its seq, virtualised (10,000 rows cost what 50
// cost), filterable by type; the selected event's JSON beside it and in the URL as `?seq=N` (a deep link).

import { useEffect, useMemo, useState } from "preact/hooks";
import { summary } from "../transcript.js";
import { fmtClock, html, Json, navigate, VirtualList } from "../ui.js";

const ROW = 28;

function saveJson(events, sessionId) {
  const blob = new Blob([JSON.stringify(events, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${sessionId}-events.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function EventLog({ feed, sessionId, seq }) {
  const [filter, setFilter] = useState("");
  const [selectedSeq, setSelectedSeq] = useState(seq);
  const events = feed.events;
  // positions (0-based) of the events shown; all of them without a filter
  const shown = useMemo(() => {
    if (!filter) return null;
    const out = [];
    events.forEach((e, i) => e.type.includes(filter) && out.push(i));
    return out;
  }, [filter, filter ? feed.version : 0]);
  const count = shown ? shown.length : events.length;
  const positionOf = (row) => (shown ? shown[row] : row);
  const rowOf = (s) => (s == null ? null : shown ? shown.indexOf(s - 1) : s - 1 < events.length ? s - 1 : null);
  const selectedRow = rowOf(selectedSeq);

  useEffect(() => setSelectedSeq(seq), [seq]);

  const select = (row) => {
    const s = positionOf(row) + 1;
    setSelectedSeq(s);
    navigate(`/sessions/${sessionId}?seq=${s}`, { replace: true });
  };

  const renderRow = (row) => {
    const i = positionOf(row);
    const e = events[i];
    return html`<span class="c-seq">${i + 1}</span><span class="c-time">${fmtClock(e.processed_at)}</span><span
        class="c-type">${e.type}</span
      ><span class="c-sum">${summary(e)}</span>`;
  };

  const selected = selectedRow != null && selectedRow >= 0 ? events[positionOf(selectedRow)] : null;
  const waiting = selectedSeq && !selected && feed.state === "loading";
  return html`<div class="event-log">
    <div class="filters">
      <label>Type contains <input type="search" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /></label>
      <button class="quiet" onClick=${() => saveJson(events, sessionId)}>Download JSON</button>
      <span class="sub">${count} of ${events.length}</span>
    </div>
    <div class="split">
      <${VirtualList}
        count=${count}
        rowHeight=${ROW}
        renderRow=${renderRow}
        selected=${selectedRow != null && selectedRow >= 0 ? selectedRow : null}
        onSelect=${select}
        label="Events"
        idPrefix="ev"
        follow=${true}
      />
      <section class="inspector" aria-label="Selected event">
        ${selected
          ? html`<h2>#${selectedSeq} ${selected.type}</h2>
              <p class="sub">${selected.id}</p>
              <${Json} value=${selected} />`
          : html`<p class="empty">${waiting ? `Loading event ${selectedSeq}…` : selectedSeq ? `No event ${selectedSeq} in this log.` : "Select an event (arrow keys or click) to see its JSON."}</p>`}
      </section>
    </div>
  </div>`;
}
